"""Each logged decision names the enforcement policy version it was decided under (its per-call
rules: the review burst, a merchant's hold), so that an auditor can follow a call raised by a
rule to the rules in force. Decisions logged before carry none.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("decision_log")}
    if "policy" in columns:  # a database stamped from tables made by the current code
        return
    with op.batch_alter_table("decision_log") as batch:
        batch.add_column(sa.Column("policy", sa.String(160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decision_log") as batch:
        batch.drop_column("policy")
