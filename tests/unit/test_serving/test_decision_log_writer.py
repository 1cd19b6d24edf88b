"""The decision-log writer on a real SQLite file: group commit before the answer, flush,
close, and the local journal when the database is locked by another process."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from database.engine import make_engine
from serving.decision_log import (
    DecisionLogUnavailable,
    DecisionLogWriter,
    DecisionRecord,
    decision_log_table,
)
from serving.decision_queries import query_decisions


def _records(n: int, request: str = "r1") -> list[DecisionRecord]:
    return [DecisionRecord(request, "listing", f"l{i}", "allow", 0.1, "listing-quality:v1",
                           [{"code": "c", "detail": "d"}], {"title": f"t{i}"}) for i in range(n)]


def _count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(decision_log_table)).scalar_one()


@pytest.fixture()
def database(tmp_path: Path) -> Path:
    path = tmp_path / "log.db"
    make_engine(f"sqlite:///{path}")  # migrated
    return path


def _writer(database: Path, **options) -> DecisionLogWriter:
    engine = make_engine(f"sqlite:///{database}", busy_timeout=0.05)
    return DecisionLogWriter(engine, journal_dir=database.parent / "journal", **options)


def test_record_returns_only_once_the_records_are_committed(database) -> None:
    writer = _writer(database, flush_seconds=60)
    writer.record(_records(3))
    assert _count(make_engine(f"sqlite:///{database}")) == 3  # no flush interval to wait for
    writer.close()


def test_concurrent_requests_share_commits(database) -> None:
    writer = _writer(database)
    threads = [threading.Thread(target=writer.record, args=(_records(5, f"r{i}"),)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count(make_engine(f"sqlite:///{database}")) == 200 and writer.committed == 200
    writer.close()


def test_flush_and_close_store_queued_records_and_refuse_more(database) -> None:
    writer = _writer(database, flush_seconds=60)
    writer.record(_records(5, "a"), wait=False)
    writer.record(_records(2, "b"), wait=False)
    assert writer.flush() is True
    engine = make_engine(f"sqlite:///{database}")
    assert [r["request_id"] for r in query_decisions(engine)] == ["a"] * 5 + ["b"] * 2
    stored = query_decisions(engine, request_id="b")[0]
    assert stored["reasons"] == [{"code": "c", "detail": "d"}] and stored["inputs"] == {"title": "t0"}
    writer.record(_records(50, "c"), wait=False)
    writer.close()
    assert _count(engine) == 57
    assert writer.flush() is False
    with pytest.raises(RuntimeError, match="closed"):
        writer.record(_records(1))


def test_a_locked_database_sends_records_to_the_journal_and_they_are_replayed_once(database) -> None:
    writer = _writer(database, flush_seconds=0.1, retry_seconds=0.2)
    holder = sqlite3.connect(database, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the database
    writer.record(_records(4, "locked"))  # answered: journaled and fsynced
    assert writer.journaled == 4 and list((database.parent / "journal").glob("decisions-*.jsonl"))
    holder.rollback()
    holder.close()
    assert writer.flush() and writer.flush()  # the idle thread replays the journal
    import time

    deadline = time.monotonic() + 5
    engine = make_engine(f"sqlite:///{database}")
    while _count(engine) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = query_decisions(engine, request_id="locked")
    assert len(rows) == 4 and len({r["record_id"] for r in rows}) == 4
    assert not list((database.parent / "journal").glob("decisions-*.jsonl"))
    writer.close()


def test_a_journal_left_by_a_dead_worker_is_replayed_without_duplicates(database) -> None:
    first = _writer(database, retry_seconds=0.1)
    holder = sqlite3.connect(database, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    first.record(_records(3, "orphan"))
    journal = next((database.parent / "journal").glob("decisions-*.jsonl"))
    orphan = journal.read_text()
    holder.rollback()
    holder.close()
    first.close()  # replays its own journal on the way out
    engine = make_engine(f"sqlite:///{database}")
    assert len(query_decisions(engine, request_id="orphan")) == 3
    (database.parent / "journal" / "decisions-999999-dead.jsonl").write_text(orphan)  # the same rows again
    second = _writer(database)
    assert second.flush()
    second.close()
    assert len(query_decisions(engine, request_id="orphan")) == 3  # replayed rows are not stored twice
    assert not list((database.parent / "journal").glob("decisions-*.jsonl"))


def test_without_database_or_journal_the_answer_is_refused(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout=0.05)
    holder = sqlite3.connect(tmp_path / "x.db", timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    writer = DecisionLogWriter(engine, retry_seconds=0.1)  # no journal folder
    with pytest.raises(DecisionLogUnavailable):
        writer.record(_records(1))
    holder.rollback()
    holder.close()
    writer.close()


@pytest.mark.parametrize("where", ["header", "middle"])
def test_a_damaged_database_is_unavailable_its_records_wait_in_the_journal_not_the_quarantine(database, where) -> None:
    import os
    import shutil

    writer = _writer(database, flush_seconds=0.05, retry_seconds=0.1)
    big = [DecisionRecord("before", "listing", f"b{i}", "allow", 0.1, "listing-quality:v1", [], {"title": "t" * 800})
           for i in range(2000)]
    writer.record(big)
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    backup = database.with_suffix(".backup")
    shutil.copy(database, backup)
    size = database.stat().st_size
    with database.open("r+b") as handle:  # a disk error: the header, or 256 KiB in the middle
        handle.seek(0 if where == "header" else size // 2)
        handle.write(os.urandom(100 if where == "header" else 256 * 1024))
    writer.record(_records(5, "after-damage"))  # answered: journaled
    assert writer.journaled == 5
    health = writer.health()
    assert health["storage_problem"].startswith("damaged database") and health["running"]
    journal = database.parent / "journal"
    assert not list(journal.glob("quarantine/*")) and list(journal.glob("decisions-*.jsonl"))
    writer.close()
    shutil.copy(backup, database)  # restored: the next writer replays the journal
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    restored = _writer(database)
    assert restored.flush()
    restored.close()
    engine = make_engine(f"sqlite:///{database}")
    assert len(query_decisions(engine, request_id="after-damage")) == 5
    assert not list(journal.glob("quarantine/*"))
