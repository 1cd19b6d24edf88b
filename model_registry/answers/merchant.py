"""merchant-risk's answer: one result per merchant; its decisions stand (the merchant rule
of listings and streams reads them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from features.decision import Decision
from features.ids import merchant_key
from features.schemas import MerchantRecord
from model_registry.answers import (
    Answer,
    BlockedLookup,
    KindAnswers,
    ReasonOut,
    StandingDecision,
    per_record_answer,
    reasons_out,
)
from model_registry.runtimes.base import ModelRuntime, Scores


class MerchantResult(BaseModel):
    """The decision for one merchant."""

    merchant_id: str
    decision: Decision
    score: float
    reasons: list[ReasonOut]
    model: str


def merchant_results(model: ModelRuntime, merchants: Sequence[MerchantRecord],
                     scored: Scores | None = None) -> list[MerchantResult]:
    """One result per merchant, in order (``scored``: the model's scores when already
    computed, as batch jobs do from catalogue-wide graph features)."""
    scored = scored if scored is not None else model.score(merchants)
    return [MerchantResult(merchant_id=m.merchant_id, decision=decision, score=round(float(s), 6),
                           reasons=reasons_out([], reasons), model=model.tag)
            for m, s, decision, reasons in zip(merchants, scored.scores, scored.decisions, scored.reasons, strict=True)]


class MerchantAnswers(KindAnswers[MerchantRecord]):
    """Merchants: the model's decision with ring evidence; each decision is kept (normalized
    merchant ids, ``features/ids.py``) and logged under the normalized id."""

    keeps_standing = True

    def __init__(self) -> None:
        super().__init__("merchant_id", merchant_key)

    def answer(self, model: ModelRuntime, records: Sequence[MerchantRecord], request: dict[str, Any],
               blocked: BlockedLookup, scores: Scores | None = None) -> Answer:
        """One result per merchant, in order, each a standing decision."""
        results = merchant_results(model, records, scores)
        answer = per_record_answer(results, records, self.id_field, log_id=merchant_key)
        answer.standing = [StandingDecision(r.merchant_id, r.decision, r.score, r.model) for r in results]
        return answer
