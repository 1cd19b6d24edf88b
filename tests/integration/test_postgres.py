"""PostgreSQL as the production database: a real server started with ``initdb`` / ``pg_ctl``
in a temporary folder (skipped, saying why, where the binaries are absent). Migrations, the
decision log with its journal replay, merchant decisions, feedback, aliases, version records
and tokens all run against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from database.engine import current_revision, make_engine
from features.ids import merchant_key
from policy import store as enforcement
from policy.document import load_policy
from policy.state import ChunkScored, FlaggedInput, MerchantScored, MerchantsScored, VerdictGiven
from policy.store import EnforcementStore
from registry import aliases, deployments, version_records
from registry.aliases import AliasStore
from registry.version_records import VersionRecords
from serving import auth, decision_log, feedback
from serving.auth import TokenStore
from serving.console import claims
from serving.decision_log import DecisionLogWriter, DecisionRecord
from serving.decision_queries import query_decisions
from serving.feedback import Feedback, FeedbackStore
from tests.integration.server import free_port

pytestmark = pytest.mark.integration


def postgres_bin() -> Path:
    """The PostgreSQL server tools: ``SHOPGUARD_PG_BIN``, else ``pg_config --bindir``, else the
    newest ``/usr/lib/postgresql/<version>/bin`` (Debian's layout)."""
    if "SHOPGUARD_PG_BIN" in os.environ:
        return Path(os.environ["SHOPGUARD_PG_BIN"])
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if found and (Path(found) / "initdb").is_file():
            return Path(found)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                      if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else Path("/usr/lib/postgresql/bin")


PG_BIN = postgres_bin()


def _as_postgres(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres_url():
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (set SHOPGUARD_PG_BIN)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    # Not under pytest's folder: the postgres user must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="shopguard-pg-"))
    data, port = folder / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "shopguard", "--auth=trust"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                                 str(folder / "server.log"), "start"]), check=True, capture_output=True)
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "shopguard",
                                     "shopguard"]), check=True, capture_output=True)
        yield f"postgresql+psycopg://shopguard@127.0.0.1:{port}/shopguard"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_migrations_bring_postgres_to_the_declared_schema(postgres_url) -> None:
    engine = make_engine(postgres_url)
    assert current_revision(engine) == "0014"
    declared = MetaData()
    for metadata in (aliases.metadata, deployments.metadata, version_records.metadata, auth.metadata,
                     decision_log.metadata, feedback.metadata, enforcement.metadata, claims.metadata):
        for table in metadata.tables.values():
            table.to_metadata(declared)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), declared)
    assert differences == []


def test_review_claims_on_postgres_admit_one_holder_at_a_time(postgres_url) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    engine = make_engine(postgres_url)
    item = {"id": 7, "entity_type": "listing", "entity_id": "L-claim", "request_id": "r1"}
    now = datetime.now(UTC)
    assert claims.take(engine, item, "rita", now).reviewer == "rita"
    assert claims.take(engine, {**item, "id": 8, "request_id": "r2"}, "bob", now).reviewer == "rita"  # one listing
    assert claims.holders(engine, [item], now)[("listing", "L-claim", "")].held_by_other("bob", now)
    with engine.begin() as conn:
        conn.execute(update(claims.claims_table).values(expires_at=now - timedelta(seconds=1)))
    assert claims.take(engine, item, "bob", now).reviewer == "bob"  # expired: taken over
    claims.release(engine, item, "rita")  # not hers any more: nothing released
    assert claims.holder(engine, item, now).reviewer == "bob"
    claims.release(engine, item, "bob")
    assert claims.holder(engine, item, now) is None


