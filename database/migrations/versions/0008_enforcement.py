"""Enforcement over time (``policy/``): live rooms and their calls, creators' credit,
merchants' standing, the append-only ledger, the action feed, appeals and the event log a
shadow replay reads. The merchant-risk model's standing blocks (``merchant_decisions``) become
the merchants' model holds (``merchant_standing.model_hold``), the one place a merchant's
standing is kept; the old table is dropped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("appeals", "creators", "enforcement_actions", "enforcement_calls", "enforcement_events",
          "ledger_entries", "merchant_standing", "room_segments", "rooms")


def _create_tables() -> None:
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("appellant", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.UniqueConstraint("ledger_entry_id"),
    )
    op.create_index("ix_appeals_status", "appeals", ["status"])
    op.create_table(
        "creators",
        sa.Column("creator_id", sa.String(length=128), primary_key=True, nullable=False),
        sa.Column("credit", sa.Integer(), nullable=False),
        sa.Column("clock", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("penalty", sa.JSON(), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_creators_next_due_at", "creators", ["next_due_at"])
    op.create_table(
        "enforcement_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("before", sa.String(length=32), nullable=False),
        sa.Column("after", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.String(length=96), nullable=False),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=True),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_enforcement_actions_entity", "enforcement_actions", ["entity_type", "entity_id", "id"])
    op.create_table(
        "enforcement_calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merchant_id", sa.String(length=128), nullable=True),
        sa.Column("creator_id", sa.String(length=128), nullable=True),
        sa.Column("chunk", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("segments_sha256", sa.String(length=64), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("entity_type", "entity_id", "chunk", name="uq_enforcement_calls_chunk"),
    )
    op.create_index("ix_enforcement_calls_request", "enforcement_calls", ["request_id", "entity_id"])
    op.create_table(
        "enforcement_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("source_key", sa.String(length=200), nullable=True),
        sa.Column("policy_version", sa.String(length=96), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.UniqueConstraint("source_key"),
    )
    op.create_index("ix_enforcement_events_request_id", "enforcement_events", ["request_id"])
    op.create_index("ix_enforcement_events_at", "enforcement_events", ["at"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=400), nullable=False),
        sa.Column("policy_version", sa.String(length=96), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("stream_id", sa.String(length=128), nullable=True),
        sa.Column("listing_id", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("segment_index", sa.Integer(), nullable=True),
        sa.Column("refers_to", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_ledger_entity", "ledger_entries", ["entity_type", "entity_id", "id"])
    op.create_index("ix_ledger_entries_request_id", "ledger_entries", ["request_id"])
    op.create_table(
        "merchant_standing",
        sa.Column("merchant_id", sa.String(length=128), primary_key=True, nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("penalty", sa.JSON(), nullable=True),
        sa.Column("model_hold", sa.JSON(), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_merchant_standing_next_due_at", "merchant_standing", ["next_due_at"])
    op.create_table(
        "room_segments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("segment_index", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("categories", sa.String(length=400), nullable=False),
        sa.Column("merchant_id", sa.String(length=128), nullable=True),
        sa.Column("overturned", sa.Boolean(), nullable=False),
        sa.Column("confirmed", sa.String(length=400), nullable=False),
        sa.UniqueConstraint("stream_id", "ordinal", name="uq_room_segments_ordinal"),
    )
    op.create_table(
        "rooms",
        sa.Column("stream_id", sa.String(length=128), primary_key=True, nullable=False),
        sa.Column("creator_id", sa.String(length=128), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False),
        sa.Column("reviews", sa.Integer(), nullable=False),
        sa.Column("penalty_stop", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
    )
    op.create_index("ix_rooms_creator_id", "rooms", ["creator_id"])
    op.create_index("ix_rooms_updated_at", "rooms", ["updated_at"])


def _move_merchant_blocks() -> None:
    """Each standing merchant-risk block becomes the merchant's model hold, since its decision."""
    bind = op.get_bind()
    if "merchant_decisions" not in sa.inspect(bind).get_table_names():
        return
    old = sa.table("merchant_decisions", sa.column("merchant_id", sa.String), sa.column("decision", sa.String),
                   sa.column("score", sa.Float), sa.column("model", sa.String),
                   sa.column("decided_at", sa.DateTime(timezone=True)))
    standing = sa.table("merchant_standing", sa.column("merchant_id", sa.String), sa.column("points", sa.Integer),
                        sa.column("created_at", sa.DateTime(timezone=True)), sa.column("penalty", sa.JSON),
                        sa.column("model_hold", sa.JSON), sa.column("next_due_at", sa.DateTime(timezone=True)))
    rows = bind.execute(sa.select(old).where(old.c.decision == "block")).mappings().all()
    moved = []
    for row in rows:
        since = row["decided_at"] if row["decided_at"].tzinfo else row["decided_at"].replace(tzinfo=UTC)
        detail = f"{row['model']} decided block (score {row['score']:.3f}, {since:%Y-%m-%d %H:%M} UTC)"
        moved.append({"merchant_id": row["merchant_id"], "points": 0, "created_at": since, "penalty": None,
                      "model_hold": {"since": since.isoformat(), "detail": detail},
                      "next_due_at": datetime.now(UTC)})  # the next clock tick settles when it ends
    if moved:
        bind.execute(standing.insert(), moved)
    op.drop_table("merchant_decisions")


def upgrade() -> None:
    _create_tables()
    _move_merchant_blocks()


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
