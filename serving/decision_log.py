"""The decision log: one row per scored item (listing, merchant, stream) with the request
id, time, entity, decision, score, reasons, model version and the input as received.

A decision is durable before its answer is sent. The service hands a request's records to
``DecisionLogWriter.record`` and waits: the writer's thread commits everything queued by
concurrent requests in one transaction (group commit), retrying while the database is busy.
When the database stays unavailable past ``retry_seconds``, the records are appended to a
local journal (JSON lines, fsynced) instead, and the thread replays the journal into the
database once it answers again. Every record has a unique ``record_id``, so a replay never
stores a record twice. ``close()`` (on shutdown, SIGTERM included) drains the queue.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

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
    Column("record_id", String(32), nullable=True, unique=True, index=True),
)
JOURNAL_GLOB = "decisions-*.jsonl"


class DecisionLogUnavailable(RuntimeError):
    """Records could be neither committed nor journaled in time: the answer must not be sent."""


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
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def row(self, at: datetime) -> dict[str, Any]:
        """The database row."""
        return {**self.__dict__, "at": at}


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    stored: bool = False


class DecisionJournal:
    """This process's append-only journal of records the database did not take, and the
    replay of every journal in the folder whose writer is gone (or of our own)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f"decisions-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._handle: Any = None

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write rows and fsync before returning (the records are then durable)."""
        if self._handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while we live
        for row in rows:
            self._handle.write(json.dumps({**row, "at": row["at"].isoformat()}, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def pending(self) -> bool:
        """Whether any journal file waits for replay."""
        return self.folder.is_dir() and any(self.folder.glob(JOURNAL_GLOB))

    def replayable(self) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
        """Journals to replay with their rows: ours, and those no living process holds."""
        for path in sorted(self.folder.glob(JOURNAL_GLOB)):
            if path != self.path:
                try:
                    with path.open("r+", encoding="utf-8") as probe:
                        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another worker's live journal
            yield path, [self._row(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    @staticmethod
    def _row(line: str) -> dict[str, Any]:
        row = json.loads(line)
        row["at"] = datetime.fromisoformat(row["at"])
        return row

    def replayed(self, path: Path) -> None:
        """Remove a journal whose rows are now in the database."""
        if path == self.path and self._handle is not None:
            self._handle.close()
            self._handle = None
        path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close our file (it stays for replay if it holds rows)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class DecisionLogWriter:
    """Group-commits decision records from a background thread; falls back to a journal."""

    def __init__(self, engine: Engine, max_batch: int = 2000, flush_seconds: float = 0.2,
                 journal_dir: Path | None = None, retry_seconds: float = 1.0,
                 wait_seconds: float = 10.0) -> None:
        self._engine = engine
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._max_batch = max_batch
        self._idle_seconds = flush_seconds  # how often the idle thread checks for journals to replay
        self._retry_seconds = retry_seconds
        self._wait_seconds = wait_seconds
        self._journal = DecisionJournal(journal_dir) if journal_dir is not None else None
        self._closed = False
        self.committed = 0
        self.journaled = 0
        self._last_replay = 0.0
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def record(self, records: list[DecisionRecord], wait: bool = True) -> None:
        """Store records; with ``wait`` (the service), return only once they are committed or
        journaled, else raise ``DecisionLogUnavailable``."""
        if self._closed:
            raise RuntimeError("the decision log is closed")
        now = datetime.now(UTC)
        pending = _Pending([r.row(now) for r in records])
        self._queue.put(pending)
        if wait and not (pending.done.wait(self._wait_seconds) and pending.stored):
            raise DecisionLogUnavailable(f"{len(records)} decision record(s) not stored within "
                                         f"{self._wait_seconds:.0f}s")

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        dialect = self._engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            statement = (sqlite_insert if dialect == "sqlite" else pg_insert)(decision_log_table)
            statement = statement.on_conflict_do_nothing(index_elements=["record_id"])
        else:
            statement = insert(decision_log_table)
        with self._engine.begin() as conn:
            conn.execute(statement, rows)

    def _commit(self, rows: list[dict[str, Any]], retry_seconds: float | None = None) -> bool:
        """Insert with retries for ``retry_seconds``; False if the database never took them."""
        deadline = time.monotonic() + (self._retry_seconds if retry_seconds is None else retry_seconds)
        delay = 0.02
        while True:
            try:
                self._insert(rows)
                return True
            except SQLAlchemyError as exc:
                if time.monotonic() + delay > deadline:
                    logger.warning("decision log database unavailable (%s) for %d record(s)",
                                   type(exc).__name__, len(rows))
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def _store(self, batch: list[_Pending]) -> None:
        rows = [row for pending in batch for row in pending.rows]
        stored = False
        if rows and self._commit(rows):
            self.committed += len(rows)
            stored = True
        elif rows and self._journal is not None:
            try:
                self._journal.append(rows)
                self.journaled += len(rows)
                stored = True
            except OSError:
                logger.exception("could not journal %d decision record(s)", len(rows))
        elif not rows:
            stored = True
        else:
            logger.error("%d decision record(s) not stored: no journal configured", len(rows))
        for pending in batch:
            pending.stored = stored
            pending.done.set()

    def _replay(self) -> None:
        self._last_replay = time.monotonic()
        if self._journal is None or not self._journal.pending():
            return
        for path, rows in self._journal.replayable():
            for start in range(0, len(rows), self._max_batch):
                if not self._commit(rows[start:start + self._max_batch], retry_seconds=0.0):
                    return  # still unavailable: try again later
            self._journal.replayed(path)
            logger.info("replayed %d journaled decision record(s) from %s", len(rows), path.name)

    def _run(self) -> None:
        self._replay()
        while True:
            try:
                first = self._queue.get(timeout=self._idle_seconds)
            except queue.Empty:
                self._replay()
                continue
            batch: list[_Pending] = []
            stop = first is None
            if first is not None:
                batch.append(first)
            while not stop and sum(len(p.rows) for p in batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            self._store(batch)
            if stop:
                self._drain_and_stop()
                return
            if time.monotonic() - self._last_replay > self._idle_seconds:  # busy: replay between batches
                self._replay()

    def _drain_and_stop(self) -> None:
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                rest.append(item)
        self._store(rest)
        self._replay()
        if self._journal is not None:
            self._journal.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is stored; True once stored (False on timeout
        or when closed)."""
        if self._closed:
            return False
        marker = _Pending([])
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Store everything queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)


