"""The latest merchant-risk decision per merchant, kept in the service's database so that
listing and stream results of a blocked merchant can be raised to review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Engine, Float, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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


@dataclass(frozen=True)
class MerchantDecision:
    """One merchant's latest decision."""

    merchant_id: str
    decision: str
    score: float
    model: str
    decided_at: datetime


class MerchantDecisionStore:
    """Upserts and reads the latest decision of each merchant."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, decisions: list[tuple[str, str, float, str]]) -> None:
        """Store (merchant_id, decision, score, model) rows, replacing older ones."""
        if not decisions:
            return
        now = datetime.now(UTC)
        latest = {m: (d, s, model) for m, d, s, model in decisions}  # last one in a batch wins
        rows = [{"merchant_id": m, "decision": d, "score": s, "model": model, "decided_at": now}
                for m, (d, s, model) in latest.items()]
        dialect = self._engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            with self._engine.begin() as conn:
                conn.execute(merchant_decisions_table.delete().where(
                    merchant_decisions_table.c.merchant_id.in_(list(latest))))
                conn.execute(merchant_decisions_table.insert(), rows)
            return
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        statement = insert(merchant_decisions_table)
        statement = statement.on_conflict_do_update(
            index_elements=["merchant_id"],
            set_={c: statement.excluded[c] for c in ("decision", "score", "model", "decided_at")},
        )
        with self._engine.begin() as conn:
            conn.execute(statement, rows)

    def blocked(self, merchant_ids: set[str]) -> dict[str, MerchantDecision]:
        """The merchants among ``merchant_ids`` whose latest decision is ``block``."""
        if not merchant_ids:
            return {}
        table = merchant_decisions_table
        with self._engine.connect() as conn:
            rows = conn.execute(select(table).where(
                table.c.merchant_id.in_(sorted(merchant_ids)), table.c.decision == "block")).mappings().all()
        return {r["merchant_id"]: MerchantDecision(**r) for r in rows}