def test_the_decision_log_commits_and_replays_without_duplicates(postgres_url, tmp_path) -> None:
    engine = make_engine(postgres_url)
    records = [DecisionRecord("pg-r1", "listing", f"pg-L{i}", "allow", 0.1, "listing-quality:v1", [], {"i": i})
               for i in range(50)]
    writer = DecisionLogWriter(engine, journal_dir=tmp_path / "journal")
    writer.record(records[:30])
    writer._journal.append([r.row(datetime.now(UTC)) for r in records[20:]])  # a journal overlapping the log
    writer.close()  # replays the journal on the way out
    rows = query_decisions(engine, request_id="pg-r1")
    assert sorted(r["entity_id"] for r in rows) == sorted(f"pg-L{i}" for i in range(50))
    assert not list((tmp_path / "journal").glob("decisions-*.jsonl"))


def test_merchant_holds_feedback_aliases_versions_and_tokens(postgres_url) -> None:
    engine = make_engine(postgres_url)
    store = EnforcementStore(make_engine(postgres_url, immediate=True), load_policy())
    now = datetime.now(UTC)
    key = merchant_key("pg-M1")
    store.record_merchants(MerchantsScored(now, "pg-m", (MerchantScored(key, "block", 0.97, "merchant-risk:v1"),
                                                         MerchantScored("pg-m2", "allow", 0.1, "merchant-risk:v1"))))
    store.record_merchants(MerchantsScored(now, "pg-m2", (MerchantScored(key, "allow", 0.05, "merchant-risk:v1"),)))
    assert set(store.holds({key, "pg-m2"})) == {key}  # a better score does not lower the hold
    store.record_verdict(VerdictGiven(now, 1, "merchant", key, "pg-m", "ok", "ana"))
    assert store.holds({key}) == {}

    writer = DecisionLogWriter(engine)
    writer.record([DecisionRecord("pg-r2", "listing", "pg-L-fb", "block", 0.9, "listing-quality:v1", [], {})])
    writer.close()
    stored = FeedbackStore(engine).add(Feedback("pg-L-fb", "inferior", "ana", "listing"))
    assert stored["label"] == "inferior" and stored["request_id"] == "pg-r2"

    alias_store = AliasStore(engine)
    alias_store.set("pg-test-model", "production", "v1", action="promote", actor="ana", reason="pg")
    assert alias_store.get("pg-test-model", "production") == "v1"
    VersionRecords(engine).add("pg-test-model", "pg-v1", "0" * 64, "ana")
    assert VersionRecords(engine).get("pg-test-model", "pg-v1").manifest_sha256 == "0" * 64

    tokens = TokenStore(engine, cache_seconds=0)
    token = tokens.create("pg-pipeline", ("score",), "ana")
    assert tokens.verify(token).name == "pg-pipeline"
    tokens.revoke("pg-pipeline")
    assert tokens.verify(token) is None


