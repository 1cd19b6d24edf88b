"""Decision-log export as CSV or Parquet, streamed chunk by chunk (bounded memory): used by
``shopguard audit decisions --out`` and the console's export links alike.

CSV cells cannot run as spreadsheet formulas (OWASP's CSV injection rule, through
``defusedcsv``): a text cell starting with ``= + - @ | %``, a tab or a carriage return gets a
leading ``'`` (plain numbers such as ``-1.5`` are kept), in every column. Parquet keeps every
value exact: read it where the exact id matters.

Times are UTC ISO 8601 with the zone (``2026-12-05T08:01:02.123456+00:00``). ``reasons``
is a list of ``{code, detail}`` structs in Parquet (JSON text in CSV) and ``reason_codes``
their codes joined by ``;``; ``inputs`` is the input as logged, as JSON text.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from serving.decision_queries import iter_decisions

COLUMNS = ["id", "request_id", "at", "entity_type", "entity_id", "decision", "score", "model", "policy",
           "reason_codes", "reasons", "inputs", "record_id"]
FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def utc_iso(at: datetime) -> str:
    """``at`` as UTC ISO 8601 with the zone (a naive time is read as UTC, as stored)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _schema() -> Any:
    import pyarrow as pa

    reason = pa.struct([("code", pa.string()), ("detail", pa.string())])
    return pa.schema([("id", pa.int64()), ("request_id", pa.string()), ("at", pa.string()),
                      ("entity_type", pa.string()), ("entity_id", pa.string()), ("decision", pa.string()),
                      ("score", pa.float64()), ("model", pa.string()), ("policy", pa.string()),
                      ("reason_codes", pa.string()),
                      ("reasons", pa.list_(reason)), ("inputs", pa.string()), ("record_id", pa.string())])


def export_row(row: dict[str, Any], structured: bool) -> dict[str, Any]:
    """One decision as an export row (``structured``: reasons kept as a list, for Parquet)."""
    reasons = [{"code": str(r.get("code", "")), "detail": str(r.get("detail", ""))} for r in row["reasons"]]
    return {"id": row["id"], "request_id": row["request_id"], "at": utc_iso(row["at"]),
            "entity_type": row["entity_type"], "entity_id": row["entity_id"], "decision": row["decision"],
            "score": float(row["score"]), "model": row["model"], "policy": row.get("policy") or "",
            "reason_codes": ";".join(r["code"] for r in reasons),
            "reasons": reasons if structured else json.dumps(reasons, ensure_ascii=False),
            "inputs": json.dumps(row["inputs"], ensure_ascii=False), "record_id": row.get("record_id") or ""}


def spreadsheet_safe(value: Any) -> Any:
    """``value`` with a leading ``'`` when it starts with a tab or a carriage return, which
    spreadsheets skip before reading ``=``; ``defusedcsv`` takes care of ``= + - @ | %``."""
    if isinstance(value, str) and value[:1] in ("\t", "\r"):
        return "'" + value
    return value


def csv_chunks(chunks: Iterator[list[dict[str, Any]]], columns: list[str]) -> Iterator[bytes]:
    """Export rows (dicts keyed by ``columns``), chunk by chunk, as spreadsheet-safe CSV
    bytes, the header first (``defusedcsv`` and ``spreadsheet_safe`` on every cell)."""
    from defusedcsv import csv

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for chunk in chunks:
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in chunk)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def parquet_chunks(chunks: Iterator[list[dict[str, Any]]], schema: Any) -> Iterator[bytes]:
    """Export rows, chunk by chunk, as the bytes of one Parquet file of ``schema`` (a
    ``pyarrow.Schema``), each chunk one row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    with pq.ParquetWriter(sink, schema) as writer:
        for chunk in chunks:
            writer.write_table(pa.Table.from_pylist(chunk, schema))
            yield _drain(sink)
        writer.write_table(schema.empty_table())
    yield _drain(sink)


def _csv_chunks(chunks: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    return csv_chunks(([export_row(r, structured=False) for r in chunk] for chunk in chunks), COLUMNS)


def _parquet_chunks(chunks: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    return parquet_chunks(([export_row(r, structured=True) for r in chunk] for chunk in chunks), _schema())


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


class ExportSlots:
    """Exports running at once in one worker, bounded per caller and in total: each export
    holds a database cursor and a chunk of rows, so a caller opening dozens (or leaving them
    unread) would take the worker's memory and threads from everybody else."""

    def __init__(self, per_caller: int = 2, total: int = 4) -> None:
        self.per_caller, self.total = per_caller, total
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def claim(self, caller: str) -> str | None:
        """None when ``caller`` may start an export now (release it with ``release``), else
        ``"caller"`` (this caller runs ``per_caller`` already) or ``"total"`` (the worker is full)."""
        with self._lock:
            if self._running.get(caller, 0) >= self.per_caller:
                return "caller"
            if sum(self._running.values()) >= self.total:
                return "total"
            self._running[caller] = self._running.get(caller, 0) + 1
            return None

    def release(self, caller: str) -> None:
        """An export of ``caller`` ended (finished, failed or abandoned)."""
        with self._lock:
            self._running[caller] -= 1
            if not self._running[caller]:
                del self._running[caller]
        give_back_memory()

    def running(self) -> int:
        """Exports running now."""
        with self._lock:
            return sum(self._running.values())


def give_back_memory() -> None:
    """Return freed heap pages to the system (glibc keeps them after a large export's chunks
    are freed: a worker would otherwise stay at its peak)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def export_decisions(engine: Engine, file_format: str, chunk_rows: int = 5000, **filters: Any) -> Iterator[bytes]:
    """The matching decisions, oldest first, as ``file_format`` (csv or parquet) bytes,
    chunk by chunk."""
    if file_format not in FORMATS:
        raise ValueError(f"export format {file_format!r} is not one of {', '.join(FORMATS)}")
    chunks = iter_decisions(engine, chunk_rows=chunk_rows, **filters)
    return _csv_chunks(chunks) if file_format == "csv" else _parquet_chunks(chunks)
