"""The console's reads of the decision log, the feedback table and the registry.

Every page reads one bounded slice through an index (migration 0007): keyset paging by
``id`` (or ``score, id``), never ``OFFSET``; counts stop at ``COUNT_CAP``. The benchmark
``benchmarks/console_queries.py`` times them on 1,000,000 decisions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Text, and_, cast, func, or_, select

from model_registry.kinds import CLEAN_FEEDBACK_LABEL, MODEL_KINDS, ModelKind, kind_of_entity
from serving.decision_log import _decision_query, _decoded, decision_log_table
from serving.feedback import feedback_table

PAGE_ROWS = 50
COUNT_CAP = 10_000
DECISIONS = ("block", "review", "allow")
CHART_FEEDBACK_ROWS = 20_000
D, F = decision_log_table, feedback_table


@dataclass(frozen=True)
class Page:
    """One page of rows, the matching count (at most ``COUNT_CAP``; ``capped`` when more
    match) and the cursor of the next page (None on the last)."""

    rows: list[dict[str, Any]]
    count: int
    capped: bool
    next_cursor: str | None


def _capped_count(engine: Engine, statement: Any) -> tuple[int, bool]:
    limited = statement.with_only_columns(D.c.id).order_by(None).limit(COUNT_CAP + 1).subquery()
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(limited)).scalar_one()
    return min(count, COUNT_CAP), count > COUNT_CAP


def _verdict_exists() -> Any:
    return select(F.c.id).where(F.c.entity_type == D.c.entity_type, F.c.entity_id == D.c.entity_id,
                                F.c.request_id == D.c.request_id).exists()


def _category_filter(category: str) -> Any:
    """Decisions whose logged input or reasons name ``category`` (a value checked against the
    kinds' taxonomies and the listing categories before it gets here)."""
    quoted = f'%"{category}"%'
    return or_(cast(D.c.inputs, Text).like(quoted), cast(D.c.reasons, Text).like(quoted))


def queue_statement(entity_type: str | None = None, model: str | None = None, category: str | None = None,
                    since: datetime | None = None, until: datetime | None = None) -> Any:
    """Pending reviews: decisions of ``review`` without a verdict, filtered."""
    statement = _decision_query(decision="review", model=model, entity_type=entity_type, since=since, until=until)
    if category:
        statement = statement.where(_category_filter(category))
    return statement.where(~_verdict_exists())


def queue_page(engine: Engine, order: str, cursor: tuple[float, int] | None, **filters: Any) -> Page:
    """A page of the review queue, newest first (``order="newest"``) or highest score first."""
    statement = queue_statement(**filters)
    count, capped = _capped_count(engine, statement)
    if order == "score":
        if cursor:
            score, last = cursor
            statement = statement.where(or_(D.c.score < score, and_(D.c.score == score, D.c.id < last)))
        statement = statement.order_by(D.c.score.desc(), D.c.id.desc())
    else:
        if cursor:
            statement = statement.where(D.c.id < cursor[1])
        statement = statement.order_by(D.c.id.desc())
    with engine.connect() as conn:
        rows = [_decoded(r) for r in conn.execute(statement.limit(PAGE_ROWS + 1)).mappings()]
    more = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    next_cursor = f"{rows[-1]['score']!r}:{rows[-1]['id']}" if more else None
    return Page(rows, count, capped, next_cursor)


def in_queue(engine: Engine, decision_id: int) -> bool:
    """Whether the decision is a pending review (what a ``feedback``-only token may open)."""
    with engine.connect() as conn:
        return conn.execute(queue_statement().with_only_columns(D.c.id).where(D.c.id == decision_id)).first() is not None


def next_in_queue(engine: Engine, after_id: int) -> int | None:
    """The id of the next pending review older than ``after_id`` (newest first), else the newest."""
    statement = queue_statement().with_only_columns(D.c.id)
    with engine.connect() as conn:
        older = conn.execute(statement.where(D.c.id < after_id).order_by(D.c.id.desc()).limit(1)).scalar()
        return older or conn.execute(statement.order_by(D.c.id.desc()).limit(1)).scalar()


def search_page(engine: Engine, before: int | None, **filters: Any) -> Page:
    """A page of the decision search, newest first; ``before``: the last id of the page before."""
    statement = _decision_query(**filters)
    count, capped = _capped_count(engine, statement)
    if before:
        statement = statement.where(D.c.id < before)
    with engine.connect() as conn:
        rows = [_decoded(r) for r in conn.execute(statement.order_by(D.c.id.desc()).limit(PAGE_ROWS + 1)).mappings()]
    more = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    return Page(rows, count, capped, str(rows[-1]["id"]) if more else None)


def decision_by_id(engine: Engine, decision_id: int) -> dict[str, Any] | None:
    """One logged decision, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(D).where(D.c.id == decision_id)).mappings().first()
    return None if row is None else _decoded(row)


def verdicts(engine: Engine, decision: dict[str, Any]) -> list[dict[str, Any]]:
    """Every verdict on a logged decision, oldest first, each marked ``contradicts`` when it
    disagrees with an earlier one on the same item (segment)."""
    statement = select(F).where(F.c.entity_type == decision["entity_type"], F.c.entity_id == decision["entity_id"],
                                F.c.request_id == decision["request_id"]).order_by(F.c.id)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(statement).mappings()]
    for position, row in enumerate(rows):
        row["contradicts"] = any(_overlap(row["segment_index"], e["segment_index"]) and e["label"] != row["label"]
                                 for e in rows[:position])
    return rows


def _overlap(segment: int | None, other: int | None) -> bool:
    """Whether two verdicts cover a common item (None: the whole entity)."""
    return segment is None or other is None or segment == other


def review_load(engine: Engine, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """Per entity type: decisions and reviews from ``since`` to ``until`` (the review budget's
    measure; both bounds, so that the time index is used)."""
    statement = (select(D.c.entity_type, D.c.decision, func.count()).where(D.c.at >= since, D.c.at <= until)
                 .group_by(D.c.entity_type, D.c.decision))
    load: dict[str, dict[str, int]] = {kind.entity_type: {"decisions": 0, "reviews": 0}
                                       for kind in MODEL_KINDS.values()}
    with engine.connect() as conn:
        for entity_type, decision, count in conn.execute(statement):
            entry = load.setdefault(entity_type, {"decisions": 0, "reviews": 0})
            entry["decisions"] += count
            entry["reviews"] += count if decision == "review" else 0
    return load


def daily_outcomes(engine: Engine, model_name: str, days: int, now: datetime) -> list[tuple[str, str, str, int]]:
    """(day, model version, decision, count) of ``model_name`` over the last ``days`` days."""
    day = func.date(D.c.at)
    statement = (_decision_query(model=model_name, since=now - timedelta(days=days))
                 .with_only_columns(day, D.c.model, D.c.decision, func.count())
                 .group_by(day, D.c.model, D.c.decision).order_by(day))
    with engine.connect() as conn:
        return [(str(d), str(m), str(o), int(n)) for d, m, o, n in conn.execute(statement)]


def _flagged(kind: ModelKind, inputs: dict[str, Any], segment: int | None) -> set[str]:
    if not kind.multi_label:
        return {kind.positive_label or ""}
    labels = inputs.get("segment_labels") or []
    picked = labels if segment is None else labels[segment:segment + 1]
    return {category for segment_labels in picked for category in segment_labels}


def _confirmed(kind: ModelKind, label: str) -> set[str]:
    if label == CLEAN_FEEDBACK_LABEL:
        return set()
    return set(label.split("|")) if kind.multi_label else {label}


def reviewed_decisions(engine: Engine) -> list[dict[str, Any]]:
    """The newest ``CHART_FEEDBACK_ROWS`` verdicts with the decision each is about."""
    on = and_(F.c.entity_type == D.c.entity_type, F.c.entity_id == D.c.entity_id, F.c.request_id == D.c.request_id)
    statement = (select(F.c.reviewer, F.c.label, F.c.segment_index, F.c.entity_type, D.c.decision, D.c.inputs)
                 .join(D, on).order_by(F.c.id.desc()).limit(CHART_FEEDBACK_ROWS))
    with engine.connect() as conn:
        return [_decoded({**r, "reasons": []}) for r in conn.execute(statement).mappings()]


def confirmation_by_category(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Per category (``kind:category``): (reviews whose model flagged it, of those confirmed)."""
    flagged, confirmed = Counter(), Counter()
    for row in rows:
        kind = kind_of_entity(row["entity_type"])
        marked = _flagged(kind, row["inputs"], row["segment_index"])
        for category in marked:
            key = f"{kind.entity_type}: {category}"
            flagged[key] += 1
            confirmed[key] += category in _confirmed(kind, row["label"])
    return {key: (flagged[key], confirmed[key]) for key in sorted(flagged)}


def reviewer_agreement(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Per reviewer: (verdicts, verdicts agreeing with the model: a violation where it said
    block or review, ``ok`` where it said allow)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        violation = row["label"] != CLEAN_FEEDBACK_LABEL
        totals[row["reviewer"]][0] += 1
        totals[row["reviewer"]][1] += violation == (row["decision"] != "allow")
    return {name: (n, agreeing) for name, (n, agreeing) in sorted(totals.items())}
