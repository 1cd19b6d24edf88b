"""Choose decision thresholds on validation scores (DESIGN.md: precision and recall targets)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import precision_recall_curve

from features.decision import Thresholds

UNREACHABLE = 1.01  # a threshold above any probability: the decision is never taken


class ThresholdChoice(BaseModel):
    """Chosen thresholds and what they achieved on the validation data."""

    model_config = ConfigDict(extra="forbid")

    thresholds: Thresholds
    precision_target: float
    recall_target: float
    block_precision: float | None
    block_recall: float | None
    review_precision: float | None
    review_recall: float | None
    block_reachable: bool
    objective: str


def _at(y: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    flagged = scores >= threshold
    if not flagged.any():
        return None, 0.0
    true_positive = float((flagged & (y == 1)).sum())
    return true_positive / float(flagged.sum()), true_positive / max(1.0, float((y == 1).sum()))


def choose_thresholds(
    y_true: np.ndarray,
    scores: np.ndarray,
    precision_target: float = 0.95,
    recall_target: float = 0.90,
    min_block_support: int = 20,
) -> ThresholdChoice:
    """Block: the lowest score whose precision (of everything at or above it) reaches
    ``precision_target``, among cuts that flag at least ``min_block_support`` validation
    rows (a precision measured on a handful of rows means nothing). Review: the highest
    score whose recall reaches ``recall_target``, capped at the block threshold."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    if y.min() == y.max():
        raise ValueError("threshold choice needs both classes in the validation data")
    precision, recall, cuts = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # align with cuts
    flagged_counts = len(s) - np.searchsorted(np.sort(s), cuts, side="left")
    reaching = np.flatnonzero((precision >= precision_target) & (flagged_counts >= min_block_support))
    block_reachable = reaching.size > 0
    block = float(cuts[reaching[0]]) if block_reachable else UNREACHABLE
    recall_ok = np.flatnonzero(recall >= recall_target)
    review = float(cuts[recall_ok[-1]]) if recall_ok.size else float(cuts[0])
    review = min(review, block)
    thresholds = Thresholds(block=block, review=review)
    block_p, block_r = _at(y, s, block)
    review_p, review_r = _at(y, s, review)
    return ThresholdChoice(
        thresholds=thresholds, precision_target=precision_target, recall_target=recall_target,
        block_precision=block_p, block_recall=block_r, review_precision=review_p,
        review_recall=review_r, block_reachable=block_reachable,
        objective=(
            f"block = lowest validation score with precision >= {precision_target:.2f} "
            f"over at least {min_block_support} flagged rows; "
            f"review = highest validation score with recall >= {recall_target:.2f} (capped at block)"
        ),
    )