def _decision_query(entity_id: str | None = None, request_id: str | None = None, since: datetime | None = None,
                    decision: str | None = None, model: str | None = None) -> Any:
    table = decision_log_table
    statement = select(table)
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
    return statement


def _decoded(row: Any) -> dict[str, Any]:
    row = dict(row)
    for key in ("reasons", "inputs"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


def query_decisions(engine: Engine, *, entity_id: str | None = None, request_id: str | None = None,
                    since: datetime | None = None, decision: str | None = None,
                    model: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Logged decisions matching every given filter, oldest first. ``model`` matches a
    model name or a full ``name:version``."""
    statement = _decision_query(entity_id, request_id, since, decision, model).order_by(decision_log_table.c.id)
    if limit:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        return [_decoded(r) for r in conn.execute(statement).mappings()]


def latest_decisions(engine: Engine, limit: int, **filters: Any) -> tuple[int, list[dict[str, Any]]]:
    """How many decisions match, and the newest ``limit`` of them (oldest first), without
    reading the others."""
    statement = _decision_query(**filters)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
        rows = conn.execute(statement.order_by(decision_log_table.c.id.desc()).limit(limit)).mappings().all()
    return total, [_decoded(r) for r in reversed(rows)]


def iter_decisions(engine: Engine, chunk_rows: int = 5000, **filters: Any) -> Iterator[list[dict[str, Any]]]:
    """Every matching decision, oldest first, in chunks of ``chunk_rows`` (bounded memory:
    rows are fetched by id ranges, never all at once)."""
    last_id = 0
    while True:
        statement = (_decision_query(**filters).where(decision_log_table.c.id > last_id)
                     .order_by(decision_log_table.c.id).limit(chunk_rows))
        with engine.connect() as conn:
            rows = [_decoded(r) for r in conn.execute(statement).mappings()]
        if not rows:
            return
        last_id = rows[-1]["id"]
        yield rows
