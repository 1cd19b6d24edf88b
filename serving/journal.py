"""The decision log's local journal: records the database did not take, as JSON lines
(fsynced), replayed into the database once it answers again.

A journal can be damaged: a crash or a full disk during a write leaves a line cut off
mid-JSON, a disk error leaves garbage, an operator leaves a file that cannot be read. None
of that stops the decision log:

- a **bad line** (not UTF-8, not JSON, not a decision record, or refused by the database) is
  moved to ``<journal>/quarantine/<file>.<time>.jsonl`` (one JSON object per bad line:
  ``source``, ``line``, ``error`` and the line's ``text``), an ERROR naming the file and the
  line is logged, and the file's other lines are replayed;
- a **file that cannot be read** (not a regular file, no permission, a read error) is moved
  into the quarantine folder whole, with an ERROR; if it cannot even be moved it is left
  where it is and skipped until the process restarts.

To replay a repaired record, write its corrected JSON line into a new ``decisions-*.jsonl``
file in the journal folder: the next replay takes it (record ids make a replay idempotent).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import math
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

logger = logging.getLogger("shopguard.decision_log")

JOURNAL_GLOB = "decisions-*.jsonl"
QUARANTINE_FOLDER = "quarantine"
MAX_LINE_BYTES = 64 * 2**20  # a record holds at most one 10 MiB request's input
LOGGED_BAD_LINES = 20  # per file; the quarantine file has them all
# The string columns of a record with their database lengths (serving/decision_log.py).
STRING_COLUMNS: dict[str, int] = {"request_id": 64, "entity_type": 16, "entity_id": 128, "decision": 16,
                                  "model": 160, "record_id": 32}
ROW_FIELDS = (*STRING_COLUMNS, "at", "score", "reasons", "inputs")

# Commits rows; returns None when the database is unavailable (replay later), else the
# positions of the rows it refused, each with the reason.
Commit = Callable[[list[dict[str, Any]]], list[tuple[int, str]] | None]


class BadLine(ValueError):
    """A journal line that is not a decision record."""


def parse_line(raw: bytes) -> dict[str, Any]:
    """One journal line as a database row, or ``BadLine`` saying what is wrong with it."""
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadLine(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(row, dict):
        raise BadLine("not a JSON object")
    for name, limit in STRING_COLUMNS.items():
        value = row.get(name)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise BadLine(f"{name!r} is missing, empty, not a string or over {limit} characters")
    score = row.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise BadLine("'score' is missing or not a finite number")
    if not isinstance(row.get("reasons"), list) or not isinstance(row.get("inputs"), dict):
        raise BadLine("'reasons' must be a list and 'inputs' an object")
    row["at"] = _timestamp(row.get("at"))
    check_logged_inputs(row["entity_type"], row["inputs"])
    return {name: row[name] for name in ROW_FIELDS}


def check_logged_inputs(entity_type: str, inputs: dict[str, Any]) -> None:
    """``BadLine`` unless ``entity_type`` is a kind's and ``inputs`` hold valid records of it
    (a stream's segments, another kind's one record): an operator's repaired line must not
    break the console's pages for everyone."""
    from pydantic import ValidationError

    from kinds import MODEL_KINDS

    by_entity = {k.entity_type: k for k in MODEL_KINDS.values()}
    if entity_type not in by_entity:
        raise BadLine(f"'entity_type' {entity_type[:40]!r} is not one of {', '.join(by_entity)}")
    kind = by_entity[entity_type]
    items = inputs.get("segments") if kind.multi_label else [inputs]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadLine("'inputs.segments' must be a list of segments")
    prefix = "inputs.segments.{}." if kind.multi_label else "inputs."
    for index, item in enumerate(items):
        for name, value in item.items():
            adapter = _field_adapter(kind.record, name)
            if adapter is None:
                continue
            try:
                adapter.validate_python(value, strict=False)
            except ValidationError as exc:
                raise BadLine(f"'{prefix.format(index)}{name}': {exc.errors()[0]['msg']}") from None


