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
HEAD = "0014"
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


def test_room_segments_stored_before_0012_learn_which_ones_the_burst_rule_blocked_on(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import text

    from database.engine import _alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'burst.db'}")
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0011")
        payload = '{"rule_blocked": [1, 2], "flagged": []}'
        connection.execute(text("INSERT INTO enforcement_events (at, type, request_id, policy_version, payload) "
                                "VALUES ('2026-11-02 20:00:00', 'chunk', 'req-b', 'p@1', :p), "
                                "('2026-11-02 20:00:05', 'chunk', 'req-c', 'p@1', '{\"flagged\": []}')"), {"p": payload})
        for request_id, index in (("req-b", 0), ("req-b", 1), ("req-b", 2), ("req-c", 1)):
            connection.execute(text(
                "INSERT INTO room_segments (stream_id, ordinal, request_id, segment_index, decision, categories, "
                "overturned, confirmed) VALUES ('s', :o, :r, :i, 'review', 'price_fraud', 0, '')"),
                {"o": index + (10 if request_id == "req-c" else 0), "r": request_id, "i": index})
        command.upgrade(_alembic_config(connection), "head")
        rows = connection.execute(text("SELECT request_id, segment_index, rule_blocked FROM room_segments "
                                       "ORDER BY request_id, segment_index")).all()
    assert [(r, i, bool(b)) for r, i, b in rows] == [("req-b", 0, False), ("req-b", 1, True), ("req-b", 2, True),
                                                    ("req-c", 1, False)]
