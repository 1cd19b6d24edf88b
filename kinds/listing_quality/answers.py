"""listing-quality's answer: one result per listing, raised by the merchant rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.decisions import Decision
from features.ids import id_key, merchant_key
from kinds.answers import (
    MAX_BATCH,
    Answer,
    Endpoint,
    HoldLookup,
    KindAnswers,
    ReasonOut,
    apply_merchant_rule,
    per_record_answer,
    reasons_out,
)
from kinds.listing_quality.record import ListingRecord
from kinds.runtime import ModelRuntime, Scores
from policy.document import CallRules
from policy.state import ListingScored, ListingsScored


class ListingResult(BaseModel):
    """The decision for one listing."""

    model_config = ConfigDict(protected_namespaces=())

    listing_id: str
    decision: Decision
    score: float
    reasons: list[ReasonOut]
    model: str = Field(description="name:version of the model that produced the score")


def listing_results(model: ModelRuntime, listings: Sequence[ListingRecord], holds: HoldLookup,
                    scored: Scores) -> list[ListingResult]:
    """One result per listing, in order, from the model's scores."""
    decisions, rule_reasons = apply_merchant_rule([r.merchant_id for r in listings], scored.decisions, holds)
    return [ListingResult(listing_id=record.listing_id, decision=decision, score=round(float(score), 6),
                          reasons=reasons_out(rules, reasons), model=model.tag)
            for record, score, decision, rules, reasons in zip(
                listings, scored.scores, decisions, rule_reasons, scored.reasons, strict=True)]


class ListingAnswers(KindAnswers[ListingRecord]):
    """Listings: model decision, listing rules (in the runtime), then the merchant rule; ids
    compared and logged normalized (``features/ids.py``: ``DUP4``, ``ＤＵＰ4`` and ``" DUP4\u200b"``
    are one listing), case kept."""

    def __init__(self) -> None:
        super().__init__("listing_id", id_key)

    def answer_scores(self, model: ModelRuntime, records: Sequence[ListingRecord], request: dict[str, Any],
                      holds: HoldLookup, scores: Scores, rules: CallRules) -> Answer:
        """One result per listing, in order; the model's own decisions kept for enforcement."""
        answer = per_record_answer(listing_results(model, records, holds, scores), records, self.id_field,
                                   log_id=id_key)
        return dataclasses.replace(answer, model_decisions=tuple(scores.decisions))

    def enforcement_event(self, answer: Answer, records: Sequence[ListingRecord], request: dict[str, Any],
                          request_id: str, at: datetime) -> ListingsScored | None:
        """Listings of a merchant at review or block: a block of the listing itself (not one the
        merchant rule raised) costs the merchant points at once, a review once a reviewer confirms it."""
        own = answer.model_decisions or tuple(result.decision for result in answer.fields["results"])
        items = tuple(ListingScored(id_key(result.listing_id), merchant_key(record.merchant_id), result.decision,
                                    model_decision)
                      for result, record, model_decision in zip(answer.fields["results"], records, own, strict=True)
                      if record.merchant_id and result.decision in ("review", "block"))
        return ListingsScored(at, request_id, items) if items else None


class ListingsRequest(BaseModel):
    """Body of ``POST /v1/listings/score``."""

    model_config = ConfigDict(extra="forbid", strict=True)  # as the service reads it (strict_bodies)

    listings: list[ListingRecord] = Field(..., min_length=1, max_length=MAX_BATCH)


class ListingsResponse(BaseModel):
    """Answer to ``POST /v1/listings/score``: one result per listing, in request order."""

    request_id: str
    results: list[ListingResult]


ENDPOINT = Endpoint(
    name="score_listings", request=ListingsRequest, records_field="listings", response=ListingsResponse,
    description="Decide block / review / allow for up to 1,000 listings, with reasons. Each ``listing_id`` at "
                "most once per call (400 naming the indexes).")
