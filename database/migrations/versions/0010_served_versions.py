"""What each running service worker serves (``registry/deployments.py``): the version
answering beside the ``production`` alias, so that a mismatch is visible.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_versions",
        sa.Column("worker", sa.String(160), primary_key=True, nullable=False),
        sa.Column("model_name", sa.String(128), primary_key=True, nullable=False),
        sa.Column("version", sa.String(128), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("served_versions")
