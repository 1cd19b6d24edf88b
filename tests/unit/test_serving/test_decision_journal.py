"""A damaged journal never stops the decision log (real SQLite, real files): bad lines are
quarantined with an error naming the file and the line, the other records replayed; an
unreadable file is moved aside; the writer thread cannot die silently; a request that stops
waiting withdraws its records."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from database.engine import make_engine
from serving.decision_log import DecisionLogUnavailable, DecisionLogWriter, DecisionRecord
from serving.decision_queries import query_decisions
from serving.journal import QUARANTINE_FOLDER, BadLine, journal_line, parse_line


def _record(entity: str, request: str = "journal") -> DecisionRecord:
    return DecisionRecord(request, "listing", entity, "allow", 0.1, "listing-quality:v1", [], {"title": entity})


def _line(entity: str, request: str = "journal") -> bytes:
    return journal_line(_record(entity, request).row(datetime.now(UTC)))


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    make_engine(f"sqlite:///{tmp_path / 'log.db'}")  # migrated
    (tmp_path / "journal").mkdir()
    return tmp_path


def _writer(home: Path, **options) -> DecisionLogWriter:
    engine = make_engine(f"sqlite:///{home / 'log.db'}", busy_timeout=0.05)
    return DecisionLogWriter(engine, journal_dir=home / "journal", flush_seconds=0.05, **options)


def _logged(home: Path, request: str = "journal") -> list[str]:
    return sorted(r["entity_id"] for r in query_decisions(make_engine(f"sqlite:///{home / 'log.db'}"),
                                                          request_id=request))


def _quarantined(home: Path) -> list[dict]:
    folder = home / "journal" / QUARANTINE_FOLDER
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]


def _replay_with(home: Path, content: bytes, name: str = "decisions-1-x.jsonl") -> DecisionLogWriter:
    (home / "journal" / name).write_bytes(content)
    writer = _writer(home)
    assert writer.flush(), "the writer thread did not answer"
    return writer


def _journals(home: Path) -> list[Path]:
    return list((home / "journal").glob("decisions-*.jsonl"))


def test_a_torn_last_line_is_quarantined_and_the_rest_replayed(home, caplog) -> None:
    torn = _line("L-torn")[:40]  # a crash or a full disk mid-write
    with caplog.at_level(logging.ERROR, logger="shopguard.decision_log"):
        writer = _replay_with(home, _line("L-ok") + torn)
    assert _logged(home) == ["L-ok"]
    [bad] = _quarantined(home)
    assert bad["source"] == "decisions-1-x.jsonl" and bad["line"] == 2 and bad["text"] == torn.decode()
    assert "not JSON" in bad["error"]
    assert any("decisions-1-x.jsonl" in m and "line 2" in m for m in caplog.messages)
    assert not _journals(home)
    writer.record([_record("L-after", "after")])  # scoring goes on
    assert _logged(home, "after") == ["L-after"] and writer.health()["running"]
    writer.close()


def test_garbage_in_the_middle_is_quarantined_and_the_lines_around_it_replayed(home) -> None:
    garbage = b"\x00\xff\xfe garbage \x9c\n"
    not_a_record = json.dumps({"request_id": "journal", "score": "high"}).encode() + b"\n"
    writer = _replay_with(home, _line("L-1") + garbage + not_a_record + b"\n" + _line("L-4"))
    assert _logged(home) == ["L-1", "L-4"]
    bad = _quarantined(home)
    assert [b["line"] for b in bad] == [2, 3]
    assert "not UTF-8" in bad[0]["error"] and "'entity_type' is missing" in bad[1]["error"]
    assert writer.health()["journal_quarantined_lines"] == 2
    writer.close()


def test_an_empty_journal_is_removed(home) -> None:
    writer = _replay_with(home, b"")
    assert not _journals(home) and not _quarantined(home)
    writer.record([_record("L-1")])
    assert _logged(home) == ["L-1"]
    writer.close()


def test_a_journal_that_is_not_a_file_is_moved_aside(home, caplog) -> None:
    (home / "journal" / "decisions-2-dir.jsonl").mkdir()
    os.mkfifo(home / "journal" / "decisions-3-fifo.jsonl")  # opening it for reading would block
    with caplog.at_level(logging.ERROR, logger="shopguard.decision_log"):
        writer = _replay_with(home, _line("L-ok"))
    assert _logged(home) == ["L-ok"] and not _journals(home)
    aside = sorted(p.name for p in (home / "journal" / QUARANTINE_FOLDER).iterdir())
    assert [name.split(".")[0] for name in aside] == ["decisions-2-dir", "decisions-3-fifo"]
    assert all(name.endswith(".unreadable") for name in aside)
    assert sum("cannot be replayed" in m for m in caplog.messages) == 2
    writer.record([_record("L-2")])
    assert _logged(home) == ["L-2", "L-ok"]
    writer.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file without read permission")
def test_a_journal_without_read_permission_is_moved_aside(home) -> None:
    path = home / "journal" / "decisions-4-locked.jsonl"
    path.write_bytes(_line("L-x"))
    path.chmod(0)
    writer = _writer(home)
    assert writer.flush()
    assert not path.exists() and writer.health()["journal_files_set_aside"] == 1
    writer.close()


def test_a_journal_that_cannot_be_read_or_moved_is_skipped_and_scoring_goes_on(home, caplog) -> None:
    # A directory whose entries cannot be renamed: the unreadable entry stays where it is.
    (home / "journal" / "decisions-5-dir.jsonl").mkdir()
    (home / "journal" / QUARANTINE_FOLDER).write_text("a file where the quarantine folder should be")
    with caplog.at_level(logging.ERROR, logger="shopguard.decision_log"):
        writer = _writer(home)
        assert writer.flush()
        writer.record([_record("L-1")])
    assert _logged(home) == ["L-1"]
    assert [m for m in caplog.messages if "skipped until the service restarts" in m]
    assert writer.running() and not writer._journal.pending()
    writer.close()


def test_parse_line_names_what_is_wrong() -> None:
    good = parse_line(_line("L-1").rstrip())
    assert good["entity_id"] == "L-1" and good["at"].tzinfo is not None
    for raw, message in [(b"[1]", "not a JSON object"), (b'{"a": ', "not JSON"), (b"\xff", "not UTF-8")]:
        with pytest.raises(BadLine, match=message):
            parse_line(raw)
    row = json.loads(_line("L-1"))
    for field, value, message in [("score", float("nan"), "finite"), ("at", "yesterday", "ISO"),
                                  ("entity_id", "x" * 129, "over 128")]:
        with pytest.raises(BadLine, match=message):
            parse_line(json.dumps({**row, field: value}).encode())


def test_a_writer_thread_that_stops_is_reported_and_restarted(home) -> None:
    engine = make_engine(f"sqlite:///{home / 'log.db'}", busy_timeout=0.05)
    fired = threading.Event()

    @event.listens_for(engine, "before_cursor_execute")
    def stop_once(*_args) -> None:
        if not fired.is_set():
            fired.set()
            raise SystemExit("stopped by the test")  # not an Exception: ends the thread

    writer = DecisionLogWriter(engine, journal_dir=home / "journal", flush_seconds=0.05)
    with pytest.raises(DecisionLogUnavailable):
        writer.record([_record("L-lost")])  # its batch fails, not silently
    writer._thread.join(5)
    first = writer.health()
    assert first["running"] is False and "stopped by the test" in first["stopped_reason"]
    assert writer.health()["running"] is True and writer.health()["restarts"] == 1
    writer.record([_record("L-1")])
    assert _logged(home) == ["L-1"]
    writer.close()


def test_a_writer_thread_that_keeps_stopping_is_given_up(home) -> None:
    engine = make_engine(f"sqlite:///{home / 'log.db'}", busy_timeout=0.05)

    @event.listens_for(engine, "before_cursor_execute")
    def always_stop(*_args) -> None:
        raise SystemExit("broken")

    gave_up = threading.Event()
    writer = DecisionLogWriter(engine, max_restarts=2, on_give_up=gave_up.set, wait_seconds=2)
    for _ in range(3):
        with pytest.raises(DecisionLogUnavailable):
            writer.record([_record("L")])
        writer._thread.join(5)
    with pytest.raises(DecisionLogUnavailable, match="stopped"):
        writer.record([_record("L")])
    assert gave_up.is_set() and writer.given_up and not writer.health()["running"]


def test_records_of_a_request_that_stopped_waiting_are_never_stored(home) -> None:
    engine = make_engine(f"sqlite:///{home / 'log.db'}", busy_timeout=0.05)
    writer = DecisionLogWriter(engine, retry_seconds=3, wait_seconds=0.5)  # no journal
    holder = sqlite3.connect(home / "log.db", timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    first_done, first_taken = threading.Event(), threading.Event()

    @event.listens_for(engine, "before_cursor_execute")
    def inserting(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            first_taken.set()  # the thread took the first's records and tries to store them
    outcome: list[str] = []

    def first() -> None:
        try:
            writer.record([_record("L-first", "first")])  # taken at once, retried while locked
            outcome.append("stored")
        except DecisionLogUnavailable:
            outcome.append("refused")
        first_done.set()

    threading.Thread(target=first).start()
    assert first_taken.wait(5)
    with pytest.raises(DecisionLogUnavailable):
        writer.record([_record("L-second", "second")])  # queued behind the first: withdrawn
    time.sleep(0.6)  # the first waits past its 0.5 s: its records are being stored
    holder.rollback()
    holder.close()
    assert first_done.wait(10)
    assert writer.flush()
    assert outcome == ["stored"] and _logged(home, "first") == ["L-first"]
    assert _logged(home, "second") == []
    writer.close()
