"""The decision-log writer on a real SQLite file: batching, flush, close."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from model_registry.database import make_engine
from serving.decision_log import (
    DecisionLogWriter,
    DecisionRecord,
    decision_log_table,
    query_decisions,
)


def _records(n: int, request: str = "r1") -> list[DecisionRecord]:
    return [DecisionRecord(request, "listing", f"l{i}", "allow", 0.1, "listing-quality:v1",
                           [{"code": "c", "detail": "d"}], {"title": f"t{i}"}) for i in range(n)]


def _count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(decision_log_table)).scalar_one()


@pytest.fixture()
def engine(tmp_path: Path):
    return make_engine(f"sqlite:///{tmp_path / 'log.db'}")


def test_records_wait_for_the_flush_interval_then_are_written(engine) -> None:
    writer = DecisionLogWriter(engine, flush_seconds=0.5)
    writer.record(_records(3))
    assert _count(engine) == 0  # queued, off the request path
    deadline = time.monotonic() + 5
    while _count(engine) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count(engine) == 3
    writer.close()


def test_a_full_batch_is_written_before_the_interval(engine) -> None:
    writer = DecisionLogWriter(engine, max_batch=10, flush_seconds=60)
    writer.record(_records(12))
    deadline = time.monotonic() + 5
    while _count(engine) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count(engine) == 12
    writer.close()


def test_flush_writes_everything_queued_so_far(engine) -> None:
    writer = DecisionLogWriter(engine, flush_seconds=60)
    writer.record(_records(5, "a"))
    writer.record(_records(2, "b"))
    assert writer.flush() is True
    assert [r["request_id"] for r in query_decisions(engine)] == ["a"] * 5 + ["b"] * 2
    stored = query_decisions(engine, request_id="b")[0]
    assert stored["reasons"] == [{"code": "c", "detail": "d"}] and stored["inputs"] == {"title": "t0"}
    writer.close()


def test_close_drains_the_queue_and_refuses_more(engine) -> None:
    writer = DecisionLogWriter(engine, flush_seconds=60)
    writer.record(_records(50))
    writer.close()
    assert _count(engine) == 50
    assert writer.flush() is False
    with pytest.raises(RuntimeError, match="closed"):
        writer.record(_records(1))
