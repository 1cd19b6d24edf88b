"""Standing merchant decisions are keyed by the normalized merchant id (``features/ids.py``:
NFKC, format characters removed, trimmed, case-folded), so that ``M1``, ``"m1 "`` and ``Ｍ１``
are one merchant. Rows stored under another form move to their normalized id; where several
forms of one merchant meet, a block stands over any other decision, then the latest wins.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from features.ids import merchant_key

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHUNK = 5000
table = sa.table("merchant_decisions", sa.column("merchant_id", sa.String), sa.column("decision", sa.String),
                 sa.column("score", sa.Float), sa.column("model", sa.String),
                 sa.column("decided_at", sa.DateTime(timezone=True)))


def _rank(row: dict[str, Any]) -> tuple[bool, datetime]:
    """A block stands over any other decision; then the later one wins."""
    at = row["decided_at"]
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return row["decision"] == "block", at


def _move(bind: Any, rows: list[dict[str, Any]]) -> None:
    """Store ``rows`` under their normalized ids (the stronger row winning) and delete them
    under their old ids."""
    strongest: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = merchant_key(row["merchant_id"])
        if key not in strongest or _rank(row) > _rank(strongest[key]):
            strongest[key] = {**row, "merchant_id": key}
    bind.execute(table.delete().where(table.c.merchant_id.in_([r["merchant_id"] for r in rows])))
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    new = statement.excluded
    stronger = sa.or_(
        sa.and_(new.decision == "block", sa.or_(table.c.decision != "block", new.decided_at > table.c.decided_at)),
        sa.and_(new.decision != "block", table.c.decision != "block", new.decided_at > table.c.decided_at))
    statement = statement.on_conflict_do_update(
        index_elements=["merchant_id"], where=stronger,
        set_={c: new[c] for c in ("decision", "score", "model", "decided_at")})
    bind.execute(statement, list(strongest.values()))


def upgrade() -> None:
    bind = op.get_bind()
    if "merchant_decisions" not in sa.inspect(bind).get_table_names():
        return
    last = ""
    while True:
        rows = [dict(r) for r in bind.execute(sa.select(table).where(table.c.merchant_id > last)
                                              .order_by(table.c.merchant_id).limit(CHUNK)).mappings()]
        if not rows:
            return
        last = rows[-1]["merchant_id"]
        moving = [r for r in rows if merchant_key(r["merchant_id"]) != r["merchant_id"]]
        if moving:
            _move(bind, moving)


def downgrade() -> None:
    """Normalized ids stay normalized (the forms they were sent in are not kept)."""
