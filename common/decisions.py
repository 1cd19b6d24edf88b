"""The one pure decision function shared by serving, evaluation and model comparison."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Decision = Literal["block", "review", "allow"]
DECISION_RANK: dict[str, int] = {"allow": 0, "review": 1, "block": 2}
# The manifest key of a binary model's thresholds (multi-label models key by category).
DEFAULT_THRESHOLD_KEY = "default"


MAX_THRESHOLD = 2.0  # scores are probabilities; a cut above 1.0 (training's 1.01) means "never"


class Thresholds(BaseModel):
    """Score cut-offs chosen on validation data. A score >= ``block`` blocks, >= ``review``
    sends to review. A value above 1.0 means the target was not reachable: never decided."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # NaN would decide nothing (every comparison false: allow), a negative cut everything
    block: float = Field(ge=0.0, le=MAX_THRESHOLD)
    review: float = Field(ge=0.0, le=MAX_THRESHOLD)

    @model_validator(mode="after")
    def _review_not_above_block(self) -> Thresholds:
        if self.review > self.block:
            raise ValueError(f"review threshold {self.review} is above block threshold {self.block}")
        return self


def decide(score: float, thresholds: Thresholds) -> Decision:
    """Map a model score to block / review / allow."""
    if score >= thresholds.block:
        return "block"
    if score >= thresholds.review:
        return "review"
    return "allow"


def stricter(a: Decision, b: Decision) -> Decision:
    """The stricter of two decisions (block > review > allow)."""
    return a if DECISION_RANK[a] >= DECISION_RANK[b] else b
