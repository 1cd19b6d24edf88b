"""The verdict export's query parameters (``/console/verdicts/export.{format}``): an unknown
parameter or a bad value is a 400 page naming the field (``forms.parse``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.times import UserTime


class VerdictQuery(BaseModel):
    """Verdicts from ``since`` (inclusive) to ``until`` (exclusive), of one reviewer."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    since: UserTime | None = None
    until: UserTime | None = None
    reviewer: str | None = Field(None, max_length=128)

    def filters(self) -> dict[str, Any]:
        """Filters for ``serving.verdict_export``."""
        return {"since": self.since, "until": self.until, "reviewer": self.reviewer}
