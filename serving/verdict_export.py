"""Reviewer verdicts exported as CSV, Parquet or JSON Lines, streamed chunk by chunk
(bounded memory): used by ``shopguard audit verdicts --out`` and the console's
``/console/verdicts/export.{csv|parquet|jsonl}`` alike.

One row per stored verdict row, oldest first: a stream verdict naming categories is one row
per segment; ``segment_index`` is empty for a verdict on the whole item. ``verdict`` is
``ok`` or ``violation`` (what ``label`` says). CSV cells cannot run as spreadsheet formulas
(``serving/decision_export.py``'s writer, ``defusedcsv``); Parquet and JSON Lines keep every
value exact. Times are UTC ISO 8601 with the zone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from kinds import CLEAN_FEEDBACK_LABEL
from serving.decision_export import csv_chunks, parquet_chunks, utc_iso
from serving.feedback import feedback_table

COLUMNS = ["id", "at", "reviewer", "entity_type", "entity_id", "request_id", "segment_index", "verdict", "label",
           "model", "note"]
FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
           "jsonl": "application/x-ndjson; charset=utf-8"}
F = feedback_table


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.int64()), ("at", pa.string()), ("reviewer", pa.string()),
                      ("entity_type", pa.string()), ("entity_id", pa.string()), ("request_id", pa.string()),
                      ("segment_index", pa.int64()), ("verdict", pa.string()), ("label", pa.string()),
                      ("model", pa.string()), ("note", pa.string())])


def verdict_query(since: datetime | None = None, until: datetime | None = None, reviewer: str | None = None) -> Any:
    """The stored verdicts from ``since`` (inclusive) to ``until`` (exclusive), of one reviewer
    when given."""
    statement = select(F)
    if since is not None:
        statement = statement.where(F.c.at >= since)
    if until is not None:
        statement = statement.where(F.c.at < until)
    if reviewer:
        statement = statement.where(F.c.reviewer == reviewer)
    return statement


def count_verdicts(engine: Engine, **filters: Any) -> int:
    """How many stored verdicts match."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(verdict_query(**filters).subquery())).scalar_one()


def iter_verdicts(engine: Engine, chunk_rows: int = 5000, **filters: Any) -> Iterator[list[dict[str, Any]]]:
    """Every matching verdict, oldest first, in chunks of ``chunk_rows`` (fetched by id
    ranges, never all at once)."""
    last_id = 0
    while True:
        statement = verdict_query(**filters).where(F.c.id > last_id).order_by(F.c.id).limit(chunk_rows)
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(statement).mappings()]
        if not rows:
            return
        last_id = rows[-1]["id"]
        yield rows


def export_row(row: dict[str, Any]) -> dict[str, Any]:
    """One stored verdict as an export row."""
    return {"id": row["id"], "at": utc_iso(row["at"]), "reviewer": row["reviewer"], "entity_type": row["entity_type"],
            "entity_id": row["entity_id"], "request_id": row["request_id"], "segment_index": row["segment_index"],
            "verdict": "ok" if row["label"] == CLEAN_FEEDBACK_LABEL else "violation", "label": row["label"],
            "model": row["model"], "note": row["note"]}


def _jsonl_chunks(chunks: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    for chunk in chunks:
        yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in chunk).encode("utf-8")


def export_verdicts(engine: Engine, file_format: str, chunk_rows: int = 5000, **filters: Any) -> Iterator[bytes]:
    """The matching verdicts, oldest first, as ``file_format`` (csv, parquet or jsonl) bytes,
    chunk by chunk; ``filters``: ``since``, ``until``, ``reviewer``."""
    if file_format not in FORMATS:
        raise ValueError(f"export format {file_format!r} is not one of {', '.join(FORMATS)}")
    rows = ([export_row(r) for r in chunk] for chunk in iter_verdicts(engine, chunk_rows=chunk_rows, **filters))
    if file_format == "csv":
        return csv_chunks(rows, COLUMNS)
    if file_format == "parquet":
        return parquet_chunks(rows, _schema())
    return _jsonl_chunks(rows)
