"""The review queue worked by several reviewers (``serving/console``): claims on queue items
(an item opened by one reviewer is shown as taken to the others for ten minutes), and an
index for the queue's one item per listing or merchant (its latest decision: is there a
later decision of the same entity?).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_claims",
        sa.Column("entity_type", sa.String(16), primary_key=True, nullable=False),
        sa.Column("entity_id", sa.String(128), primary_key=True, nullable=False),
        sa.Column("request_id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("decision_id", sa.Integer, nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    existing = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("decision_log")}
    if "ix_decision_log_type_entity_id" not in existing:  # a database stamped from current tables has it
        op.create_index("ix_decision_log_type_entity_id", "decision_log", ["entity_type", "entity_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_decision_log_type_entity_id", table_name="decision_log")
    op.drop_table("review_claims")
