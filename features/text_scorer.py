"""A linear text scorer over hashed character n-grams (TF-IDF + logistic weights).

Hashing keeps the scorer stateless apart from two arrays (idf and coefficients), which are
stored as safetensors; no vocabulary and no pickled estimator are needed at serving time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

HashScheme = Literal["murmur", "codepoint"]
SCHEME_IDS: dict[HashScheme, int] = {"murmur": 0, "codepoint": 1}
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1, _MIX_2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over the whole hash."""
    h ^= h >> np.uint64(33)
    h *= _MIX_1
    h ^= h >> np.uint64(33)
    h *= _MIX_2
    h ^= h >> np.uint64(33)
    return h


@dataclass(frozen=True)
class NgramHashing:
    """How texts are turned into hashed character n-gram counts.

    ``codepoint`` (the default since listing_quality bundles of 2026-11-30) hashes the code
    points of every n-gram with NumPy over a whole batch at once, about 20x faster than
    ``murmur`` (scikit-learn's ``HashingVectorizer``, which builds each n-gram as a Python
    string). Both count the same n-grams; bundles record which one they were trained with."""

    n_features: int = 2**18
    ngram_min: int = 1
    ngram_max: int = 3
    scheme: HashScheme = "codepoint"

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Raw n-gram counts, one row per text."""
        if self.scheme == "murmur":
            return self._murmur_counts(texts)
        return self._codepoint_counts(texts)

    def _murmur_counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        vectorizer = HashingVectorizer(
            analyzer="char",
            ngram_range=(self.ngram_min, self.ngram_max),
            n_features=self.n_features,
            alternate_sign=False,
            norm=None,
            lowercase=False,
        )
        return vectorizer.transform(texts).tocsr()

    def _codepoint_counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        row_of = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        text_end = np.cumsum(lengths)[row_of]
        positions = np.arange(len(codes), dtype=np.int64)
        rows, columns = [], []
        for n in range(self.ngram_min, self.ngram_max + 1):
            starts = positions[positions + n <= text_end]
            hashed = np.full(len(starts), (n * int(_GOLDEN)) % 2**64, dtype=np.uint64)
            for k in range(n):
                hashed = _fmix64(hashed ^ codes[starts + k])
            rows.append(row_of[starts])
            columns.append(self._bucket(hashed))
        return self._count_matrix(np.concatenate(rows), np.concatenate(columns), len(texts))

    def _count_matrix(self, rows: np.ndarray, columns: np.ndarray, n_rows: int) -> sparse.csr_matrix:
        """CSR counts of (row, column) pairs: one sort of a combined key, no per-row sorting."""
        keys = np.sort(rows * self.n_features + columns)
        if len(keys) == 0:
            return sparse.csr_matrix((n_rows, self.n_features), dtype=np.float32)
        first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        unique = keys[first]
        counts = np.diff(np.append(first, len(keys))).astype(np.float32)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(unique // self.n_features, minlength=n_rows), out=indptr[1:])
        matrix = sparse.csr_matrix((counts, unique % self.n_features, indptr), shape=(n_rows, self.n_features))
        matrix.has_sorted_indices = True
        return matrix

    def _bucket(self, hashed: np.ndarray) -> np.ndarray:
        """Column of each hash (a mask when ``n_features`` is a power of two)."""
        n = self.n_features
        if n & (n - 1) == 0:
            return (hashed & np.uint64(n - 1)).astype(np.int64)
        return (hashed % np.uint64(n)).astype(np.int64)


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
        config = np.array([self.hashing.n_features, self.hashing.ngram_min, self.hashing.ngram_max,
                           SCHEME_IDS[self.hashing.scheme]], dtype=np.int64)
        return {
            "idf": self.idf.astype(np.float32),
            "coef": self.coef.astype(np.float32),
            "intercept": np.array([self.intercept], dtype=np.float64),
            "hashing": config,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CharNgramScorer:
        """Rebuild a scorer from ``to_arrays`` output."""
        config = [int(v) for v in arrays["hashing"]]
        n_features, ngram_min, ngram_max = config[:3]
        # Scorers saved before the scheme was recorded were trained with murmur hashing.
        scheme = next(name for name, i in SCHEME_IDS.items() if i == (config[3] if len(config) > 3 else 0))
        return cls(
            hashing=NgramHashing(n_features, ngram_min, ngram_max, scheme),
            idf=arrays["idf"],
            coef=arrays["coef"],
            intercept=float(arrays["intercept"][0]),
        )
