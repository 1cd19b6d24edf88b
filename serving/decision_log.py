"""The decision log: one row per scored item (listing, merchant, stream) with the request
id, time, entity, decision, score, reasons, model version and the input as received.

A decision is durable before its answer is sent. The service hands a request's records to
``DecisionLogWriter.record`` and waits: the writer's thread commits everything queued by
concurrent requests in one transaction (group commit), retrying while the database is busy.
When the database stays unavailable past ``retry_seconds``, the records are appended to a
local journal (JSON lines, fsynced; ``serving/journal.py``) instead, and the thread replays
the journal into the database once it answers again. Every record has a unique
``record_id``, so a replay never stores a record twice. A damaged journal line is moved to a
quarantine file and the rest replayed. ``close()`` (on shutdown, SIGTERM included) drains
the queue.

A request that stops waiting (``wait_seconds``) withdraws its records if the thread has not
taken them yet, so a record is never stored for an answer that was not sent; once taken,
the request waits for the outcome. The thread cannot die silently: an error in one batch is
logged and fails only that batch, and a thread that stops anyway is restarted (at most
``max_restarts`` times in ``restart_window_seconds``, then ``on_give_up`` is called: the
service then exits so that its supervisor starts a fresh worker); ``health()`` says whether
it runs, for ``/readyz``. Reading the log is ``serving/decision_queries.py``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
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
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import (
    DataError,
    IntegrityError,
    SQLAlchemyError,
)

from serving.health import StorageStatus
from serving.journal import JOURNAL_GLOB, DecisionJournal

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
    Column("policy", String(160), nullable=True),  # the policy version in force (None: logged before it was)
    # The console's queue and search (migration 0007).
    Index("ix_decision_log_decision_id", "decision", "id"),
    Index("ix_decision_log_decision_score_id", "decision", "score", "id"),
    Index("ix_decision_log_decision_type_id", "decision", "entity_type", "id"),
    Index("ix_decision_log_type_entity_id", "entity_type", "entity_id", "id"),  # the queue's latest per entity (0011)
)
__all__ = ["JOURNAL_GLOB", "DecisionLogUnavailable", "DecisionLogWriter", "DecisionRecord", "decision_log_table",
           "insert_rows", "write_records"]
# Errors that mean the database cannot be reached or is busy (retry later), as opposed to
# one that refuses a row.
# What a database says about one row (a constraint, a value it cannot hold). Anything else, a
# damaged file (``DatabaseError: database disk image is malformed``) included, is the storage
# being unavailable: records wait in the journal, never in the quarantine.
REPLAY_BACKOFF_SECONDS = 2.0  # between replays while the database cannot store
ROW_REFUSALS = (IntegrityError, DataError, TypeError, ValueError)


def error_text(exc: BaseException) -> str:
    """A database error as ``Type: message`` (the driver's message, without SQLAlchemy's SQL)."""
    return f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}"


def insert_rows(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Insert decision rows on an open transaction; a record already stored (same
    ``record_id``) is not stored again."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        statement = (sqlite_insert if dialect == "sqlite" else pg_insert)(decision_log_table)
        statement = statement.on_conflict_do_nothing(index_elements=["record_id"])
    else:
        statement = insert(decision_log_table)
    conn.execute(statement, [{"policy": None, **row} for row in rows])  # journal lines written before it carry none


def write_records(conn: Any, records: list[DecisionRecord]) -> None:
    """Write ``records`` on an open transaction, stamped now: how scoring calls' decisions are
    committed in the same transaction as their enforcement (``policy/store.py``)."""
    now = datetime.now(UTC)
    insert_rows(conn, [r.row(now) for r in records])


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
    policy: str | None = None  # the enforcement policy version whose per-call rules applied

    def row(self, at: datetime) -> dict[str, Any]:
        """The database row."""
        return {**self.__dict__, "at": at}


QUEUED, TAKEN, WITHDRAWN = "queued", "taken", "withdrawn"
TAKEN_WAIT_SECONDS = 60.0  # a request whose records are being stored waits this long for the outcome


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    stored: bool = False
    state: str = QUEUED  # changed under the writer's claim lock


class DecisionLogWriter:
    """Group-commits decision records from a background thread; falls back to a journal."""

    def __init__(self, engine: Engine, max_batch: int = 2000, flush_seconds: float = 0.2,
                 journal_dir: Path | None = None, retry_seconds: float = 1.0,
                 wait_seconds: float = 10.0, max_restarts: int = 5, restart_window_seconds: float = 600.0,
                 on_give_up: Callable[[], None] | None = None) -> None:
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
        self.storage = StorageStatus()  # why writes fail now, for /readyz
        self._replay_not_before = 0.0
        self._claims = threading.Lock()
        self._supervision = threading.Lock()
        self._max_restarts, self._restart_window = max_restarts, restart_window_seconds
        self._restarts: list[float] = []
        self._on_give_up = on_give_up
        self.given_up = False
        self.stopped_reason: str | None = None
        self._thread = self._start_thread()

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        thread.start()
        return thread

    # -- supervision -------------------------------------------------------------------

    def running(self) -> bool:
        """Whether the writer thread is alive."""
        return self._thread.is_alive()

    def ensure_running(self) -> bool:
        """Restart the writer thread if it stopped; False once the restarts are used up
        (``on_give_up`` has then been called) or the writer is closed."""
        if self._closed:
            return False
        with self._supervision:
            if self._thread.is_alive():
                return True
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < self._restart_window]
            if len(self._restarts) >= self._max_restarts:
                self._give_up()
                return False
            self._restarts.append(now)
            logger.error("the decision-log thread had stopped (%s); restarting it (restart %d of at most %d in "
                         "%.0f s)", self.stopped_reason, len(self._restarts), self._max_restarts,
                         self._restart_window)
            self._thread = self._start_thread()
            return True

    def _give_up(self) -> None:
        if self.given_up:
            return
        self.given_up = True
        logger.critical("the decision-log thread stopped %d times within %.0f s (last: %s); decisions cannot be "
                        "stored, scoring answers 503", len(self._restarts) + 1, self._restart_window,
                        self.stopped_reason)
        if self._on_give_up is not None:
            self._on_give_up()

    def health(self) -> dict[str, Any]:
        """The writer's state for ``/readyz``; a stopped thread is restarted after the
        report (which still says it stopped)."""
        report: dict[str, Any] = {"running": self.running(), "restarts": len(self._restarts),
                                  "stopped_reason": self.stopped_reason, "storage_problem": self.storage.problem()}
        if self._journal is not None:
            report["journal_quarantined_lines"] = self._journal.quarantined_lines
            report["journal_files_set_aside"] = self._journal.quarantined_files
        if not report["running"] and not self._closed:
            self.ensure_running()
        return report

    # -- the requests' side ------------------------------------------------------------

    def record(self, records: list[DecisionRecord], wait: bool = True) -> None:
        """Store records; with ``wait`` (the service), return only once they are committed or
        journaled, else raise ``DecisionLogUnavailable`` (the records are then withdrawn
        unless the thread is already storing them, in which case this waits for it)."""
        if self._closed:
            raise RuntimeError("the decision log is closed")
        if not self.ensure_running():
            raise DecisionLogUnavailable("the decision-log writer has stopped")
        now = datetime.now(UTC)
        pending = _Pending([r.row(now) for r in records])
        self._queue.put(pending)
        if not wait:
            return
        if not pending.done.wait(self._wait_seconds):
            with self._claims:
                if pending.state == QUEUED:
                    pending.state = WITHDRAWN
                    raise DecisionLogUnavailable(f"{len(records)} decision record(s) not stored within "
                                                 f"{self._wait_seconds:.0f}s")
            # Being stored now: the commit's retries, then the journal's fsync, end it.
            if not pending.done.wait(TAKEN_WAIT_SECONDS):
                logger.error("%d decision record(s) still being stored after %.0f s (a hung disk?); answered "
                             "503, the records may yet be stored", len(records), TAKEN_WAIT_SECONDS)
        if not pending.stored:
            raise DecisionLogUnavailable(f"{len(records)} decision record(s) could not be stored")

    def _take(self, pending: _Pending) -> bool:
        """Claim a queued request's records for storing; False if it withdrew them."""
        with self._claims:
            if pending.state == WITHDRAWN:
                return False
            pending.state = TAKEN
            return True

    # -- the thread's side -------------------------------------------------------------

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            insert_rows(conn, rows)

    def _commit(self, rows: list[dict[str, Any]], retry_seconds: float | None = None) -> bool:
        """Insert with retries for ``retry_seconds``; False if the database never took them."""
        deadline = time.monotonic() + (self._retry_seconds if retry_seconds is None else retry_seconds)
        delay = 0.02
        while True:
            try:
                self._insert(rows)
                self.storage.stored()
                return True
            except SQLAlchemyError as exc:
                if time.monotonic() + delay > deadline:
                    if cause := self.storage.failed(error_text(exc)):
                        logger.warning("decision log database unavailable (%s); records go to the journal", cause)
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def _replay_commit(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]] | None:
        """Insert journaled rows: None while the database is unavailable, else the rows it
        refused (found one by one when the batch is refused), with the reason."""
        try:
            self._insert(rows)
            self.storage.stored()
            return []
        except ROW_REFUSALS:  # a row the database refuses: find it
            pass
        except Exception as exc:  # locked, damaged, full, gone: the rows wait in the journal
            if cause := self.storage.failed(error_text(exc)):
                logger.warning("decision journal kept for replay: the database cannot store (%s)", cause)
            self._replay_not_before = time.monotonic() + REPLAY_BACKOFF_SECONDS
            return None
        refused = []
        for position, row in enumerate(rows):
            try:
                self._insert([row])
            except ROW_REFUSALS as exc:
                refused.append((position, f"{type(exc).__name__}: {str(exc)[:300]}"))
            except Exception:
                return None
        return refused

    def _store(self, batch: list[_Pending]) -> None:
        """Commit (or journal) a batch; every request in it learns the outcome, whatever
        happens (an unexpected error fails this batch only)."""
        stored = False
        try:
            stored = self._store_rows([row for pending in batch for row in pending.rows])
        except Exception:
            logger.exception("decision log: %d request(s) failed by an unexpected error", len(batch))
        finally:
            for pending in batch:
                pending.stored = stored
                pending.done.set()

    def _store_rows(self, rows: list[dict[str, Any]]) -> bool:
        if not rows:
            return True
        if self._commit(rows):
            self.committed += len(rows)
            return True
        if self._journal is None:
            logger.error("%d decision record(s) not stored: no journal configured", len(rows))
            return False
        try:
            self._journal.append(rows)
        except OSError:
            logger.exception("could not journal %d decision record(s)", len(rows))
            return False
        self.journaled += len(rows)
        return True

    def _replay(self) -> None:
        """Replay the journals now (errors are logged and the replay retried later)."""
        now = time.monotonic()
        self._last_replay = now
        if self._journal is None or now < self._replay_not_before or not self._journal.pending():
            return
        try:
            self._journal.replay(self._replay_commit, self._max_batch)
        except Exception:
            self._replay_not_before = time.monotonic() + 30
            logger.exception("decision journal replay failed; retrying in 30 s")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the thread ends; the next record() or health() restarts it
            self.stopped_reason = f"{type(exc).__name__}: {exc}"
            logger.critical("the decision-log thread stopped: %s", self.stopped_reason, exc_info=True)

    def _loop(self) -> None:
        self._replay()
        while True:
            try:
                first = self._queue.get(timeout=self._idle_seconds)
            except queue.Empty:
                self._replay()
                continue
            batch, stop = self._collect(first)
            self._store(batch)
            if stop:
                self._drain_and_stop()
                return
            if time.monotonic() - self._last_replay > self._idle_seconds:  # busy: replay between batches
                self._replay()

    def _collect(self, first: _Pending | None) -> tuple[list[_Pending], bool]:
        """The queued requests to store together (withdrawn ones left out), and whether
        ``close`` was called."""
        batch: list[_Pending] = []
        stop = first is None
        if first is not None and self._take(first):
            batch.append(first)
        while not stop and sum(len(p.rows) for p in batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
            elif self._take(item):
                batch.append(item)
        return batch, stop

    def _drain_and_stop(self) -> None:
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and self._take(item):
                rest.append(item)
        self._store(rest)
        self._replay()
        if self._journal is not None:
            self._journal.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is stored; True once stored (False on timeout
        or when closed)."""
        if self._closed or not self.ensure_running():
            return False
        marker = _Pending([])
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Store everything queued, then stop the thread."""
        if self._closed:
            return
        self.ensure_running()
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
