"""Stratified, seeded train / validation / test splits shared by the pipelines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from training.data.loaders import DataValidationError


@dataclass(frozen=True)
class Splits:
    """Row indices of the three parts of the data."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        """Rows per part."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def stratified_splits(labels: np.ndarray, test_size: float, validation_size: float, seed: int,
                      label_name: str) -> Splits:
    """Split rows into train / validation / test, stratified by label (or by any stratum
    key: each present value needs 10 rows, and there must be two)."""
    index = np.arange(len(labels))
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2 or counts.min() < 10:
        raise DataValidationError(
            f"column {label_name!r} needs at least 10 rows of each class to split into train, "
            "validation and test.", field=label_name,
        )
    rest, test = train_test_split(index, test_size=test_size, stratify=labels, random_state=seed)
    validation_share = validation_size / (1 - test_size)
    train, validation = train_test_split(rest, test_size=validation_share, stratify=labels[rest],
                                         random_state=seed)
    return Splits(np.sort(train), np.sort(validation), np.sort(test))


def validation_from_train(labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                          validation_size: float, seed: int) -> Splits:
    """Given a fixed train / test protocol, carve validation out of the train part."""
    fit, validation = train_test_split(train, test_size=validation_size, stratify=labels[train],
                                       random_state=seed)
    return Splits(np.sort(fit), np.sort(validation), np.sort(test))
