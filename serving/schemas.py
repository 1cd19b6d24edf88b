"""Typed request and response models of the HTTP API (DESIGN.md contract)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from features.decision import Decision

MAX_BATCH = 1000
# Characters of segment text per stream request, counted after Unicode normalization (NFKC),
# as the model works on them (a segment is about 46 characters; 1,000 segments of 100
# characters fit): bounds the work of one request.
MAX_STREAM_CHARS = 100_000


class ReasonOut(BaseModel):
    """Why a decision was taken: a stable code and a readable detail."""

    code: str
    detail: str


class ListingResult(BaseModel):
    """The decision for one listing."""

    model_config = ConfigDict(protected_namespaces=())

    listing_id: str
    decision: Decision
    score: float
    reasons: list[ReasonOut]
    model: str = Field(description="name:version of the model that produced the score")


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


class MerchantResult(BaseModel):
    """The decision for one merchant."""

    merchant_id: str
    decision: Decision
    score: float
    reasons: list[ReasonOut]
    model: str


class MerchantsResponse(BaseModel):
    """Answer to ``POST /v1/merchants/score``: one result per merchant, in request order."""

    request_id: str
    results: list[MerchantResult]


class SpanOut(BaseModel):
    """Evidence: characters [start, end) of the segment's original text."""

    start: int
    end: int
    text: str
    category: str
    source: str = Field(description="lexicon or model")
    rule_id: str | None = None


class SegmentResult(BaseModel):
    """Scores and decision of one segment."""

    index: int
    score: float
    decision: Decision
    labels: list[str]
    categories: dict[str, float]
    spans: list[SpanOut]
    novelty: float = Field(0.0, description="share of the segment's character bigrams unseen in training")
    spans_complete: bool = Field(True, description=(
        "false when the request's span budget ran out before this segment: its lexicon spans are "
        "all there, model spans are missing"))


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
