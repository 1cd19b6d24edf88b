"""Decision records carry a unique id, so that a record replayed from the local journal
is never stored twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("decision_log")}
    if "record_id" in columns:  # a database stamped from tables made by the current code
        return
    with op.batch_alter_table("decision_log") as batch:
        batch.add_column(sa.Column("record_id", sa.String(32), nullable=True))
        batch.create_index("ix_decision_log_record_id", ["record_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("decision_log") as batch:
        batch.drop_index("ix_decision_log_record_id")
        batch.drop_column("record_id")
