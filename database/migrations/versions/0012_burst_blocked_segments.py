"""A room's flagged segments remember whether the stream's burst rule blocked on them (a review
charged as a block): a host named after the room's first chunks is charged for those too.
Segments stored before are taken as not burst-blocked.

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


def downgrade() -> None:
    with op.batch_alter_table("room_segments") as batch:
        batch.drop_column("rule_blocked")
