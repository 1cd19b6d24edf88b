"""Thresholds an analyst proposes or registers are checked: a cut that would decide nothing
(NaN) or everything (negative) is refused, and a target typed as a percentage is named."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from common.decisions import Thresholds
from common.errors import ShopGuardError
from training.analysis import propose_thresholds
from training.compare import ScoredFile


def _scored(labels: list[int]) -> ScoredFile:
    rng = np.random.default_rng(0)
    y = np.array(labels)[:, None]
    scores = np.clip(y * 0.6 + rng.random(y.shape) * 0.4, 0, 1)
    return ScoredFile(labels=y, scores=scores, decisions=["allow"] * len(labels), targets=["default"],
                      thresholds={"default": Thresholds(block=0.9, review=0.5)}, slices=None)


@pytest.mark.parametrize(("block", "review"), [(float("nan"), 0.1), (-0.5, -1.0), (float("inf"), 0.2), (0.9, -0.1)])
def test_a_threshold_that_would_decide_nothing_or_everything_is_refused(block: float, review: float) -> None:
    with pytest.raises(ValidationError):
        Thresholds(block=block, review=review)
    assert Thresholds(block=1.01, review=1.01).block == 1.01  # "never": a target that was not reachable


@pytest.mark.parametrize(("precision", "recall", "budget", "named"), [
    (95, 0.9, 0.05, "PRECISION_TARGET is 95"), (0.95, 90, 0.05, "RECALL_TARGET is 90"),
    (0.95, 0.9, -1, "REVIEW_BUDGET is -1"), (0.95, 0.9, 5, "REVIEW_BUDGET is 5")])
def test_a_target_given_as_a_percentage_is_refused_naming_it(precision: float, recall: float, budget: float,
                                                             named: str) -> None:
    with pytest.raises(ShopGuardError, match=named):
        propose_thresholds(_scored([0, 1] * 100), precision, recall, review_budget=budget)
    assert propose_thresholds(_scored([0, 1] * 100), 0.95, 0.9, review_budget=0.05)["default"].thresholds.block <= 1.01


def test_a_file_without_positives_is_refused_in_words() -> None:
    with pytest.raises(ShopGuardError, match="no positive row"):
        propose_thresholds(_scored([0] * 200), 0.95, 0.9)


def test_a_file_of_positives_only_is_refused_naming_the_target() -> None:
    with pytest.raises(ShopGuardError, match="every row of the file is positive for default"):
        propose_thresholds(_scored([1] * 200), 0.95, 0.9)


def test_a_target_with_few_positives_gets_no_proposal_and_a_warning_naming_it() -> None:
    # Proposals once used a file's positives however few: 3 examples could set a category's block cut.
    rng = np.random.default_rng(1)
    labels = np.zeros((400, 2), dtype=int)
    labels[:100, 0] = 1
    labels[100:103, 1] = 1
    scores = np.clip(labels * 0.6 + rng.random(labels.shape) * 0.4, 0, 1)
    scored = ScoredFile(labels=labels, scores=scores, decisions=["allow"] * 400, targets=["efficacy", "scarcity"],
                        thresholds={}, slices=None)
    with pytest.warns(UserWarning, match="no thresholds proposed for scarcity 3: fewer than 20"):
        proposals = propose_thresholds(scored, 0.95, 0.9)
    assert set(proposals) == {"efficacy"}
    with pytest.raises(ShopGuardError, match="too few positive rows.*scarcity 3"):
        propose_thresholds(ScoredFile(labels=labels[100:, 1:], scores=scores[100:, 1:], decisions=["allow"] * 300,
                                      targets=["scarcity"], thresholds={}, slices=None), 0.95, 0.9)
