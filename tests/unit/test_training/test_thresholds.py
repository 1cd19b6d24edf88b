import numpy as np
import pytest

from training.thresholds import UNREACHABLE, choose_thresholds


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
