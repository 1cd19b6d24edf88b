"""merchant-risk's answer: one result per merchant; a ``block`` puts the merchant on a hold
(enforcement, ``policy/engine.py``) that the merchant rule of listings and streams reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from features.ids import merchant_key
from features.schemas import MerchantRecord
from model_registry.answers import (
    Answer,
    HoldLookup,
    KindAnswers,
    ReasonOut,
    per_record_answer,
    reasons_out,
)
from model_registry.runtimes.base import ModelRuntime, Scores
from policy.decisions import Decision
from policy.document import CallRules
from policy.state import MerchantScored, MerchantsScored


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
    """Merchants: the model's decision with ring evidence, logged under the normalized id
    (``features/ids.py``); a block puts the merchant on a hold."""

    def __init__(self) -> None:
        super().__init__("merchant_id", merchant_key)

    def answer(self, model: ModelRuntime, records: Sequence[MerchantRecord], request: dict[str, Any],
               holds: HoldLookup, scores: Scores | None = None, rules: CallRules | None = None) -> Answer:
        """One result per merchant, in order."""
        return per_record_answer(merchant_results(model, records, scores), records, self.id_field,
                                 log_id=merchant_key)

    def enforcement_event(self, answer: Answer, records: Sequence[MerchantRecord], request: dict[str, Any],
                          request_id: str, at: datetime) -> MerchantsScored | None:
        """The merchants at block: each goes on (or stays on) the model's hold."""
        items = tuple(MerchantScored(merchant_key(r.merchant_id), r.decision, r.score, r.model)
                      for r in answer.fields["results"] if r.decision == "block")
        return MerchantsScored(at, request_id, items) if items else None
