"""The verdict export's query parameters (``/console/verdicts/export.{format}``): an unknown
parameter or a bad value is a 400 page naming the field (``forms.parse``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.times import as_utc


class VerdictQuery(BaseModel):
    """Verdicts from ``since`` (inclusive) to ``until`` (exclusive), of one reviewer."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    since: datetime | None = None
    until: datetime | None = None
    reviewer: str | None = Field(None, max_length=128)

    @field_validator("since", "until")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    def filters(self) -> dict[str, Any]:
        """Filters for ``serving.verdict_export``."""
        return {"since": self.since, "until": self.until, "reviewer": self.reviewer}
