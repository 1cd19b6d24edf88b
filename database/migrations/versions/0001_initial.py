"""Initial schema: model aliases and their history, merchant decisions, the decision log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_aliases",
        sa.Column("model_name", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(32), primary_key=True),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "model_alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False, index=True),
        sa.Column("alias", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("version", sa.String(128), nullable=True),
        sa.Column("previous_version", sa.String(128), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "merchant_decisions",
        sa.Column("merchant_id", sa.String(128), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("model", sa.String(160), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "decision_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("entity_type", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(128), nullable=False, index=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("model", sa.String(160), nullable=False, index=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("decision_log", "merchant_decisions", "model_alias_history", "model_aliases"):
        op.drop_table(table)
