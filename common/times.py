"""Times given by users, as the UTC times the database stores and compares."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime | None) -> datetime | None:
    """A time as UTC: one without a zone is read as UTC, one with a zone is converted (a
    ValueError where the conversion leaves the range of dates, e.g. year 9999 at -23:59)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the range of dates once converted to UTC") from None
