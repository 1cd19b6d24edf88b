"""Typed response envelopes of the HTTP API (DESIGN.md contract); each kind's result schema
lives with its answer (``model_registry/answers/``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from features.decision import Decision
from model_registry.answers import ReasonOut
from model_registry.answers.listing import ListingResult
from model_registry.answers.merchant import MerchantResult
from model_registry.answers.stream import SegmentResult

MAX_BATCH = 1000


class ListingsResponse(BaseModel):
    """Answer to ``POST /v1/listings/score``: one result per listing, in request order."""

    request_id: str
    results: list[ListingResult]


class ErrorBody(BaseModel):
    """A JSON error of the service itself (validation errors are FastAPI's ``detail`` list,
    each naming its field)."""

    error: str
    message: str
    fallback_decision: Decision | None = None


class MerchantsResponse(BaseModel):
    """Answer to ``POST /v1/merchants/score``: one result per merchant, in request order."""

    request_id: str
    results: list[MerchantResult]


class StreamResponse(BaseModel):
    """Answer to ``POST /v1/streams/score``."""

    request_id: str
    stream_id: str
    decision: Decision
    score: float
    segments: list[SegmentResult]
    reasons: list[ReasonOut]
    model: str
    spans_cut_short: bool = Field(False, description="some segments' model spans were left out (span budget)")


class FeedbackResponse(BaseModel):
    """Answer to ``POST /v1/feedback``: the stored outcome and the decision it is about."""

    model_config = ConfigDict(protected_namespaces=())

    feedback_id: int
    entity_type: str
    entity_id: str
    request_id: str = Field(description="the scoring request the feedback is attached to")
    segment_index: int | None
    label: str = Field(description="the label as stored (stream categories in taxonomy order)")
    model: str = Field(description="the model version whose decision was reviewed")
