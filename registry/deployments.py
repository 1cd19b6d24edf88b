"""What each running service worker serves: one row per worker and model, written by the
worker every few seconds (``serving/model_follower.py``), so that every place that names a
``production`` version can also say which version is answering, and show a mismatch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from common.settings import Settings

metadata = MetaData()

served_versions_table = Table(
    "served_versions",
    metadata,
    Column("worker", String(160), primary_key=True),
    Column("model_name", String(128), primary_key=True),
    Column("version", String(128), nullable=True),
    Column("error", Text, nullable=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)

FORGET_AFTER = timedelta(days=1)  # rows of a worker silent this long are dropped
DEFAULT_REPORT_SECONDS = 10.0


def report_seconds(settings: Settings) -> float:
    """How often a worker reports (and follows, unless following is off)."""
    return settings.follow_seconds or DEFAULT_REPORT_SECONDS


def live_window(settings: Settings) -> timedelta:
    """A worker that has not reported for this long is taken for stopped."""
    return timedelta(seconds=max(60.0, 3 * report_seconds(settings)))


@dataclass(frozen=True)
class ServedVersion:
    """One worker's model: the version answering (None: none loaded) and why it is not the
    production one when it could not follow (``error``)."""

    worker: str
    model_name: str
    version: str | None
    error: str | None
    seen_at: datetime


class ServedVersions:
    """Reads and writes the workers' reports."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def report(self, worker: str, served: dict[str, tuple[str | None, str | None]]) -> None:
        """Replace ``worker``'s rows with ``served`` (model name -> (version, error)) in one
        transaction; rows of workers silent for a day are dropped."""
        now = datetime.now(UTC)
        rows = [{"worker": worker, "model_name": name, "version": version, "error": error, "seen_at": now}
                for name, (version, error) in served.items()]
        with self._engine.begin() as conn:
            conn.execute(delete(served_versions_table).where(
                (served_versions_table.c.worker == worker) | (served_versions_table.c.seen_at < now - FORGET_AFTER)))
            if rows:
                conn.execute(insert(served_versions_table), rows)

    def withdraw(self, worker: str) -> None:
        """Remove ``worker``'s rows (it stops)."""
        with self._engine.begin() as conn:
            conn.execute(delete(served_versions_table).where(served_versions_table.c.worker == worker))

    def live(self, max_age: timedelta) -> list[ServedVersion]:
        """Rows of workers that reported within ``max_age``, by model and worker."""
        since = datetime.now(UTC) - max_age
        with self._engine.connect() as conn:
            rows = conn.execute(select(served_versions_table).where(served_versions_table.c.seen_at >= since)
                                .order_by(served_versions_table.c.model_name, served_versions_table.c.worker)
                                ).mappings().all()
        return [ServedVersion(r["worker"], r["model_name"], r["version"], r["error"], _aware(r["seen_at"]))
                for r in rows]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def serving_summary(production: str | None, served: list[ServedVersion]) -> dict[str, object]:
    """What answers for one model: each live worker's version, and whether they all serve the
    ``production`` version (``in_sync``; None when no worker reported)."""
    workers = [{"worker": s.worker, "version": s.version, "error": s.error, "seen_at": s.seen_at.isoformat()}
               for s in served]
    in_sync = None if not served else all(s.version == production for s in served)
    return {"workers": workers, "in_sync": in_sync}