def test_two_services_share_one_postgres_database(postgres_url, trained_home, tmp_path, monkeypatch) -> None:
    """Replicas: a merchant blocked through one service raises its listings on the other, and
    every answered decision is in the shared log once, after SIGTERM of both."""
    import httpx

    from tests.conftest import run_cli
    from tests.integration.server import running_servers

    tags = []
    for name in ("listing-quality", "merchant-risk", "false-marketing"):
        shown = run_cli("models", "show", f"{name}:production", home=trained_home).stdout  # the SQLite registry
        tags.append(next(word for word in shown.split() if word.startswith(f"{name}:v")))
    monkeypatch.setenv("SHOPGUARD_DATABASE_URL", postgres_url)
    home = tmp_path / "replica-home"
    for tag in tags:
        run_cli("models", "adopt", tag, "--reason", "replica test", home=home)  # into the PostgreSQL registry
        run_cli("models", "promote", tag, "--reason", "replica test", home=home)
    token = run_cli("tokens", "create", "--name", "replicas", "--scopes", "score", home=home).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    merchant = {"merchant_id": "pg-ring-1", **dict.fromkeys(
        ("account_age_days", "orders_30d", "gmv_30d", "cs_response_minutes", "sales_spike_ratio", "category_spread"),
        None), "refund_rate": 0.9, "return_rate": 0.9, "complaint_rate": 0.9, "negative_review_rate": 0.9,
        "late_shipment_rate": 0.9, "no_ship_rate": 0.9, "presale_share": 0.9, "review_burstiness": 0.9}
    listing = {"listing_id": "pg-replica-L1", "merchant_id": "pg-ring-1", "title": "加厚保温杯", "category": "home",
               "price": 59.0}
    answered = []
    chunks = []
    with running_servers(home, 2) as (first, second):
        scored = httpx.post(f"{first}/v1/merchants/score", json={"merchants": [merchant]}, headers=headers, timeout=60)
        assert scored.status_code == 200, scored.text
        decision = scored.json()["results"][0]["decision"]
        for base in (first, second) * 10:
            response = httpx.post(f"{base}/v1/listings/score", json={"listings": [listing]}, headers=headers,
                                  timeout=60)
            answered.append(response.json()["request_id"])
            codes = [r["code"] for r in response.json()["results"][0]["reasons"]]
            assert ("merchant_blocked" in codes) == (decision == "block")
        from concurrent.futures import ThreadPoolExecutor

        def chunk(n: int) -> httpx.Response:  # one live room, its chunks sent to both replicas at once
            body = {"stream_id": "pg-live", "creator_id": "pg-live-host", "chunk": n,
                    "segments": [{"text": "家人们 加微信 abc123 私聊下单", "start_ms": n * 5000, "end_ms": n * 5000 + 4000}]}
            return httpx.post(f"{(first, second)[n % 2]}/v1/streams/score", json=body, headers=headers, timeout=60)

        with ThreadPoolExecutor(8) as pool:
            chunks = list(pool.map(chunk, range(20)))
        assert [c.status_code for c in chunks] == [200] * 20
    room = EnforcementStore(make_engine(postgres_url), load_policy()).room_state("pg-live")
    assert room["chunks"] == 20 and room["counts"]["block"] == 20
    assert [a["to"] for a in room["actions"]] == ["warn", "restrict", "stop"]
    rows = query_decisions(make_engine(postgres_url), entity_id="pg-replica-L1")
    assert sorted(r["request_id"] for r in rows) == sorted(answered)  # each once, from both services


