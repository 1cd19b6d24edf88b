"""The decision log: one row per scored item (listing, merchant, stream) with the request
id, time, entity, decision, score, reasons, model version and the input as received.

Writes leave the request path: the service hands rows to ``DecisionLogWriter``, whose
background thread inserts them in batches. ``close()`` (called on shutdown, SIGTERM
included) drains the queue, so no accepted record is lost on a normal stop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
)

logger = logging.getLogger("shopguard.decision_log")
metadata = MetaData()

decision_log_table = Table(
    "decision_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("entity_type", String(16), nullable=False),
    Column("entity_id", String(128), nullable=False, index=True),
    Column("decision", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("model", String(160), nullable=False, index=True),
    Column("reasons", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),
)


@dataclass(frozen=True)
class DecisionRecord:
    """One logged decision."""

    request_id: str
    entity_type: str
    entity_id: str
    decision: str
    score: float
    model: str
    reasons: list[dict[str, Any]]
    inputs: dict[str, Any]

    def row(self, at: datetime) -> dict[str, Any]:
        """The database row."""
        return {**self.__dict__, "at": at}


class DecisionLogWriter:
    """Batches decision records into the database from a background thread."""

    def __init__(self, engine: Engine, max_batch: int = 2000, flush_seconds: float = 0.2) -> None:
        self._engine = engine
        self._queue: queue.Queue[list[dict[str, Any]] | threading.Event | None] = queue.Queue()
        self._max_batch = max_batch
        self._flush_seconds = flush_seconds
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def record(self, records: list[DecisionRecord]) -> None:
        """Queue records for writing (returns at once)."""
        if self._closed:
            raise RuntimeError("the decision log is closed")
        now = datetime.now(UTC)
        self._queue.put([r.row(now) for r in records])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(decision_log_table), rows)
        except Exception:  # never lose the thread; the rows are reported
            logger.exception("could not write %d decision records", len(rows))

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        while True:
            try:
                item = self._queue.get(timeout=self._flush_seconds)
            except queue.Empty:
                self._write(pending)
                pending = []
                continue
            if item is None:
                self._write(pending)
                return
            if isinstance(item, threading.Event):
                self._write(pending)
                pending = []
                item.set()
                continue
            pending.extend(item)
            if len(pending) >= self._max_batch:
                self._write(pending)
                pending = []

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued so far; True once written (False on timeout or when closed)."""
        if self._closed:
            return False
        written = threading.Event()
        self._queue.put(written)
        return written.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)


def query_decisions(engine: Engine, *, entity_id: str | None = None, request_id: str | None = None,
                    since: datetime | None = None, decision: str | None = None,
                    model: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Logged decisions matching every given filter, oldest first. ``model`` matches a
    model name or a full ``name:version``."""
    table = decision_log_table
    statement = select(table).order_by(table.c.id)
    if entity_id:
        statement = statement.where(table.c.entity_id == entity_id)
    if request_id:
        statement = statement.where(table.c.request_id == request_id)
    if since:
        statement = statement.where(table.c.at >= since)
    if decision:
        statement = statement.where(table.c.decision == decision)
    if model:
        statement = statement.where((table.c.model == model) | table.c.model.startswith(f"{model}:"))
    if limit:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(statement).mappings()]
    for row in rows:
        for key in ("reasons", "inputs"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
    return rows
