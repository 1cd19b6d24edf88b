"""Reading the decision log: the filtered query every reader shares (the console, the
exports, ``shopguard audit``, feedback's target lookup), whole, newest, or in chunks. The
writer (``serving/decision_log.py``) only writes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select

from kinds import MODEL_KINDS
from serving.decision_log import decision_log_table


def decision_query(entity_id: str | None = None, request_id: str | None = None, since: datetime | None = None,
                    decision: str | None = None, model: str | None = None, entity_type: str | None = None,
                    entity_ids: Sequence[str] | None = None, entity: str | None = None,
                    until: datetime | None = None) -> Any:
    """The SELECT of logged decisions matching every given filter (unordered): what the
    console's pages, the exports and ``query_decisions`` build on."""
    table = decision_log_table
    statement = select(table)
    if entity_id:
        statement = statement.where(table.c.entity_id == entity_id)
    if entity:  # as a person types it: that id, or the entity whose normalized id it is (merchants)
        normalized = [(table.c.entity_type == kind.entity_type) & (table.c.entity_id == kind.answers.id_key(entity))
                      for kind in MODEL_KINDS.values() if kind.answers.id_key(entity) != entity]
        statement = statement.where(or_(table.c.entity_id == entity, *normalized))
    if entity_ids:
        statement = statement.where(table.c.entity_id.in_(sorted(set(entity_ids))))
    if entity_type:
        statement = statement.where(table.c.entity_type == entity_type)
    if request_id:
        statement = statement.where(table.c.request_id == request_id)
    if since:
        statement = statement.where(table.c.at >= since)
    if until:
        statement = statement.where(table.c.at < until)
    if decision:
        statement = statement.where(table.c.decision == decision)
    if model:  # NAME:VERSION, or every version of NAME (a range: "NAME:" <= model < "NAME;", indexed)
        by_name = (table.c.model >= f"{model}:") & (table.c.model < f"{model};")
        statement = statement.where(table.c.model == model if ":" in model else by_name)
    return statement


def decoded(row: Any) -> dict[str, Any]:
    """A decision row as a dict, its JSON columns decoded (SQLite returns them as text)."""
    row = dict(row)
    for key in ("reasons", "inputs"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


def query_decisions(engine: Engine, *, entity_id: str | None = None, request_id: str | None = None,
                    since: datetime | None = None, decision: str | None = None,
                    model: str | None = None, limit: int | None = None, entity_type: str | None = None,
                    entity_ids: Sequence[str] | None = None, entity: str | None = None,
                    until: datetime | None = None) -> list[dict[str, Any]]:
    """Logged decisions matching every given filter, oldest first. ``model`` matches a
    model name or a full ``name:version``; ``entity_ids``: any of these ids; ``entity``: an
    id as a person types it (any entity with it, or the merchant whose normalized id it is)."""
    statement = decision_query(entity_id, request_id, since, decision, model, entity_type,
                                entity_ids, entity, until).order_by(decision_log_table.c.id)
    if limit:
        statement = statement.limit(limit)
    with engine.connect() as conn:
        return [decoded(r) for r in conn.execute(statement).mappings()]


def latest_decisions(engine: Engine, limit: int, **filters: Any) -> tuple[int, list[dict[str, Any]]]:
    """How many decisions match, and the newest ``limit`` of them (oldest first), without
    reading the others."""
    statement = decision_query(**filters)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
        rows = conn.execute(statement.order_by(decision_log_table.c.id.desc()).limit(limit)).mappings().all()
    return total, [decoded(r) for r in reversed(rows)]


def iter_decisions(engine: Engine, chunk_rows: int = 5000, **filters: Any) -> Iterator[list[dict[str, Any]]]:
    """Every matching decision, oldest first, in chunks of ``chunk_rows`` (bounded memory:
    rows are fetched by id ranges, never all at once)."""
    last_id = 0
    while True:
        statement = (decision_query(**filters).where(decision_log_table.c.id > last_id)
                     .order_by(decision_log_table.c.id).limit(chunk_rows))
        with engine.connect() as conn:
            rows = [decoded(r) for r in conn.execute(statement).mappings()]
        if not rows:
            return
        last_id = rows[-1]["id"]
        yield rows
