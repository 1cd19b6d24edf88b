"""A linear text scorer over hashed character n-grams (TF-IDF + logistic weights).

Hashing keeps the scorer stateless apart from two arrays (idf and coefficients), which are
stored as safetensors; no vocabulary and no pickled estimator are needed at serving time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize


@dataclass(frozen=True)
class NgramHashing:
    """How texts are turned into hashed character n-gram counts."""

    n_features: int = 2**18
    ngram_min: int = 1
    ngram_max: int = 3

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Raw n-gram counts, one row per text."""
        vectorizer = HashingVectorizer(
            analyzer="char",
            ngram_range=(self.ngram_min, self.ngram_max),
            n_features=self.n_features,
            alternate_sign=False,
            norm=None,
            lowercase=False,
        )
        return vectorizer.transform(texts).tocsr()


def smooth_idf(counts: sparse.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency, as scikit-learn's TfidfTransformer computes it."""
    n_docs = counts.shape[0]
    doc_freq = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log((1.0 + n_docs) / (1.0 + doc_freq)) + 1.0).astype(np.float32)


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear TF times IDF, L2-normalized rows."""
    weighted = counts.astype(np.float32)
    weighted.data = 1.0 + np.log(weighted.data)
    weighted = weighted.multiply(idf.reshape(1, -1)).tocsr()
    return normalize(weighted, norm="l2", copy=False)


@dataclass(frozen=True)
class CharNgramScorer:
    """P(positive | text) = sigmoid(tfidf(text) . coef + intercept)."""

    hashing: NgramHashing
    idf: np.ndarray
    coef: np.ndarray
    intercept: float

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of the positive class for each text."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float64)
        return self.score_counts(self.hashing.counts(texts))

    def score_counts(self, counts: sparse.csr_matrix) -> np.ndarray:
        """Probabilities from counts already made with ``self.hashing`` (scorers sharing a
        hashing then hash each text once)."""
        logits = tfidf(counts, self.idf) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).ravel()))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays to store; ``from_arrays`` restores an identical scorer."""
        config = np.array(
            [self.hashing.n_features, self.hashing.ngram_min, self.hashing.ngram_max], dtype=np.int64
        )
        return {
            "idf": self.idf.astype(np.float32),
            "coef": self.coef.astype(np.float32),
            "intercept": np.array([self.intercept], dtype=np.float64),
            "hashing": config,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CharNgramScorer:
        """Rebuild a scorer from ``to_arrays`` output."""
        n_features, ngram_min, ngram_max = (int(v) for v in arrays["hashing"])
        return cls(
            hashing=NgramHashing(n_features, ngram_min, ngram_max),
            idf=arrays["idf"],
            coef=arrays["coef"],
            intercept=float(arrays["intercept"][0]),
        )