@functools.lru_cache(maxsize=256)
def _field_adapter(record: type[Any], name: str) -> Any:
    """A validator of one field of ``record`` (its type and constraints), None for a name the
    record does not have (a logged input may carry more, such as a stream's decisions)."""
    from pydantic import TypeAdapter

    info = record.model_fields.get(name)
    if info is None:
        return None
    return TypeAdapter(Annotated[info.annotation, *info.metadata]) if info.metadata else TypeAdapter(info.annotation)


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise BadLine("'at' is missing or not an ISO time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadLine(f"'at' {value[:40]!r} is not an ISO time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def journal_line(row: dict[str, Any]) -> bytes:
    """A database row as one journal line."""
    return (json.dumps({**row, "at": row["at"].isoformat()}, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass
class _Quarantine:
    """The bad lines of one journal file, written as they are found (a replay that stops
    because the database is unavailable rewrites the file on its next pass)."""

    source: Path
    target: Path
    count: int = 0
    logged: list[str] = field(default_factory=list)
    _handle: BinaryIO | None = None

    def add(self, number: int, error: str, raw: bytes) -> None:
        if self._handle is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.target.open("wb")
        entry = {"source": self.source.name, "line": number, "error": error,
                 "text": raw.decode("utf-8", errors="backslashreplace")}
        self._handle.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        self.count += 1
        if len(self.logged) < LOGGED_BAD_LINES:
            self.logged.append(f"line {number}: {error}")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


class DecisionJournal:
    """This process's append-only journal of records the database did not take, and the
    replay of every journal in the folder whose writer is gone (or of our own)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = self._new_path()
        self._handle: BinaryIO | None = None
        self._quarantine_names: dict[Path, Path] = {}
        self._skipped: set[Path] = set()  # unreadable and not movable: left until a restart
        self.quarantined_lines = 0
        self.quarantined_files = 0

    def _new_path(self) -> Path:
        return self.folder / f"decisions-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write rows and fsync before returning (the records are then durable). A failed
        write is cut back off the file (no torn line stays before later records) and the
        next append starts a new file."""
        if self._handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab")
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while we live
        start = self._handle.tell()
        try:
            self._handle.write(b"".join(journal_line(row) for row in rows))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                self._handle.truncate(start)
                os.fsync(self._handle.fileno())
            self.close()
            self.path = self._new_path()
            raise

    def files(self) -> list[Path]:
        """Journal files waiting for replay (those skipped as unreadable left out)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob(JOURNAL_GLOB) if p not in self._skipped)

    def pending(self) -> bool:
        """Whether any journal file waits for replay."""
        return bool(self.files())

    def replay(self, commit: Commit, max_batch: int) -> bool:
        """Replay every journal no living process holds, and our own; False when the
        database was unavailable (the rest waits for the next replay)."""
        return all(self._replay_file(path, commit, max_batch) for path in self.files())

    def _replay_file(self, path: Path, commit: Commit, max_batch: int) -> bool:
        try:
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                self._set_aside(path, "it is not a regular file")
                return True
            handle = path.open("rb")
        except FileNotFoundError:
            return True  # replayed by another worker meanwhile
        except OSError as exc:
            self._set_aside(path, f"it cannot be opened ({exc.strerror or exc})")
            return True
        with handle:
            if path != self.path:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True  # another worker's live journal
            quarantine = _Quarantine(path, self._quarantine_name(path))
            try:
                replayed = self._replay_lines(handle, commit, max_batch, quarantine)
            except OSError as exc:
                quarantine.close()
                self._set_aside(path, f"it cannot be read ({exc.strerror or exc})")
                return True
            finally:
                quarantine.close()
            if replayed is None:
                return False
            self._finish(path, replayed, quarantine)
        return True

    def _replay_lines(self, handle: BinaryIO, commit: Commit, max_batch: int,
                      quarantine: _Quarantine) -> int | None:
        """Commit the file's records in batches, quarantining bad lines; the records
        replayed, or None when the database was unavailable."""
        batch: list[tuple[int, bytes, dict[str, Any]]] = []
        replayed = 0
        for number, raw in _lines(handle):
            if raw is None:
                quarantine.add(number, f"line over {MAX_LINE_BYTES:,} bytes (not kept)", b"")
                continue
            if not raw.strip():
                continue
            try:
                batch.append((number, raw, parse_line(raw)))
            except BadLine as exc:
                quarantine.add(number, str(exc), raw)
            if len(batch) >= max_batch:
                stored = _commit_batch(batch, commit, quarantine)
                if stored is None:
                    return None
                replayed, batch = replayed + stored, []
        stored = _commit_batch(batch, commit, quarantine) if batch else 0
        return None if stored is None else replayed + stored

    def _finish(self, path: Path, replayed: int, quarantine: _Quarantine) -> None:
        if quarantine.count:
            self.quarantined_lines += quarantine.count
            for line in quarantine.logged:
                logger.error("decision journal %s %s; moved to %s", path, line, quarantine.target)
            logger.error("decision journal %s: %d bad line(s) moved to %s; its %d other record(s) replayed",
                         path, quarantine.count, quarantine.target, replayed)
        elif replayed:
            logger.info("replayed %d journaled decision record(s) from %s", replayed, path.name)
        self._quarantine_names.pop(path, None)
        self.replayed(path)

    def _quarantine_name(self, path: Path) -> Path:
        if path not in self._quarantine_names:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self._quarantine_names[path] = self.folder / QUARANTINE_FOLDER / f"{path.stem}.{stamp}.jsonl"
        return self._quarantine_names[path]

    def _set_aside(self, path: Path, why: str) -> None:
        """Move an unreadable journal file into the quarantine folder whole."""
        target = self._quarantine_name(path).with_suffix(".unreadable")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except OSError as exc:
            self._skipped.add(path)
            logger.error("decision journal %s cannot be replayed: %s, and it cannot be moved aside (%s); "
                         "skipped until the service restarts: move or repair it", path, why, exc)
            return
        self.quarantined_files += 1
        logger.error("decision journal %s cannot be replayed: %s; moved to %s", path, why, target)

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


def _lines(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines without their line break; None for a line over ``MAX_LINE_BYTES``
    (skipped without holding it in memory)."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        yield number, raw.rstrip(b"\r\n")


def _commit_batch(batch: list[tuple[int, bytes, dict[str, Any]]], commit: Commit,
                  quarantine: _Quarantine) -> int | None:
    """Commit a batch of parsed lines; rows the database refuses go to the quarantine.
    The rows stored, or None when the database is unavailable."""
    refused = commit([row for _, _, row in batch])
    if refused is None:
        return None
    for position, why in refused:
        number, raw, _ = batch[position]
        quarantine.add(number, f"refused by the database: {why}", raw)
    return len(batch) - len(refused)
