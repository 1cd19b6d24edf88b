"""A room's flagged segments remember whether the stream's burst rule blocked on them (a review
charged as a block): a host named after the room's first chunks is charged for those too.
Segments stored before are filled in from the logged chunk events (each names the segments its
burst blocked on), so that the live state and the shadow replay agree on them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("room_segments") as batch:
        batch.add_column(sa.Column("rule_blocked", sa.Boolean, nullable=False, server_default=sa.false()))
    bind = op.get_bind()
    events = sa.table("enforcement_events", sa.column("type", sa.String), sa.column("request_id", sa.String),
                      sa.column("payload", sa.JSON))
    segments = sa.table("room_segments", sa.column("request_id", sa.String), sa.column("segment_index", sa.Integer),
                        sa.column("rule_blocked", sa.Boolean))
    for request_id, payload in bind.execute(sa.select(events.c.request_id, events.c.payload)
                                            .where(events.c.type == "chunk")):
        blocked = [int(i) for i in (payload or {}).get("rule_blocked") or []]
        if blocked:
            bind.execute(segments.update().where(segments.c.request_id == request_id,
                                                 segments.c.segment_index.in_(blocked)).values(rule_blocked=True))


def downgrade() -> None:
    with op.batch_alter_table("room_segments") as batch:
        batch.drop_column("rule_blocked")
