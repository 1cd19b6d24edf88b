"""merchant-risk's answer: one result per merchant; a ``block`` puts the merchant on a hold
(enforcement, ``policy/engine.py``) that the merchant rule of listings and streams reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from common.decisions import Decision
from features.ids import merchant_key
from kinds.answers import (
    MAX_BATCH,
    Answer,
    Endpoint,
    HoldLookup,
    KindAnswers,
    ReasonOut,
    per_record_answer,
    reasons_out,
)
from kinds.merchant_risk.record import MerchantRecord
from kinds.runtime import ModelRuntime, Scores
from policy.document import CallRules
from policy.state import MerchantScored, MerchantsScored

if TYPE_CHECKING:
    import pandas as pd


class MerchantResult(BaseModel):
    """The decision for one merchant."""

    merchant_id: str
    decision: Decision
    score: float
    reasons: list[ReasonOut]
    model: str


def merchant_results(model: ModelRuntime, merchants: Sequence[MerchantRecord], scored: Scores
                     ) -> list[MerchantResult]:
    """One result per merchant, in order, from the model's scores (computed per call, or
    catalogue-wide by batch jobs from the graph features out of core)."""
    return [MerchantResult(merchant_id=m.merchant_id, decision=decision, score=round(float(s), 6),
                           reasons=reasons_out([], reasons), model=model.tag)
            for m, s, decision, reasons in zip(merchants, scored.scores, scored.decisions, scored.reasons, strict=True)]


class MerchantAnswers(KindAnswers[MerchantRecord]):
    """Merchants: the model's decision with ring evidence, logged under the normalized id
    (``features/ids.py``); a block puts the merchant on a hold."""

    links_field = "links"

    def __init__(self) -> None:
        super().__init__("merchant_id", merchant_key)

    def link_edges(self, record: dict[str, Any]) -> list[dict[str, str]]:
        """The record's links as edges from it (``src``, ``dst``, ``link_type``)."""
        return [{"src": record[self.id_field], "dst": link["merchant_id"], "link_type": link["link_type"]}
                for link in record.get("links") or []]

    def links_by_entity(self, edges: pd.DataFrame | None) -> dict[str, list[dict[str, str]]]:
        """Each merchant's links from an edge list, both directions."""
        from kinds.merchant_risk.runtime import (
            links_by_merchant,  # here: the runtime loads LightGBM
        )

        return links_by_merchant(edges)

    def answer_scores(self, model: ModelRuntime, records: Sequence[MerchantRecord], request: dict[str, Any],
                      holds: HoldLookup, scores: Scores, rules: CallRules) -> Answer:
        """One result per merchant, in order."""
        return per_record_answer(merchant_results(model, records, scores), records, self.id_field,
                                 log_id=merchant_key)

    def enforcement_event(self, answer: Answer, records: Sequence[MerchantRecord], request: dict[str, Any],
                          request_id: str, at: datetime) -> MerchantsScored | None:
        """The merchants at block: each goes on (or stays on) the model's hold."""
        items = tuple(MerchantScored(merchant_key(r.merchant_id), r.decision, r.score, r.model)
                      for r in answer.fields["results"] if r.decision == "block")
        return MerchantsScored(at, request_id, items) if items else None


class MerchantsRequest(BaseModel):
    """Body of ``POST /v1/merchants/score``."""

    model_config = ConfigDict(extra="forbid", strict=True)  # as the service reads it (strict_bodies)

    merchants: list[MerchantRecord] = Field(..., min_length=1, max_length=MAX_BATCH)


class MerchantsResponse(BaseModel):
    """Answer to ``POST /v1/merchants/score``: one result per merchant, in request order."""

    request_id: str
    results: list[MerchantResult]


ENDPOINT = Endpoint(
    name="score_merchants", request=MerchantsRequest, records_field="merchants", response=MerchantsResponse,
    description="Decide block / review / allow for up to 1,000 merchants, with reasons (ring evidence) for review "
                "and block results; the decisions are kept so that blocked merchants' listings go to review. Each "
                "merchant at most once per call (ids compared normalized: ``features/ids.py``; 400 naming the "
                "indexes).")
