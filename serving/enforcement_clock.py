"""Each worker's enforcement clock: verdicts applied as they are stored, and, every
``SHOPGUARD_ENFORCEMENT_TICK_SECONDS``, what fell due (credit recoveries, point expiries,
penalty ends: entries dated when they took effect) and any stored verdict not yet applied
(a verdict whose enforcement failed after it was stored is applied on the next tick).

Workers tick independently; the store applies each due item and each verdict once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from common.times import as_utc
from kinds import kind_of_entity
from policy.state import VerdictGiven
from policy.store import EnforcementStore
from serving.feedback import FeedbackStore, feedback_table

logger = logging.getLogger("shopguard.enforcement")


def verdict_event(row: dict[str, Any]) -> VerdictGiven:
    """A stored feedback row as the enforcement event it is (ids as enforcement keys them; its
    time as UTC: SQLite gives back naive times)."""
    kind = kind_of_entity(row["entity_type"])
    return VerdictGiven(as_utc(row["at"]), row["id"], row["entity_type"], kind.answers.id_key(row["entity_id"]),
                        row["request_id"], row["label"], row["reviewer"], row["segment_index"])


def enforce_verdict(store: EnforcementStore, row: dict[str, Any]) -> None:
    """Apply a verdict just stored (``POST /v1/feedback``, the console); a failure is logged
    and left to the next tick of a worker's clock."""
    try:
        store.record_verdict(verdict_event(row))
    except SQLAlchemyError as exc:
        logger.warning("verdict %s stored, its enforcement deferred to the next tick: %s", row["id"], exc)


class EnforcementClock:
    """A daemon thread ticking the store; ``apply_verdict`` for verdicts as they are stored."""

    def __init__(self, store: EnforcementStore, feedback: FeedbackStore, interval_seconds: float = 60.0,
                 start: bool = True) -> None:
        self.store, self.feedback = store, feedback
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._cursor: int | None = None  # the feedback id up to which every verdict is applied
        self._thread = threading.Thread(target=self._run, name="enforcement-clock", daemon=True)
        if start:
            self._thread.start()

    def apply_verdict(self, row: dict[str, Any]) -> None:
        """``enforce_verdict`` with this clock's store."""
        enforce_verdict(self.store, row)

    def tick(self) -> None:
        """Apply what fell due and the verdicts not yet applied."""
        self.store.tick()
        self._catch_up()

    def _catch_up(self) -> None:
        if self._cursor is None:
            self._cursor = self._first_unapplied() - 1
        with self.feedback.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(feedback_table).where(feedback_table.c.id > self._cursor)
                                                  .order_by(feedback_table.c.id).limit(1000)).mappings()]
        for row in rows:
            self.store.record_verdict(verdict_event(row))  # applied once: a verdict applied before is skipped
            self._cursor = row["id"]

    def _first_unapplied(self) -> int:
        """The lowest feedback id whose verdict is not applied (past the highest applied one
        when all are): a verdict whose enforcement failed before a restart, below later ones
        that were applied, is applied by the next tick, not skipped."""
        applied = self.store.applied_feedback_ids()
        with self.feedback.engine.connect() as conn:
            ids = conn.execute(select(feedback_table.c.id).order_by(feedback_table.c.id)).scalars()
            return next((i for i in ids if i not in applied), max(applied, default=0) + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the clock must keep going: the next tick retries
                logger.exception("enforcement tick failed; retrying in %.0f s", self.interval)

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
