"""Typed responses of the service's own endpoints (feedback, appeals, errors) and their
request fields; each kind's request and response models live with its answers
(``kinds/<kind>/answers.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from common.decisions import Decision
from features.schemas import checked_text

MAX_APPEAL_REASON = 4000

# An appeal's reason: up to 4,000 characters once normalized, with a letter or digit (not
# spaces or zero-width characters only).
AppealReason = Annotated[str, Field(min_length=1, max_length=MAX_APPEAL_REASON),
                         AfterValidator(lambda value: checked_text(value, MAX_APPEAL_REASON, required=True))]


class ErrorBody(BaseModel):
    """A JSON error of the service itself (validation errors are FastAPI's ``detail`` list,
    each naming its field)."""

    error: str
    message: str
    fallback_decision: Decision | None = None


class AppealResponse(BaseModel):
    """Answer to ``POST /v1/appeals`` (201)."""

    appeal_id: int
    ledger_entry_id: int
    entity_type: str
    entity_id: str
    appellant: str
    status: str
    filed_at: datetime
    filed_by: str | None = Field(None, description="the calling token's name (null with authentication off): "
                                                   "another reviewer decides the appeal")


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
