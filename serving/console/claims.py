"""Claims on review-queue items: an item opened by a reviewer is theirs for ``CLAIM_MINUTES``
(reopening it renews the claim), shown as taken to everyone else, left out of everyone
else's "next item", and refused to anyone else's verdict until it expires. A verdict or a
skip releases it.

Claims live in the database (migration 0011), so every worker sees them; taking one is a
single conditional write (an insert, else an update of a claim that is expired or already
the reviewer's), so two reviewers opening the same item at once cannot both hold it.

An item is what the queue shows: a listing or a merchant (its latest decision stands for
every re-scoring; ``request_id`` is empty), or one stream call (``request_id`` set).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from kinds import MODEL_KINDS

CLAIM_MINUTES = 10
FORGET_AFTER = timedelta(days=1)  # expired claims older than this are deleted when another is taken
metadata = MetaData()

claims_table = Table(
    "review_claims",
    metadata,
    Column("entity_type", String(16), primary_key=True),
    Column("entity_id", String(128), primary_key=True),
    Column("request_id", String(64), primary_key=True),  # "" for a listing or merchant: the whole entity
    Column("decision_id", Integer, nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)
C = claims_table
PER_CALL_TYPES: tuple[str, ...] = tuple(k.entity_type for k in MODEL_KINDS.values() if k.multi_label)


@dataclass(frozen=True)
class Claim:
    """Who holds an item and until when."""

    reviewer: str
    decision_id: int
    claimed_at: datetime
    expires_at: datetime

    def held_by_other(self, reviewer: str, now: datetime) -> bool:
        """Whether someone other than ``reviewer`` holds it at ``now``."""
        return self.reviewer != reviewer and self.expires_at > now


def item_key(decision: dict[str, Any]) -> tuple[str, str, str]:
    """The queue item a logged decision belongs to: (entity type, entity id, request id or "")."""
    per_call = decision["entity_type"] in PER_CALL_TYPES
    return decision["entity_type"], decision["entity_id"], decision["request_id"] if per_call else ""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _claim(row: Any) -> Claim:
    return Claim(row["reviewer"], row["decision_id"], _utc(row["claimed_at"]), _utc(row["expires_at"]))


def _where(key: tuple[str, str, str]) -> Any:
    return and_(C.c.entity_type == key[0], C.c.entity_id == key[1], C.c.request_id == key[2])


def take(engine: Engine, decision: dict[str, Any], reviewer: str, now: datetime | None = None) -> Claim:
    """Claim the decision's item for ``reviewer`` unless someone else holds it: the claim
    in force afterwards (the reviewer's, renewed; or the other holder's)."""
    now = now or datetime.now(UTC)
    key = item_key(decision)
    values = {"decision_id": decision["id"], "reviewer": reviewer, "claimed_at": now,
              "expires_at": now + timedelta(minutes=CLAIM_MINUTES)}
    try:
        with engine.begin() as conn:
            conn.execute(delete(C).where(C.c.expires_at < now - FORGET_AFTER))
            conn.execute(insert(C).values(entity_type=key[0], entity_id=key[1], request_id=key[2], **values))
        return Claim(reviewer, decision["id"], now, values["expires_at"])
    except IntegrityError:
        pass  # held, by the reviewer or someone else: renewed or taken over below when allowed
    with engine.begin() as conn:
        conn.execute(update(C).where(_where(key), or_(C.c.reviewer == reviewer, C.c.expires_at <= now))
                     .values(**values))
        row = conn.execute(select(C).where(_where(key))).mappings().first()
    return _claim(row) if row is not None else take(engine, decision, reviewer, now)


def holder(engine: Engine, decision: dict[str, Any], now: datetime | None = None) -> Claim | None:
    """The claim in force on the decision's item, or None."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        row = conn.execute(select(C).where(_where(item_key(decision)), C.c.expires_at > now)).mappings().first()
    return None if row is None else _claim(row)


def release(engine: Engine, decision: dict[str, Any], reviewer: str) -> None:
    """Give the item back (a verdict, a skip): only the reviewer's own claim is removed."""
    with engine.begin() as conn:
        conn.execute(delete(C).where(_where(item_key(decision)), C.c.reviewer == reviewer))


def holders(engine: Engine, decisions: list[dict[str, Any]], now: datetime | None = None
            ) -> dict[tuple[str, str, str], Claim]:
    """The claims in force on the items of ``decisions`` (a queue page), by item key."""
    keys = list(dict.fromkeys(item_key(d) for d in decisions))
    if not keys:
        return {}
    now = now or datetime.now(UTC)
    statement = select(C).where(or_(*(_where(k) for k in keys)), C.c.expires_at > now)
    with engine.connect() as conn:
        return {(r["entity_type"], r["entity_id"], r["request_id"]): _claim(r)
                for r in conn.execute(statement).mappings()}


def held_by_others(decision_table: Table, reviewer: str, now: datetime) -> Any:
    """A condition on the decision log: its item is claimed by someone other than ``reviewer``
    (what "next item" leaves out)."""
    D = decision_table  # noqa: N806 - the table's short name, as in queries.py
    per_call = D.c.entity_type.in_(PER_CALL_TYPES)
    same_item = or_(and_(per_call, C.c.request_id == D.c.request_id), and_(~per_call, C.c.request_id == ""))
    return select(C.c.reviewer).where(C.c.entity_type == D.c.entity_type, C.c.entity_id == D.c.entity_id, same_item,
                                      C.c.reviewer != reviewer, C.c.expires_at > now).exists()
