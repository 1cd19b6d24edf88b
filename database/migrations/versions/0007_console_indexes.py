"""Indexes for the console's pages (``serving/console``): the review queue reads pending
``review`` decisions newest first or highest score first, per entity type, and leaves out
those with a verdict (feedback looked up by entity and request); the decision search pages
by id. Measured in ``benchmarks/console_queries.py`` on 1,000,000 rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES: dict[str, tuple[str, list[str]]] = {
    "ix_decision_log_decision_id": ("decision_log", ["decision", "id"]),
    "ix_decision_log_decision_score_id": ("decision_log", ["decision", "score", "id"]),
    "ix_decision_log_decision_type_id": ("decision_log", ["decision", "entity_type", "id"]),
    "ix_feedback_type_entity_request": ("feedback", ["entity_type", "entity_id", "request_id"]),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for name, (table, columns) in INDEXES.items():
        if name not in {index["name"] for index in inspector.get_indexes(table)}:  # stamped from current tables
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
