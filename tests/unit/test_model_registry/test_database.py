"""Schema migrations: the migrated database matches the tables the code declares, and a
database made before migrations existed is adopted without losing rows."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    inspect,
    select,
)

from database.engine import current_revision, make_engine
from policy import store
from registry import aliases, deployments, version_records
from serving import auth, decision_log, feedback
from serving.console import claims

DECLARED = (aliases.metadata, deployments.metadata, version_records.metadata, auth.metadata,
            decision_log.metadata, feedback.metadata, store.metadata, claims.metadata)
HEAD = "0012"
# The standing merchant decisions of revisions 0001-0007 (0008 moves them into merchant_standing).
OLD = MetaData()
old_merchant_decisions = Table(
    "merchant_decisions", OLD, Column("merchant_id", String(128), primary_key=True),
    Column("decision", String(16), nullable=False), Column("score", Float, nullable=False),
    Column("model", String(160), nullable=False), Column("decided_at", DateTime(timezone=True), nullable=False))


def _declared_metadata() -> MetaData:
    combined = MetaData()
    for metadata in DECLARED:
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def test_a_new_database_is_migrated_to_the_declared_schema(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    assert current_revision(engine) == HEAD
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), _declared_metadata())
    assert differences == []


def test_a_database_from_before_migrations_is_stamped_and_upgraded(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    aliases.metadata.create_all(old)
    decision_log.metadata.create_all(old)
    OLD.create_all(old)
    with old.begin() as connection:
        connection.execute(insert(aliases.aliases_table), {"model_name": "listing-quality", "alias": "production",
                                                           "version": "v1", "updated_at": datetime.now(UTC)})
    engine = make_engine(url)
    assert current_revision(engine) == HEAD
    assert {"feedback", "model_versions"} <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        kept = connection.execute(select(aliases.aliases_table.c.version)).scalars().all()
    assert kept == ["v1"]


def test_merchant_decisions_move_to_normalized_ids_and_a_block_stands(tmp_path) -> None:
    from datetime import timedelta

    from alembic import command

    from database.engine import _alembic_config

    url = f"sqlite:///{tmp_path / 'merchants.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0005")
    now = datetime.now(UTC)
    table = old_merchant_decisions
    with engine.begin() as connection:
        connection.execute(insert(table), [
            {"merchant_id": "M-Ring", "decision": "block", "score": 0.99, "model": "m:v1",
             "decided_at": now - timedelta(days=1)},
            {"merchant_id": "m-ring ", "decision": "allow", "score": 0.1, "model": "m:v2", "decided_at": now},
            {"merchant_id": "Ｍ-ＯＫ", "decision": "review", "score": 0.5, "model": "m:v1", "decided_at": now},
            {"merchant_id": "plain", "decision": "allow", "score": 0.2, "model": "m:v1", "decided_at": now}])
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0007")
    with engine.connect() as connection:
        rows = {r["merchant_id"]: (r["decision"], r["model"])
                for r in connection.execute(select(table)).mappings()}
    assert rows == {"m-ring": ("block", "m:v1"), "m-ok": ("review", "m:v1"), "plain": ("allow", "m:v1")}
    # 0008: each standing block becomes the merchant's model hold, since its decision; the old table goes
    assert current_revision(make_engine(url)) == HEAD
    assert "merchant_decisions" not in inspect(engine).get_table_names()
    from database.engine import make_engine as engine_for
    from policy.document import load_policy
    from policy.store import EnforcementStore

    holds = EnforcementStore(engine_for(url), load_policy()).all_holds()
    assert set(holds) == {"m-ring"} and holds["m-ring"].raises_to == "review" and "m:v1" in holds["m-ring"].detail
