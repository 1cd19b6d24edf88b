"""Held-out figures on real labelled text grouped by where it came from (a live room, a
source, a month): folds that never split a group, and intervals that resample groups.

Rows of one live room share a host, a product and a way of speaking; a model that saw some of
a room's sentences recognises the rest. The world's next rooms are new, so every figure here
holds whole groups out, and its 95% interval comes from resampling groups (a cluster
bootstrap), not rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from common.errors import ShopGuardError
from registry.metrics import RealCheck, RealWorldChecks
from training.classification_metrics import precision_recall
from training.real_checks import MIN_CLASS_ROWS, MIN_GROUPS, rate_check


def group_folds(groups: np.ndarray, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of each held-out fold: the groups are shuffled (seeded) and dealt to the
    folds greedily by size, so folds hold similar numbers of rows and no group is split."""
    names, sizes = np.unique(groups.astype(str), return_counts=True)
    if len(names) < folds:
        raise ShopGuardError(f"grouped held-out folds need at least {folds} groups in the real rows; found "
                             f"{len(names)}. Name a group column with --group-column (rooms, sources, months) "
                             "or lower real_folds.")
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-sizes[order], kind="stable")]
    load, members = np.zeros(folds), [[] for _ in range(folds)]
    for i in order:
        target = int(np.argmin(load))
        members[target].append(names[i])
        load[target] += sizes[i]
    as_text = groups.astype(str)
    return [np.flatnonzero(np.isin(as_text, chosen)) for chosen in members]


Statistic = Callable[[np.ndarray], float | None]

# Issue 30's own measure of done on whole held-out rooms (the sealed whole broadcasts' targets).
TARGETS = {"binary_f1": 0.75, "clean_flagged": 0.05, "violations_caught": 0.70, "roc_auc": 0.85,
           "block_precision": 0.95}


def cluster_interval(groups: np.ndarray, statistic: Statistic, n_boot: int = 200,
                     seed: int = 0) -> tuple[float | None, float | None]:
    """95% percentile interval of ``statistic(rows)`` when whole groups are resampled with
    replacement (``statistic`` takes the row indices of a resample); (None, None) with fewer
    than ``MIN_GROUPS`` groups."""
    names = np.unique(groups.astype(str))
    if len(names) < MIN_GROUPS:
        return None, None
    index_of = {name: np.flatnonzero(groups.astype(str) == name) for name in names}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        rows = np.concatenate([index_of[names[i]] for i in rng.integers(0, len(names), len(names))])
        value = statistic(rows)
        if value is not None:
            values.append(value)
    if not values or len(values) < n_boot // 2:
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _auc(positive: np.ndarray, scores: np.ndarray) -> Statistic:
    def statistic(rows: np.ndarray) -> float | None:
        y = positive[rows]
        return float(roc_auc_score(y, scores[rows])) if 0 < y.sum() < len(y) else None
    return statistic


def _f1(positive: np.ndarray, flagged: np.ndarray) -> Statistic:
    def statistic(rows: np.ndarray) -> float | None:
        return precision_recall(positive[rows], flagged[rows])[2] if positive[rows].any() else None
    return statistic


def heldout_checks(positive: np.ndarray, flagged: np.ndarray, scores: np.ndarray, groups: np.ndarray,
                   category_labels: np.ndarray, category_flags: np.ndarray, categories: Sequence[str],
                   note: str, n_boot: int = 200, blocked: np.ndarray | None = None) -> RealWorldChecks:
    """The grouped held-out figures of a text model's decisions: binary F1, clean rows flagged,
    violating rows caught, the precision of the flags and (given ``blocked``) of the blocks,
    ROC-AUC of the segment score (group-resampled intervals) and, per category with
    positives, the share of its rows labelled with it. F1 and ROC-AUC carry no interval (so
    their targets are ``not shown``) with fewer than ``MIN_GROUPS`` groups or fewer than
    ``MIN_CLASS_ROWS`` violating (for ROC-AUC, also clean) rows."""
    clean = ~positive
    precision, recall, f1 = precision_recall(positive, flagged)
    enough = positive.sum() >= MIN_CLASS_ROWS
    f1_low, f1_high = cluster_interval(groups, _f1(positive, flagged), n_boot) if enough else (None, None)
    checks = [RealCheck(key="binary_f1", description="binary F1: flagged (review or block) vs labelled violating",
                        metric="f1", rows=len(positive), count=int(positive.sum()), value=f1, low=f1_low,
                        high=f1_high, target=TARGETS["binary_f1"], direction="at_least"),
              rate_check("clean_flagged", "clean sentences flagged (review or block)", flagged[clean],
                         TARGETS["clean_flagged"], "at_most"),
              rate_check("violations_caught", "violating sentences flagged (recall)", flagged[positive],
                         TARGETS["violations_caught"], "at_least")]
    if precision is not None:
        checks.append(rate_check("flag_precision", "flagged sentences that are violating (precision)",
                                 positive[flagged]))
    if blocked is not None and blocked.any():
        checks.append(rate_check("block_precision", "blocked sentences that are violating (block precision)",
                                 positive[blocked], TARGETS["block_precision"], "at_least"))
    if 0 < positive.sum() < len(positive):
        enough = min(positive.sum(), clean.sum()) >= MIN_CLASS_ROWS
        low, high = cluster_interval(groups, _auc(positive, scores), n_boot) if enough else (None, None)
        checks.append(RealCheck(key="roc_auc", description="ROC-AUC of the segment score (violating vs clean)",
                                metric="roc_auc", rows=len(positive), count=int(positive.sum()),
                                value=float(roc_auc_score(positive, scores)), low=low, high=high,
                                target=TARGETS["roc_auc"], direction="at_least"))
    for j, category in enumerate(categories):
        rows = category_labels[:, j] > 0
        if rows.any():
            checks.append(rate_check(f"recall_{category}", f"{category}: its sentences labelled {category}",
                                     category_flags[rows, j]))
    return RealWorldChecks(available=True, note=note, checks=checks)