def test_enforcement_on_postgres_loses_no_count_and_pages_the_feed_in_commit_order(postgres_url) -> None:
    """Four workers' engines write chunks of two rooms of one creator at once while a reader
    pages the action feed by ``next``: no count lost, no action taken twice, and the reader
    sees every action id once (ids are committed in order)."""
    import threading

    make_engine(postgres_url)  # migrated
    stores = [EnforcementStore(make_engine(postgres_url, immediate=True), load_policy()) for _ in range(4)]
    last = max([a["id"] for a in stores[0].actions(0, 100_000)["actions"]], default=0)
    seen: list[int] = []
    done = threading.Event()
    errors: list[BaseException] = []
    block = FlaggedInput(0, "block", ("off_platform",))

    def write(worker: int) -> None:
        try:
            for n in range(worker, 60, 4):
                room = f"pg-room-{n % 2}"
                event = ChunkScored(datetime.now(UTC), room, f"pg-{room}-{n}", 2, (block,), "pg-host", "pg-m9", n)
                stores[worker].record_chunk(event, f"sha{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        after = last
        while True:
            page = stores[0].actions(after, 5)
            seen.extend(a["id"] for a in page["actions"])
            after = page["next"]
            if done.is_set() and not page["actions"]:
                return

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join(timeout=60)
    assert errors == []
    for room in ("pg-room-0", "pg-room-1"):
        state = stores[0].room_state(room)
        assert state["chunks"] == 30 and state["counts"]["block"] == 30
        assert [a["to"] for a in state["actions"]] == ["warn", "restrict", "stop"]
    written = [a["id"] for a in stores[0].actions(last, 100_000)["actions"]]
    assert seen == written and len(set(seen)) == len(seen)
    charges = [e for e in stores[0].creator_state("pg-host")["ledger"] if e["kind"] == "charge"]
    assert [(e["stream_id"], e["category"]) for e in sorted(charges, key=lambda e: e["stream_id"])] == [
        ("pg-room-0", "off_platform"), ("pg-room-1", "off_platform")]


def test_a_verdict_on_a_stream_segment_reaches_the_ledger_on_postgres(postgres_url) -> None:
    """A verdict handled by another worker than the one that scored the chunk: its state reads
    the room's segments afresh. That read bounded the ordinals by 2**62, past PostgreSQL's
    INTEGER: every such verdict failed with 'integer out of range' (SQLite took it)."""
    make_engine(postgres_url)  # migrated
    scored = EnforcementStore(make_engine(postgres_url, immediate=True), load_policy())
    at = datetime(2026, 11, 2, tzinfo=UTC)
    review = FlaggedInput(1, "review", ("price_fraud",))
    scored.record_chunk(ChunkScored(at, "pg-verdict-room", "pg-verdict-0", 3, (review,), "pg-verdict-host", "pg-vm", 0),
                        "sha-v")
    other = EnforcementStore(make_engine(postgres_url, immediate=True), load_policy())
    other.record_verdict(VerdictGiven(at, 990_001, "stream", "pg-verdict-room", "pg-verdict-0", "price_fraud", "rev", 1))
    charges = [(e["category"], e["status"]) for e in other.creator_state("pg-verdict-host")["ledger"]
               if e["kind"] == "charge"]
    assert charges == [("price_fraud", "final")]


def test_verdicts_applied_out_of_order_by_two_workers_on_postgres_act_as_the_later_one(postgres_url) -> None:
    """Two reviewers at once, their verdicts applied by two workers in the wrong order: the
    earlier is logged and acts on nothing, a retry applies nothing twice, and a restarted
    worker's replay of the log agrees with the ledger."""
    from policy.replay import compare_with_live, replay

    make_engine(postgres_url)  # migrated
    at = datetime(2026, 11, 2, tzinfo=UTC)
    first, second = (EnforcementStore(make_engine(postgres_url, immediate=True), load_policy()) for _ in range(2))
    block = FlaggedInput(0, "block", ("off_platform",))
    first.record_chunk(ChunkScored(at, "pg-order-room", "pg-order-0", 2, (block,), "pg-order-host", "pg-om", 0),
                       "sha-o")
    later = VerdictGiven(at, 991_002, "stream", "pg-order-room", "pg-order-0", "off_platform", "rev2", 0)
    earlier = VerdictGiven(at, 991_001, "stream", "pg-order-room", "pg-order-0", "ok", "rev1", 0)
    second.record_verdict(later)
    first.record_verdict(earlier)
    assert second.record_verdict(earlier) is None  # a retry: applied once
    restarted = EnforcementStore(make_engine(postgres_url, immediate=True), load_policy())
    host = restarted.creator_state("pg-order-host")
    assert host["credit"] == 8 and not [e for e in host["ledger"] if e["kind"] == "reversal"]
    assert {991_001, 991_002} <= restarted.applied_feedback_ids()
    events = [(i, e) for i, e in restarted.events() if getattr(e, "request_id", None) == "pg-order-0"]
    assert [getattr(e, "superseded_by", None) for _, e in events] == [None, None, 991_002]
    ledger = [e for e in restarted.ledger_entries() if e.entity_id in ("pg-order-host", "pg-om")]
    assert compare_with_live(replay(events, load_policy()), ledger, []).missing_entries == []


def test_a_host_named_late_on_postgres_is_charged_once_across_workers_retries_and_a_restart(postgres_url) -> None:
    from tests.unit.test_policy.test_store import late_host_scenario

    make_engine(postgres_url)  # migrated
    late_host_scenario(lambda: EnforcementStore(make_engine(postgres_url, immediate=True), load_policy()),
                       "pg-late-room", "pg-late-host")


def test_two_workers_follow_promotions_on_postgres(postgres_url, trained_home, tmp_path, monkeypatch) -> None:
    from tests.conftest import run_cli
    from tests.integration.test_model_follow import check_service_follows_the_registry

    tags = []
    for name in ("listing-quality", "merchant-risk", "false-marketing"):
        shown = run_cli("models", "show", f"{name}:production", home=trained_home).stdout
        tags.append(next(word for word in shown.split() if word.startswith(f"{name}:v")))
    from sqlalchemy import create_engine, text

    with create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.execute(text("CREATE DATABASE shopguard_follow"))  # a registry of its own
    monkeypatch.setenv("SHOPGUARD_DATABASE_URL", postgres_url.rsplit("/", 1)[0] + "/shopguard_follow")
    home = tmp_path / "follow-home"
    for tag in tags:
        run_cli("models", "adopt", tag, "--reason", "follow test", home=home)
        run_cli("models", "promote", tag, "--force", "--reason", "follow test", home=home)
    token = run_cli("tokens", "create", "--name", "follower", "--scopes", "score,read", home=home).stdout.strip()
    monkeypatch.setenv("SHOPGUARD_TEST_TOKEN", token)
    check_service_follows_the_registry(home, monkeypatch)


def test_listing_verdicts_four_eyes_and_credit_at_the_floor_on_postgres(postgres_url) -> None:
    """On two workers: a listing's verdicts supersede and bar their reviewer through any of its
    calls (matched by a subquery), an appeal is decided in its transaction by another reviewer,
    and an overturn at the floor gives back what the re-derived credit says, whatever the order."""
    from policy.state import ListingScored, ListingsScored
    from policy.store import EnforcementForbidden

    make_engine(postgres_url)  # migrated
    at = datetime.now(UTC)
    first, second = (EnforcementStore(make_engine(postgres_url, immediate=True), load_policy()) for _ in range(2))
    for request in ("pg-l-a", "pg-l-b"):
        first.record_listings(ListingsScored(at, request, (ListingScored("pg-L1", "pg-lm", "block", "block"),)))
    second.record_verdict(VerdictGiven(at, 992_002, "listing", "pg-L1", "pg-l-b", "inferior", "rev2"))
    first.record_verdict(VerdictGiven(at, 992_001, "listing", "pg-L1", "pg-l-a", "ok", "rev1"))  # earlier, late
    merchant = second.merchant_state("pg-lm")
    assert merchant["points"] == 4 and [e["kind"] for e in merchant["ledger"]] == ["charge", "confirmation"]
    appeal = first.file_appeal(merchant["ledger"][0]["id"], "pg-lm", "not inferior", filed_by="desk")
    for reviewer in ("REV2", "desk"):
        with pytest.raises(EnforcementForbidden):
            second.decide_appeal(appeal.id, "overturned", reviewer)
    second.decide_appeal(appeal.id, "overturned", "lead")
    assert first.merchant_state("pg-lm")["points"] == 0

    block = FlaggedInput(0, "block", ("counterfeit",))
    for n in range(4):  # 10 -> 6 -> 2 -> 0 -> 0
        (first, second)[n % 2].record_chunk(ChunkScored(at, f"pg-floor-{n}", f"pg-floor-{n}-0", 1, (block,),
                                                        "pg-floor-host", None, 0), f"sha-f{n}")
    second.record_verdict(VerdictGiven(at, 992_010, "stream", "pg-floor-3", "pg-floor-3-0", "ok", "rev", 0))
    assert first.creator_state("pg-floor-host")["credit"] == 0  # without one charge 10-4-4-4 still stops at 0
    first.record_verdict(VerdictGiven(at, 992_011, "stream", "pg-floor-0", "pg-floor-0-0", "ok", "rev", 0))
    assert second.creator_state("pg-floor-host")["credit"] == 2
