"""LightGBM training shared by the tabular pipelines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np


def train_binary_lightgbm(
    params: dict[str, Any], train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
    feature_names: Sequence[str], categorical: Sequence[str], num_boost_round: int,
    early_stopping_rounds: int,
) -> lgb.Booster:
    """A binary LightGBM model with early stopping on validation average precision."""
    full_params = {"objective": "binary", "metric": ["average_precision", "auc"],
                   "deterministic": True, "verbosity": -1, **params}
    train_set = lgb.Dataset(train[0], train[1], feature_name=list(feature_names),
                            categorical_feature=list(categorical) or "auto")
    validation_set = lgb.Dataset(validation[0], validation[1], reference=train_set)
    return lgb.train(
        full_params, train_set, num_boost_round=num_boost_round, valid_sets=[validation_set],
        callbacks=[lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)],
    )


def gain_shares(booster: lgb.Booster) -> dict[str, float]:
    """Each feature's share of total split gain."""
    gains = booster.feature_importance("gain")
    total = float(gains.sum()) or 1.0
    return {name: float(g / total) for name, g in zip(booster.feature_name(), gains, strict=True)}


def refit_binary_lightgbm(params: dict[str, Any], data: tuple[np.ndarray, np.ndarray],
                          feature_names: Sequence[str], num_boost_round: int) -> lgb.Booster:
    """Retrain with a fixed number of rounds (found by early stopping) on more data."""
    full_params = {"objective": "binary", "deterministic": True, "verbosity": -1, **params}
    return lgb.train(full_params, lgb.Dataset(data[0], data[1], feature_name=list(feature_names)),
                     num_boost_round=max(1, num_boost_round))
