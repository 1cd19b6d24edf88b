"""Registered model versions with the sha256 of their manifest (thresholds included).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "model_versions" in sa.inspect(op.get_bind()).get_table_names():  # stamped from tables made by current code
        return
    op.create_table(
        "model_versions",
        sa.Column("model_name", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(128), primary_key=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_versions")
