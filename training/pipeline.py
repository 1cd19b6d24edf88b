"""What every training pipeline shares: the base config, the split, the character TF-IDF
scorer fit, and registration (model files + card into a bundle).

A pipeline is a config (``BaseTrainingConfig`` subclass), a trainer whose ``fit`` returns a
result holding the runtime and its manifest, and a card builder; ``register_model`` turns
the three into a registered version.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from features.text_scorer import CharNgramScorer, NgramHashing, smooth_idf, tfidf
from kinds.runtime import ModelRuntime
from registry.bundle import Manifest
from registry.cards import ModelCard, write_card
from registry.store import ModelRegistry
from training.card_parts import PreviousVersion, previous_production
from training.row_identity import TrainingRows
from training.splits import Splits, stratified_splits

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """The progress callback of a run nobody watches."""


class BaseTrainingConfig(BaseModel):
    """The fields every pipeline's config has. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed (NumPy and scikit-learn take 0 .. 2**32 - 1)")
    test_size: float = Field(0.2, gt=0, lt=0.5)
    validation_size: float = Field(0.2, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _leaves_rows_to_train(self) -> Self:
        if self.test_size + self.validation_size > 0.8:
            raise ValueError(f"test_size + validation_size is {self.test_size + self.validation_size:g}: leave at "
                             "least 20% of the rows to train on")
        return self
    precision_target: float = Field(0.95, gt=0, le=1, description="block threshold: validation precision")
    recall_target: float = Field(0.90, gt=0, le=1, description="review threshold: validation recall")
    bootstrap_samples: int = Field(200, ge=0, description="bootstrap resamples for 95% intervals")
    num_threads: int = Field(0, ge=0, description="threads for training (0: library default)")


def split_rows(strata: np.ndarray, config: BaseTrainingConfig, label_name: str) -> Splits:
    """The seeded train / validation / test split of every pipeline, stratified by
    ``strata`` (the label, or a multi-label model's first category)."""
    return stratified_splits(strata, config.test_size, config.validation_size, config.seed, label_name)


@dataclass(frozen=True)
class CharTfidf:
    """Texts as hashed character n-gram TF-IDF rows, with the IDF fitted on them."""

    hashing: NgramHashing
    idf: np.ndarray
    matrix: sparse.csr_matrix

    @classmethod
    def fit(cls, texts: list[str], hash_features: int, ngram_max: int = 3) -> CharTfidf:
        """Hash ``texts`` and fit the IDF on them."""
        hashing = NgramHashing(hash_features, 1, ngram_max)
        counts = hashing.counts(texts)
        idf = smooth_idf(counts)
        return cls(hashing, idf, tfidf(counts, idf))


def fit_char_scorer(features: CharTfidf, labels: np.ndarray, regularization_c: float,
                    rows: np.ndarray | None = None, sample_weight: np.ndarray | None = None) -> CharNgramScorer:
    """Logistic regression on the TF-IDF rows (``rows``: a subset; ``sample_weight``: one
    weight per row of ``features``) as a stateless scorer."""
    rows = np.arange(features.matrix.shape[0]) if rows is None else rows
    model = LogisticRegression(C=regularization_c, max_iter=2000, solver="liblinear")
    model.fit(features.matrix[rows], labels[rows], sample_weight=None if sample_weight is None else sample_weight[rows])
    return CharNgramScorer(features.hashing, features.idf, model.coef_.ravel().astype(np.float32),
                           float(model.intercept_[0]))


def score_tfidf_rows(scorer: CharNgramScorer, matrix: sparse.csr_matrix) -> np.ndarray:
    """The scorer's probabilities for rows already in TF-IDF form."""
    logits = matrix @ scorer.coef + scorer.intercept
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).ravel()))


CardBuilder = Callable[[Path, PreviousVersion | None], ModelCard]


def register_model(registry: ModelRegistry, runtime: ModelRuntime, manifest: Manifest,
                   build_card: CardBuilder, progress: Progress = no_progress,
                   training_rows: TrainingRows | None = None) -> Manifest:
    """Write the runtime's files, the hashes of its training rows (``training_rows.npy``,
    hashed into the manifest like every bundle file) and its card (built beside the weights,
    with the current production version for comparison) into a bundle, and register it as
    candidate."""
    progress("writing the bundle and the model card")
    with tempfile.TemporaryDirectory(prefix="shopguard-bundle-") as tmp:
        staging = Path(tmp)
        runtime.save(staging)
        if training_rows is not None:
            training_rows.write(staging)
            manifest = manifest.model_copy(update={"metrics": manifest.metrics.model_copy(update={
                "details": {**manifest.metrics.details, "training_rows": training_rows.details()}})})
        card = build_card(staging, previous_production(registry, manifest.model_name))
        write_card(card, staging)
        return registry.register(staging, manifest)
