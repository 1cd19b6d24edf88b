"""Analyst helpers behind the notebooks: the precision / recall trade-off of one version on a
labelled file, and its worst errors with the reasons the service would give."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from common.decisions import DEFAULT_THRESHOLD_KEY, Thresholds
from common.errors import ShopGuardError
from kinds import model_kind
from registry.store import LoadedBundle
from training.compare import ScoredFile, score_file
from training.thresholds import ThresholdChoice, choose_thresholds


def tradeoff_table(labels: np.ndarray, scores: np.ndarray, points: int = 20) -> pd.DataFrame:
    """Precision, recall and flagged share at ``points`` thresholds spread over the scores."""
    precision, recall, cuts = precision_recall_curve(labels, scores)
    chosen = np.unique(np.linspace(0, len(cuts) - 1, points).astype(int))
    return pd.DataFrame({
        "threshold": cuts[chosen], "precision": precision[chosen], "recall": recall[chosen],
        "flagged_share": [(scores >= c).mean() for c in cuts[chosen]],
    })


def propose_thresholds(scored: ScoredFile, precision_target: float, recall_target: float,
                       min_block_support: int = 20, review_budget: float | None = 0.05,
                       min_positives: int = 20) -> dict[str, ThresholdChoice]:
    """Thresholds per target chosen on this file with the training-time rule, review raised
    so that at most ``review_budget`` of the file's negatives reach review (None: no budget).
    Targets are shares (0.95, not 95): anything else is refused, naming the parameter. A target
    with fewer than ``min_positives`` positive rows gets no proposal (a warning names it), as
    training needs as many real positives before it sets a category's own thresholds."""
    for name, value, lowest in (("PRECISION_TARGET", precision_target, 0.0), ("RECALL_TARGET", recall_target, 0.0),
                                ("REVIEW_BUDGET", review_budget, -1.0)):  # a budget of 0: nothing ordinary reviewed
        if value is not None and not lowest < value <= 1.0:
            raise ShopGuardError(f"{name} is {value!r}: give a share between 0 and 1 (0.95 for 95%)")
    if not scored.labels.any():
        raise ShopGuardError("the file holds no positive row: thresholds need examples of both classes")
    for j, target in enumerate(scored.targets):
        if scored.labels[:, j].any() and scored.labels[:, j].all():
            raise ShopGuardError(f"every row of the file is positive for {target}: thresholds need negative rows too")
    positives = {target: int(scored.labels[:, j].sum()) for j, target in enumerate(scored.targets)}
    too_few = {target: n for target, n in positives.items() if 0 < n < min_positives}
    if too_few and len(too_few) == sum(n > 0 for n in positives.values()):
        raise ShopGuardError(f"too few positive rows to choose thresholds on ({_counts(too_few)}; at least "
                             f"{min_positives} each): bring a larger labelled file")
    if too_few:
        warnings.warn(f"no thresholds proposed for {_counts(too_few)}: fewer than {min_positives} positive rows "
                      "each; those keep the version's own", UserWarning, stacklevel=2)
    return {
        target: choose_thresholds(scored.labels[:, j], scored.scores[:, j], precision_target, recall_target,
                                  min_block_support=min_block_support, review_budget=review_budget)
        for j, target in enumerate(scored.targets) if positives[target] >= min_positives
    }


def _counts(by_target: dict[str, int]) -> str:
    return ", ".join(f"{target} {n}" for target, n in by_target.items())


def threshold_keys(bundle: LoadedBundle, choices: dict[str, ThresholdChoice]) -> dict[str, Thresholds]:
    """Proposed thresholds under the bundle's own keys (binary models store theirs under one
    key; false-marketing under each category)."""
    if not choices:
        raise ShopGuardError("no target of the file has a positive row: nothing to choose thresholds on")
    if not model_kind(bundle.manifest.model_name).multi_label:
        [choice] = choices.values()
        return {DEFAULT_THRESHOLD_KEY: choice.thresholds}
    return {target: choice.thresholds for target, choice in choices.items() if target in bundle.manifest.thresholds}


def worst_errors(bundle: LoadedBundle, data: Path, k: int = 10, target: int = 0, **options: object
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` highest-scored negatives flagged for ``target`` (false positives: at or above its
    review threshold) and the ``k`` lowest-scored positives left below it (false negatives),
    with the item's decision and the reasons the service would give."""
    scored = score_file(bundle, data, explain=True, **options)
    name = scored.targets[target]
    frame = pd.DataFrame({"row": np.arange(len(scored.decisions)), "label": scored.labels[:, target],
                          "score": scored.scores[:, target], "decision": scored.decisions})
    flagged = frame.score >= scored.thresholds[name].review
    if scored.ids is not None:
        frame.insert(1, "id", scored.ids)
    if scored.reasons is not None:
        frame["reasons"] = scored.reasons
    false_positives = frame[(frame.label == 0) & flagged].nlargest(k, "score")
    false_negatives = frame[(frame.label == 1) & ~flagged].nsmallest(k, "score")
    return false_positives.reset_index(drop=True), false_negatives.reset_index(drop=True)
