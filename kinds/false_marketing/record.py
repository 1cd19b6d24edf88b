"""false-marketing's record: one ASR segment of a livestream transcript."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.schemas import MAX_COUNT, checked_text

MARKETING_LABELS_COLUMN = "labels"  # categories joined by "|"; empty when the segment is clean
MAX_SEGMENT_CHARS = 2000


class TranscriptSegment(BaseModel):
    """One ASR segment of a livestream: its text and its time in the stream."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(min_length=1, max_length=MAX_SEGMENT_CHARS)
    start_ms: int = Field(ge=0, le=MAX_COUNT)
    end_ms: int = Field(ge=0, le=MAX_COUNT)

    @field_validator("text")
    @classmethod
    def _text_has_content(cls, value: str) -> str:
        return checked_text(value, MAX_SEGMENT_CHARS, required=True)

    @model_validator(mode="after")
    def _ends_after_start(self) -> TranscriptSegment:
        if self.end_ms < self.start_ms:
            raise ValueError("end_ms must not be before start_ms")
        return self
