"""Typed response envelopes of the HTTP API (DESIGN.md contract); each kind's result schema
lives with its answer (``model_registry/answers/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from model_registry.answers import ReasonOut
from model_registry.answers.listing import ListingResult
from model_registry.answers.merchant import MerchantResult
from model_registry.answers.stream import SegmentResult
from policy.decisions import Decision

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


class SegmentCounts(BaseModel):
    """Segments at block and at review."""

    block: int
    review: int


class RoomWindow(BaseModel):
    """The flagged segments among the room's last ``segments`` segments, as the ladder weighs them."""

    segments: int
    block: int
    review: int
    weight: float


class RoomOut(BaseModel):
    """A live room's state after this call (``policy/engine.py``)."""

    action: Literal["none", "warn", "restrict", "stop"] = Field(description=(
        "the room's action now: none < warn < restrict < stop, never lowered within a broadcast except by an "
        "overturn"))
    counts: SegmentCounts = Field(description="segments at block and at review so far in the broadcast")
    window: RoomWindow = Field(description="the ladder's window (policy rooms.window_segments)")
    chunks: int = Field(description="calls the room has received")
    reasons: list[ReasonOut] = Field(description="the rule and the decisions behind the action")


class PenaltyOut(BaseModel):
    """A penalty in force."""

    kind: str
    since: datetime
    until: datetime | None = Field(description="null: until lifted")
    reason: str


class CreatorOut(BaseModel):
    """The host's credit after this call."""

    creator_id: str = Field(description="normalized (NFKC, format characters removed, trimmed, case-folded)")
    credit: int
    penalty: PenaltyOut | None


class StreamResponse(BaseModel):
    """Answer to ``POST /v1/streams/score``."""

    request_id: str
    stream_id: str
    chunk: int | None = Field(None, description="the caller's sequence number of this call in the stream")
    decision: Decision
    score: float
    segments: list[SegmentResult]
    reasons: list[ReasonOut]
    model: str
    spans_cut_short: bool = Field(False, description="some segments' model spans were left out (span budget)")
    room: RoomOut | None = Field(None, description="the live room's action (enforcement over time)")
    creator: CreatorOut | None = Field(None, description="with creator_id: the host's credit and penalty")


class AppealResponse(BaseModel):
    """Answer to ``POST /v1/appeals`` (201)."""

    appeal_id: int
    ledger_entry_id: int
    entity_type: str
    entity_id: str
    appellant: str
    status: str
    filed_at: datetime


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
