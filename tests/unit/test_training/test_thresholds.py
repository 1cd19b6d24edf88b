import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.decisions import Thresholds
from training.thresholds import (
    UNREACHABLE,
    apply_review_budget,
    best_f1_thresholds,
    budget_cost,
    budget_cut,
    choose_thresholds,
    shared_review_threshold,
    wilson_lower_bound,
)


def _scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(5000) < 0.2).astype(int)
    scores = np.clip(rng.normal(0.25 + 0.5 * y, 0.15), 0, 1)
    return y, scores


def test_block_threshold_is_lowest_score_reaching_precision_target() -> None:
    y, scores = _scores()
    choice = choose_thresholds(y, scores, precision_target=0.95, recall_target=0.9)
    block = choice.thresholds.block
    assert choice.block_precision >= 0.95
    flagged = scores >= block
    assert y[flagged].mean() >= 0.95
    lower = scores[scores < block].max()
    assert y[scores >= lower].mean() < 0.95  # one step lower misses the target


def test_held_out_block_with_confidence_is_higher_and_holds_on_fresh_rows() -> None:
    """The point choice sits where noise touched the target; the Wilson bound keeps a margin
    that rows the choice never saw (a second draw) honour."""
    y, scores = _scores(3)
    fresh_y, fresh_scores = _scores(4)
    point = best_f1_thresholds(y, scores, precision_target=0.95)
    bounded = best_f1_thresholds(y, scores, precision_target=0.95, confidence_z=1.0)
    assert bounded.thresholds.block > point.thresholds.block
    assert point.thresholds.review == bounded.thresholds.review  # review is the best F1 either way
    flagged = fresh_scores >= bounded.thresholds.block
    assert flagged.sum() >= 20 and fresh_y[flagged].mean() >= 0.95
    assert "Wilson lower bound" in bounded.objective and "Wilson" not in point.objective


def test_wilson_lower_bound_is_below_the_proportion_and_tightens_with_rows() -> None:
    few, many = wilson_lower_bound(np.array([0.95, 0.95]), np.array([20, 2000]), 1.0)
    assert few < many < 0.95
    assert wilson_lower_bound(np.array([0.95]), np.array([20]), 0.0)[0] == 0.95


def test_review_threshold_reaches_recall_target() -> None:
    y, scores = _scores(1)
    choice = choose_thresholds(y, scores, precision_target=0.95, recall_target=0.9)
    review = choice.thresholds.review
    assert ((scores >= review) & (y == 1)).sum() / y.sum() >= 0.9
    assert choice.thresholds.review <= choice.thresholds.block


def test_unreachable_precision_target_means_never_block() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(2000) < 0.5).astype(int)
    scores = rng.random(2000)  # no signal: precision stays near 0.5
    choice = choose_thresholds(y, scores, precision_target=0.99)
    assert not choice.block_reachable
    assert choice.thresholds.block == UNREACHABLE


def test_one_class_validation_data_is_refused() -> None:
    with pytest.raises(ValueError, match="both classes"):
        choose_thresholds(np.zeros(10), np.linspace(0, 1, 10))


def test_review_budget_limits_ordinary_traffic_sent_to_review() -> None:
    y, scores = _scores(2)
    free = choose_thresholds(y, scores, precision_target=0.95, recall_target=0.9)
    assert (scores[y == 0] >= free.thresholds.review).mean() > 0.01  # the recall target alone flags more
    budgeted = choose_thresholds(y, scores, precision_target=0.95, recall_target=0.9, review_budget=0.01)
    assert (scores[y == 0] >= budgeted.thresholds.review).mean() <= 0.01
    assert budgeted.review_raised_by_budget and budgeted.thresholds.review <= budgeted.thresholds.block


def test_budget_cut_flags_at_most_the_budget() -> None:
    ordinary = np.random.default_rng(3).random(1000)
    for budget in (0.0, 0.01, 0.05, 0.5):
        cut = budget_cut(ordinary, budget)
        assert (ordinary >= cut).mean() <= budget
        assert (ordinary >= np.nextafter(cut, -np.inf) - 1e-3).mean() > budget - 0.01


def test_union_budget_over_categories() -> None:
    rng = np.random.default_rng(4)
    scores = rng.random((4000, 3))
    ordinary = rng.random(4000) < 0.8
    start = {c: Thresholds(block=0.9, review=0.5) for c in ("a", "b", "c")}
    raised, shares = apply_review_budget(start, scores, ("a", "b", "c"), ordinary, 0.05)
    cuts = np.array([raised[c].review for c in "abc"])
    assert shares["all clean"] == (scores[ordinary] >= cuts).any(axis=1).mean() <= 0.05
    assert shares["all clean"] > 0.04  # the greedy steps stop close to the budget
    assert all(raised[c].review <= raised[c].block for c in "abc")


def test_union_budget_holds_within_each_group_too() -> None:
    rng = np.random.default_rng(5)
    scores = rng.random((4000, 2))
    ordinary = np.ones(4000, dtype=bool)
    hard = np.zeros(4000, dtype=bool)
    hard[:300] = True
    scores[hard] = np.clip(scores[hard] + 0.3, 0, 1)  # one source of clean text scores higher
    start = {c: Thresholds(block=0.9, review=0.5) for c in ("a", "b")}
    overall, _ = apply_review_budget(start, scores, ("a", "b"), ordinary, 0.05)
    grouped, shares = apply_review_budget(start, scores, ("a", "b"), ordinary, 0.05, {"hard": hard})
    assert shares["hard"] <= 0.05 and shares["all clean"] <= 0.05
    cuts = np.array([overall[c].review for c in "ab"])
    assert (scores[hard] >= cuts).any(axis=1).mean() > 0.05  # the overall budget alone lets it through


