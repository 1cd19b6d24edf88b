"""Times given by users, as the UTC times the database stores and compares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

ISO_TIME_HINT = "an ISO time such as 2026-11-23 or 2026-11-23T10:00:00 (UTC unless it names a zone)"


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


def parse_user_time(text: str) -> datetime:
    """A time a user typed, as UTC: ISO 8601 only (its basic form too: 20261123 is a date). A
    signed, decimal or ten-digit number is refused rather than read as a Unix time (``since=-1``
    meant 1969 to pydantic's lax datetime); a ValueError says what is expected."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not {ISO_TIME_HINT}") from None
    try:
        value = as_utc(parsed)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    assert value is not None
    return value


def time_option(value: str | None, option: str) -> datetime | None:
    """A command's time option (``--since``): ``parse_user_time``, its error a usage error
    naming ``option``."""
    import typer  # the commands' dependency, not common's

    if value is None:
        return None
    try:
        return parse_user_time(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def time_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """A command's ``--since`` and ``--until`` (``time_option``); an ``--until`` not after
    ``--since`` is a usage error (its empty answer would look like no activity)."""
    import typer

    start, end = time_option(since, "--since"), time_option(until, "--until")
    if start is not None and end is not None and end <= start:
        raise typer.BadParameter(f"{until} is not after --since {since}", param_hint="--until")
    return start, end


def _typed_time(value: Any) -> Any:
    return parse_user_time(value) if isinstance(value, str) else value


# A query or form field holding a user's time: ISO text or a datetime, stored as UTC.
UserTime = Annotated[datetime, BeforeValidator(_typed_time), AfterValidator(as_utc)]
