"""Reviewer feedback on logged decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("entity_type", sa.String(16), nullable=False, index=True),
        sa.Column("entity_id", sa.String(128), nullable=False, index=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("segment_index", sa.Integer, nullable=True),
        sa.Column("model", sa.String(160), nullable=False),
        sa.Column("label", sa.String(400), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feedback")
