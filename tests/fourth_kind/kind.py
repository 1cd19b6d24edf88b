"""The review-spam kind: its records, its results, its answer and its line in the table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.decisions import Decision
from kinds import ModelKind
from kinds.answers import (
    Answer,
    HoldLookup,
    KindAnswers,
    ReasonOut,
    apply_merchant_rule,
    per_record_answer,
    reasons_out,
)
from kinds.runtime import ModelRuntime, Scores
from policy.document import CallRules


class ReviewRecord(BaseModel):
    """One product review."""

    model_config = ConfigDict(extra="forbid")

    review_id: str = Field(..., min_length=1, max_length=128)
    text: str = Field(..., min_length=1, max_length=2000)
    merchant_id: str | None = Field(None, max_length=128)


class ReviewResult(BaseModel):
    """The decision for one review."""

    model_config = ConfigDict(protected_namespaces=())

    review_id: str
    decision: Decision
    score: float
    reasons: list[ReasonOut]
    model: str


class ReviewAnswers(KindAnswers[ReviewRecord]):
    """One result per review, raised by the merchant rule like listings."""

    def answer(self, model: ModelRuntime, records: Sequence[ReviewRecord], request: dict[str, Any],
               holds: HoldLookup, scores: Scores | None = None, rules: CallRules | None = None) -> Answer:
        scored = scores if scores is not None else model.score(records)
        decisions, rule_reasons = apply_merchant_rule([r.merchant_id for r in records], scored.decisions, holds)
        results = [ReviewResult(review_id=r.review_id, decision=d, score=round(float(s), 6),
                                reasons=reasons_out(rules, reasons), model=model.tag)
                   for r, s, d, rules, reasons in zip(records, scored.scores, decisions, rule_reasons,
                                                       scored.reasons, strict=True)]
        return per_record_answer(results, records, self.id_field)


REVIEW_SPAM = ModelKind(
    name="review-spam", entity_type="review", id_field="review_id", record=ReviewRecord, result=ReviewResult,
    answers=ReviewAnswers("review_id"), route="/v1/reviews/score",
    runtime_path="tests.fourth_kind.runtime:ReviewSpamModel", training="tests.fourth_kind.training:TRAINING",
    label_column="is_spam", positive_label="spam",
)
