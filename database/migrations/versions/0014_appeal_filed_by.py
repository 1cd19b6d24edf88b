"""Each appeal names the token that filed it, so that its decision goes to another reviewer
(four eyes). Appeals filed before name none.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("appeals")}
    if "filed_by" in columns:  # a database stamped from tables made by the current code
        return
    with op.batch_alter_table("appeals") as batch:
        batch.add_column(sa.Column("filed_by", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("appeals") as batch:
        batch.drop_column("filed_by")