def test_budget_moves_only_the_categories_that_cause_the_excess() -> None:
    rng = np.random.default_rng(6)
    scores = rng.random((4000, 2)) * np.array([0.3, 1.0])  # category a never reaches 0.5
    start = {c: Thresholds(block=0.9, review=0.5) for c in ("a", "b")}
    raised, shares = apply_review_budget(start, scores, ("a", "b"), np.ones(4000, dtype=bool), 0.05)
    assert raised["a"] == start["a"] and raised["b"].review > 0.9
    assert shares["all clean"] <= 0.05


def test_budget_with_confidence_holds_on_the_traffic_validation_was_drawn_from() -> None:
    """Ordinary scores uniform on [0, 1]: a cut c flags a true share 1 - c of that traffic. A
    cut at exactly the budget on validation is above the budget for about half of the
    validation samples; with the Wilson margin at 95%, for about 5% of them."""
    rng = np.random.default_rng(7)
    plain_over = confident_over = 0
    for _ in range(400):
        validation = rng.random(3000)
        plain_over += 1 - budget_cut(validation, 0.05) > 0.05
        confident = budget_cut(validation, 0.05, confidence=0.95)
        assert (validation >= confident).mean() < 0.05 - 0.005  # the margin is taken on validation
        confident_over += 1 - confident > 0.05
    assert plain_over > 150 and confident_over < 40
    assert budget_cut(validation, 0.05, confidence=0.5) == budget_cut(validation, 0.05)  # no margin
    assert (validation[:50] >= budget_cut(validation[:50], 0.05, confidence=0.95)).sum() <= 1  # tiny sets


def test_budget_cost_compares_the_served_review_with_the_recall_target() -> None:
    y, scores = _scores(8)
    half = len(y) // 2
    choice = choose_thresholds(y[:half], scores[:half], recall_target=0.95, review_budget=0.02,
                               budget_confidence=0.95)
    free = choose_thresholds(y[:half], scores[:half], recall_target=0.95)
    assert choice.review_raised_by_budget and choice.review_at_recall_target == free.thresholds.review
    assert choice.review_budget_confidence == 0.95 and "at 95% confidence" in choice.objective
    cost = budget_cost(y[half:], scores[half:], choice)
    held_out_ordinary = scores[half:][y[half:] == 0]
    assert cost.at_budget.ordinary_share == (held_out_ordinary >= choice.thresholds.review).mean()
    assert cost.within_budget and cost.at_budget.ordinary_share_high > cost.at_budget.ordinary_share
    assert cost.at_recall_target.ordinary_share > 0.02 and cost.at_recall_target.recall >= 0.9
    assert cost.recall_cost == cost.at_recall_target.recall - cost.at_budget.recall > 0
    with pytest.raises(ValueError, match="without a review budget"):
        budget_cost(y, scores, free)


def _segment_f1(violating: np.ndarray, flagged: np.ndarray) -> float:
    hits = int((violating & flagged).sum())
    return 2 * hits / max(1, int(violating.sum()) + int(flagged.sum()))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 60), columns=st.integers(1, 4))
def test_shared_review_threshold_is_the_best_cut_of_the_segment_decision(seed: int, rows: int, columns: int) -> None:
    """Against brute force over every distinct score (and never): no cut gives the segment
    decision (a row flagged otherwise, or its highest score at the cut) a better F1."""
    rng = np.random.default_rng(seed)
    violating = rng.random(rows) < 0.4
    scores = np.round(rng.random((rows, columns)) * (1 + violating[:, None]) / 2, 2)  # ties on purpose
    otherwise = rng.random(rows) < 0.2

    def decided(cut: float) -> np.ndarray:
        return otherwise | (scores >= cut).any(axis=1)

    cut = shared_review_threshold(violating, scores, otherwise)
    best = max(_segment_f1(violating, decided(c)) for c in [UNREACHABLE, *np.unique(scores)])
    assert _segment_f1(violating, decided(cut)) == pytest.approx(best)
    assert cut == UNREACHABLE or cut in scores


def test_shared_review_threshold_counts_rows_flagged_otherwise() -> None:
    """A violating row a rule already flags is no reason to lower the cut: the low-scoring
    violation (0.5) costs a false alarm (0.6) to reach, unless a rule catches it anyway."""
    violating = np.array([True, True, False])
    scores = np.array([[0.9], [0.5], [0.6]])
    assert shared_review_threshold(violating, scores, np.zeros(3, dtype=bool)) == 0.5
    assert shared_review_threshold(violating, scores, np.array([False, True, False])) == 0.9
    assert shared_review_threshold(violating, scores, np.ones(3, dtype=bool)) == UNREACHABLE


def test_shared_review_threshold_refuses_nan_and_has_no_cut_for_no_rows() -> None:
    with pytest.raises(ValueError, match="finite scores"):
        shared_review_threshold(np.array([True, False]), np.array([[np.nan], [0.2]]), np.zeros(2, dtype=bool))
    assert shared_review_threshold(np.zeros(0, dtype=bool), np.zeros((0, 3)), np.zeros(0, dtype=bool)) == UNREACHABLE
