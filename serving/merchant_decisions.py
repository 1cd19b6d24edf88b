"""The standing merchant-risk decision per merchant, kept in the service's database so that
listing and stream results of a blocked merchant can be raised to review.

A ``block`` stands until a reviewer's ``ok`` (``POST /v1/feedback`` with the ``feedback``
scope) or until it is ``block_days`` old: a later scoring with better figures is logged in
the decision log but does not lower it (a caller cannot clear a block by re-scoring).

Merchants are keyed by their normalized id (``features/ids.py``: NFKC, format characters
removed, trimmed, case-folded), so ``M1``, ``"m1 "`` and ``Ｍ１`` are one merchant everywhere:
recorded, looked up and lifted alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, Engine, Float, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from features.ids import merchant_key
from model_registry.policy import MerchantDecision

metadata = MetaData()

merchant_decisions_table = Table(
    "merchant_decisions",
    metadata,
    Column("merchant_id", String(128), primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("model", String(160), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)


class MerchantDecisionStore:
    """Upserts and reads the latest decision of each merchant."""

    def __init__(self, engine: Engine, block_days: float = 30.0) -> None:
        self._engine = engine
        self.block_days = block_days

    def _standing_since(self) -> datetime:
        return datetime.now(UTC) - timedelta(days=self.block_days)

    def record(self, decisions: list[tuple[str, str, float, str]]) -> None:
        """Store (merchant_id, decision, score, model) rows, replacing older ones, except that
        a standing block is never lowered by a new score (a new block refreshes it)."""
        if not decisions:
            return
        latest = {merchant_key(m): (d, s, model) for m, d, s, model in decisions}  # last one in a batch wins
        with self._engine.begin() as conn:
            standing = set(self._blocked(conn, set(latest)))
            rows = [{"merchant_id": m, "decision": d, "score": s, "model": model, "decided_at": datetime.now(UTC)}
                    for m, (d, s, model) in latest.items() if m not in standing or d == "block"]
            self._upsert(conn, rows)

    def lift_block(self, merchant_id: str, reviewer: str) -> None:
        """A reviewer found the merchant ordinary: its decision becomes ``allow``."""
        with self._engine.begin() as conn:
            self._upsert(conn, [{"merchant_id": merchant_key(merchant_id), "decision": "allow", "score": 0.0,
                                 "model": f"reviewer:{reviewer}"[:160], "decided_at": datetime.now(UTC)}])

    def _upsert(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = self._engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            conn.execute(merchant_decisions_table.delete().where(
                merchant_decisions_table.c.merchant_id.in_([r["merchant_id"] for r in rows])))
            conn.execute(merchant_decisions_table.insert(), rows)
            return
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        statement = insert(merchant_decisions_table)
        statement = statement.on_conflict_do_update(
            index_elements=["merchant_id"],
            set_={c: statement.excluded[c] for c in ("decision", "score", "model", "decided_at")},
        )
        conn.execute(statement, rows)

    def _blocked(self, conn: Any, merchant_ids: set[str]) -> dict[str, MerchantDecision]:
        table = merchant_decisions_table
        rows = conn.execute(select(table).where(
            table.c.merchant_id.in_(sorted(merchant_ids)), table.c.decision == "block",
            table.c.decided_at >= self._standing_since())).mappings().all()
        return {r["merchant_id"]: MerchantDecision(**r) for r in rows}

    def all_blocked(self) -> dict[str, MerchantDecision]:
        """Every standing block (for batch jobs)."""
        table = merchant_decisions_table
        with self._engine.connect() as conn:
            rows = conn.execute(select(table).where(table.c.decision == "block",
                                                    table.c.decided_at >= self._standing_since())).mappings().all()
        return {r["merchant_id"]: MerchantDecision(**r) for r in rows}

    def blocked(self, merchant_ids: set[str]) -> dict[str, MerchantDecision]:
        """The merchants among ``merchant_ids`` with a standing block, by normalized id."""
        if not merchant_ids:
            return {}
        with self._engine.connect() as conn:
            return self._blocked(conn, {merchant_key(m) for m in merchant_ids})
