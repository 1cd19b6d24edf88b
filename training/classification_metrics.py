"""Binary classification metrics: overall, at thresholds, per slice, with bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from common.decisions import Thresholds
from registry.metrics import AtThreshold, BinaryMetrics, Interval, MultiLabelMetrics

__all__ = ["AtThreshold", "BinaryMetrics", "Interval", "MultiLabelMetrics", "binary_metrics", "precision_recall"]


def precision_recall(positive: np.ndarray, flagged: np.ndarray) -> tuple[float | None, float, float]:
    """Precision (None when nothing is flagged), recall and F1 of boolean flags against
    boolean truth: the one place these are computed."""
    positive, flagged = np.asarray(positive, dtype=bool), np.asarray(flagged, dtype=bool)
    tp = float((flagged & positive).sum())
    n_flagged = int(flagged.sum())
    precision = tp / n_flagged if n_flagged else None
    recall = tp / max(1.0, float(positive.sum()))
    f1 = 0.0 if not precision or not recall else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def at_threshold(y: np.ndarray, scores: np.ndarray, threshold: float) -> AtThreshold:
    """Precision, recall and F1 when flagging scores >= threshold."""
    flagged = np.asarray(scores) >= threshold
    precision, recall, f1 = precision_recall(np.asarray(y) == 1, flagged)
    return AtThreshold(threshold=threshold, precision=precision, recall=recall, f1=f1, flagged=int(flagged.sum()))


def ranking_metrics(y: np.ndarray, scores: np.ndarray) -> tuple[float | None, float | None]:
    if y.min() == y.max():
        return None, None
    return float(roc_auc_score(y, scores)), float(average_precision_score(y, scores))


def bootstrap_intervals(
    y: np.ndarray, scores: np.ndarray, n_boot: int = 200, seed: int = 0
) -> tuple[Interval | None, Interval | None]:
    """95% percentile-bootstrap intervals of ROC-AUC and PR-AUC (resampling rows)."""
    rng = np.random.default_rng(seed)
    aucs, aps = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        roc, ap = ranking_metrics(y[idx], scores[idx])
        if roc is not None and ap is not None:
            aucs.append(roc)
            aps.append(ap)
    if len(aucs) < n_boot // 2:
        return None, None

    def interval(values: list[float]) -> Interval:
        low, high = np.percentile(values, [2.5, 97.5])
        return Interval(low=float(low), high=float(high))

    return interval(aucs), interval(aps)


def binary_metrics(
    y_true: Sequence[int], scores: Sequence[float], thresholds: Thresholds, n_boot: int = 0
) -> BinaryMetrics:
    """All metrics of one set; ``n_boot`` > 0 adds bootstrap CIs for ROC-AUC and PR-AUC."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    roc, ap = ranking_metrics(y, s)
    roc_ci, ap_ci = bootstrap_intervals(y, s, n_boot) if n_boot and roc is not None else (None, None)
    return BinaryMetrics(
        rows=len(y), positives=int(y.sum()), roc_auc=roc, pr_auc=ap, roc_auc_ci=roc_ci,
        pr_auc_ci=ap_ci, block=at_threshold(y, s, thresholds.block),
        review=at_threshold(y, s, thresholds.review),
    )


def sliced_metrics(
    y_true: Sequence[int], scores: Sequence[float], slices: Sequence[str], thresholds: Thresholds,
    n_boot: int = 0,
) -> dict[str, BinaryMetrics]:
    """``binary_metrics`` for every value of a slice column (e.g. category)."""
    y = np.asarray(y_true)
    s = np.asarray(scores)
    keys = np.asarray([str(v) for v in slices])
    return {
        str(key): binary_metrics(y[keys == key], s[keys == key], thresholds, n_boot)
        for key in sorted(set(keys.tolist()))
    }
