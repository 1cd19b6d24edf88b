"""The console's reads of the decision log, the feedback table and the registry.

Every page reads one bounded slice through an index (migration 0007): keyset paging by
``id`` (or ``score, id``), never ``OFFSET``; counts stop at ``COUNT_CAP``. The benchmark
``benchmarks/console_queries.py`` times them on 1,000,000 decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Text, and_, cast, func, or_, select

from kinds import MODEL_KINDS
from serving.console.claims import PER_CALL_TYPES, held_by_others
from serving.decision_log import decision_log_table
from serving.decision_queries import decision_query, decoded
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


def _latest_of_entity() -> Any:
    """The decision is its entity's latest (no later decision of the same entity): a listing
    or merchant re-scored many times is one queue item (index of migration 0011)."""
    later = D.alias("later")
    return ~select(later.c.id).where(later.c.entity_type == D.c.entity_type, later.c.entity_id == D.c.entity_id,
                                     later.c.id > D.c.id).exists()


def queue_statement(entity_type: str | None = None, model: str | None = None, category: str | None = None,
                    since: datetime | None = None, until: datetime | None = None) -> Any:
    """Pending reviews, filtered: one item per stream call, one per listing or merchant (its
    latest decision, when that is a ``review``), each without a verdict."""
    statement = decision_query(decision="review", model=model, entity_type=entity_type, since=since, until=until)
    if category:
        statement = statement.where(_category_filter(category))
    return statement.where(~_verdict_exists(), or_(D.c.entity_type.in_(PER_CALL_TYPES), _latest_of_entity()))


def _ordered(statement: Any, order: str, cursor: tuple[float, int] | None) -> Any:
    """``statement`` in the queue's order (newest first, or highest score first), after ``cursor``."""
    if order == "score":
        if cursor:
            score, last = cursor
            statement = statement.where(or_(D.c.score < score, and_(D.c.score == score, D.c.id < last)))
        return statement.order_by(D.c.score.desc(), D.c.id.desc())
    if cursor:
        statement = statement.where(D.c.id < cursor[1])
    return statement.order_by(D.c.id.desc())


def queue_page(engine: Engine, order: str, cursor: tuple[float, int] | None, **filters: Any) -> Page:
    """A page of the review queue, newest first (``order="newest"``) or highest score first."""
    statement = queue_statement(**filters)
    count, capped = _capped_count(engine, statement)
    with engine.connect() as conn:
        rows = [decoded(r) for r in conn.execute(_ordered(statement, order, cursor).limit(PAGE_ROWS + 1)).mappings()]
    more = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    next_cursor = f"{rows[-1]['score']!r}:{rows[-1]['id']}" if more else None
    return Page(rows, count, capped, next_cursor)


