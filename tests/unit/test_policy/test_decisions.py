import pytest
from pydantic import ValidationError

from common.decisions import Thresholds, decide, stricter


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.0, "allow"), (0.299, "allow"), (0.3, "review"), (0.79, "review"), (0.8, "block"), (1.0, "block")],
)
def test_decide_uses_inclusive_thresholds(score: float, expected: str) -> None:
    assert decide(score, Thresholds(block=0.8, review=0.3)) == expected


def test_unreachable_block_threshold_never_blocks() -> None:
    assert decide(1.0, Thresholds(block=1.01, review=0.5)) == "review"


def test_review_above_block_is_rejected() -> None:
    with pytest.raises(ValidationError, match="above block"):
        Thresholds(block=0.2, review=0.5)


def test_thresholds_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        Thresholds(block=0.9, review=0.5, allow=0.1)


def test_stricter_orders_decisions() -> None:
    assert stricter("allow", "review") == "review"
    assert stricter("block", "review") == "block"
    assert stricter("allow", "allow") == "allow"
