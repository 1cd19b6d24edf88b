"""Console sessions ended by signing out: a saved cookie of a signed-out session is refused
(``serving/console/session.py``), not honoured until it expires.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_signouts",
        sa.Column("session_sha256", sa.String(64), primary_key=True, nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("console_signouts")