def scorings(engine: Engine, rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """How many decisions each listing or merchant of ``rows`` has (its re-scorings plus one)."""
    keys = {(r["entity_type"], r["entity_id"]) for r in rows if r["entity_type"] not in PER_CALL_TYPES}
    if not keys:
        return {}
    statement = (select(D.c.entity_type, D.c.entity_id, func.count())
                 .where(or_(*(and_(D.c.entity_type == t, D.c.entity_id == i) for t, i in sorted(keys))))
                 .group_by(D.c.entity_type, D.c.entity_id))
    with engine.connect() as conn:
        return {(t, i): int(n) for t, i, n in conn.execute(statement)}


def in_queue(engine: Engine, decision_id: int) -> bool:
    """Whether the decision is a pending review (what a ``feedback``-only token may open)."""
    with engine.connect() as conn:
        return conn.execute(queue_statement().with_only_columns(D.c.id).where(D.c.id == decision_id)).first() is not None


def next_in_queue(engine: Engine, current: dict[str, Any], order: str, reviewer: str,
                  now: datetime, **filters: Any) -> int | None:
    """The id of the pending review after ``current`` in the reviewer's order and filters
    (from the top once the end is reached), leaving out ``current`` and the items other
    reviewers hold; None when nothing else waits."""
    statement = (queue_statement(**filters).with_only_columns(D.c.id)
                 .where(D.c.id != current["id"], ~held_by_others(D, reviewer, now)))
    with engine.connect() as conn:
        following = conn.execute(_ordered(statement, order, (current["score"], current["id"])).limit(1)).scalar()
        return following or conn.execute(_ordered(statement, order, None).limit(1)).scalar()


def has_verdict_by(engine: Engine, decision: dict[str, Any], reviewer: str) -> bool:
    """Whether ``reviewer`` gave a verdict on the decision (they may open it again to change it)."""
    statement = select(F.c.id).where(F.c.entity_type == decision["entity_type"],
                                     F.c.entity_id == decision["entity_id"],
                                     F.c.request_id == decision["request_id"], F.c.reviewer == reviewer).limit(1)
    with engine.connect() as conn:
        return conn.execute(statement).first() is not None


def stored_verdicts(engine: Engine, first: int, last: int, reviewer: str) -> list[dict[str, Any]]:
    """The reviewer's verdict rows with ids ``first``..``last`` (what one verdict stored)."""
    statement = select(F).where(F.c.id >= first, F.c.id <= last, F.c.reviewer == reviewer).order_by(F.c.id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(statement.limit(1000)).mappings()]


def search_page(engine: Engine, before: int | None, **filters: Any) -> Page:
    """A page of the decision search, newest first; ``before``: the last id of the page before."""
    statement = decision_query(**filters)
    count, capped = _capped_count(engine, statement)
    if before:
        statement = statement.where(D.c.id < before)
    with engine.connect() as conn:
        rows = [decoded(r) for r in conn.execute(statement.order_by(D.c.id.desc()).limit(PAGE_ROWS + 1)).mappings()]
    more = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    return Page(rows, count, capped, str(rows[-1]["id"]) if more else None)


def decision_by_id(engine: Engine, decision_id: int) -> dict[str, Any] | None:
    """One logged decision, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(D).where(D.c.id == decision_id)).mappings().first()
    return None if row is None else decoded(row)


def charged_decision(engine: Engine, request_id: str | None, listing_id: str | None) -> dict[str, Any] | None:
    """The logged decision a ledger charge came from (its call's; a listing's own in a call of
    many), or None when it was not logged."""
    from features.ids import id_key

    if request_id is None:
        return None
    statement = select(D).where(D.c.request_id == request_id)
    if listing_id is not None:
        statement = statement.where(D.c.entity_id.in_((listing_id, id_key(listing_id))))
    with engine.connect() as conn:
        row = conn.execute(statement.order_by(D.c.id).limit(1)).mappings().first()
    return None if row is None else decoded(row)


def verdicts(engine: Engine, decision: dict[str, Any]) -> list[dict[str, Any]]:
    """Every verdict on a logged decision, oldest first, each marked ``superseded`` when the
    same reviewer gave a later verdict on the same item (segment): a changed verdict; and
    ``contradicts`` when it disagrees with another reviewer's earlier verdict that stands."""
    statement = select(F).where(F.c.entity_type == decision["entity_type"], F.c.entity_id == decision["entity_id"],
                                F.c.request_id == decision["request_id"]).order_by(F.c.id)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(statement).mappings()]
    for position, row in enumerate(rows):
        row["superseded"] = any(_overlap(row["segment_index"], e["segment_index"]) and e["reviewer"] == row["reviewer"]
                                for e in rows[position + 1:])
    for position, row in enumerate(rows):
        row["contradicts"] = any(_overlap(row["segment_index"], e["segment_index"]) and e["label"] != row["label"]
                                 and e["reviewer"] != row["reviewer"] and not e["superseded"]
                                 for e in rows[:position])
    return rows


def appeals(engine: Engine, decision: dict[str, Any]) -> list[dict[str, Any]]:
    """The appeals of the charges a logged decision caused (its call's, for a listing only its
    own), oldest first, with each charge's party, category and segment: an overturn by appeal
    shows on the decision as a verdict does."""
    from features.ids import id_key
    from policy.store import appeals_table as A
    from policy.store import ledger_table as L

    own = (decision["entity_id"], id_key(decision["entity_id"]))  # a call of many listings: this one's
    charged = L.c.request_id == decision["request_id"]
    listing = decision["inputs"].get("listing_id")  # a decision on a listing (its record names one)
    if isinstance(listing, str):  # a reviewer's finding logged before findings named their call
        charged = or_(charged, and_(L.c.request_id.is_(None), L.c.listing_id.in_((listing, id_key(listing)))))
    statement = (select(A.c.id, A.c.entity_type, A.c.entity_id, A.c.status, A.c.filed_at, A.c.decided_by,
                        A.c.decided_at, A.c.note, L.c.category, L.c.segment_index, L.c.listing_id)
                 .join(L, L.c.id == A.c.ledger_entry_id).where(charged).order_by(A.c.id))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(statement).mappings()]
    return [r for r in rows if r["listing_id"] is None or r["listing_id"] in own]


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
    statement = (decision_query(model=model_name, since=now - timedelta(days=days))
                 .with_only_columns(day, D.c.model, D.c.decision, func.count())
                 .group_by(day, D.c.model, D.c.decision).order_by(day))
    with engine.connect() as conn:
        return [(str(d), str(m), str(o), int(n)) for d, m, o, n in conn.execute(statement)]


def reviewed_decisions(engine: Engine) -> list[dict[str, Any]]:
    """The newest ``CHART_FEEDBACK_ROWS`` verdict rows with the decision each is about (its
    id: the item): what ``review_stats`` folds into one verdict per item."""
    on = and_(F.c.entity_type == D.c.entity_type, F.c.entity_id == D.c.entity_id, F.c.request_id == D.c.request_id)
    statement = (select(F.c.id.label("verdict_id"), F.c.reviewer, F.c.label, F.c.segment_index, F.c.entity_type,
                        D.c.id.label("decision_id"), D.c.decision, D.c.inputs)
                 .join(D, on).order_by(F.c.id.desc()).limit(CHART_FEEDBACK_ROWS))
    with engine.connect() as conn:
        return [decoded({**r, "reasons": []}) for r in conn.execute(statement).mappings()]
