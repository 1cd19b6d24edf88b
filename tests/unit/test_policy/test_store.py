"""Enforcement in a real SQLite database: transactions, idempotent chunks, concurrent workers,
the clock, appeals, and the shadow replay reproducing the live ledger."""

from __future__ import annotations

import dataclasses
import random
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from database.engine import make_engine
from policy.document import PolicyDocument, load_policy
from policy.replay import compare_with_live, day_table, replay
from policy.state import ChunkScored, FlaggedInput, ListingScored, ListingsScored, VerdictGiven
from policy.store import (
    EnforcementConflict,
    EnforcementForbidden,
    EnforcementNotFound,
    EnforcementStore,
)

T0 = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
BLOCK = FlaggedInput(0, "block", ("off_platform",))


class FakeClock:
    """The server clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_store(tmp_path: Path, clock: FakeClock | None = None, policy: PolicyDocument | None = None
               ) -> EnforcementStore:
    url = f"sqlite:///{tmp_path / 'shopguard.db'}"
    return EnforcementStore(make_engine(url, immediate=True), policy or load_policy(), clock,
                            read_engine=make_engine(url))


def chunk(stream: str, n: int, *flagged: FlaggedInput, creator: str | None = "c1", at: datetime = T0,
          merchant: str | None = "m1") -> ChunkScored:
    return ChunkScored(at, stream, f"{stream}-{n}", 3, flagged, creator, merchant, n)


def test_a_repeated_chunk_gets_its_first_answer_and_other_segments_are_refused(tmp_path) -> None:
    store = make_store(tmp_path)
    first = store.record_chunk(chunk("s1", 0, BLOCK), "sha-a", {"request_id": "s1-0"})
    assert first.answer["room"]["chunks"] == 1 and first.answer["request_id"] == "s1-0"
    again = store.record_chunk(chunk("s1", 0, BLOCK), "sha-a")
    assert again.outcome is None and again.repeated == first.answer
    with pytest.raises(EnforcementConflict) as refused:
        store.record_chunk(chunk("s1", 0), "sha-b")
    assert refused.value.field == "chunk"
    with pytest.raises(EnforcementConflict) as other_host:
        store.record_chunk(chunk("s1", 1, creator="c2"), "sha-c")
    assert other_host.value.field == "creator_id"
    # The same chunk again under another creator or merchant is no repeat: before, it got the first answer.
    for changed, field in (({"creator": "c2"}, "creator_id"), ({"merchant": "m2"}, "merchant_id")):
        with pytest.raises(EnforcementConflict) as refused:
            store.record_chunk(chunk("s1", 0, BLOCK, **changed), "sha-a")
        assert refused.value.field == field
    assert store.record_chunk(chunk("s1", 0, BLOCK, merchant=None), "sha-a").repeated == first.answer  # left out
    # A chunk first sent without a host, sent again naming one: refused, not answered as a repeat
    # that would drop the host; the next chunk names them.
    store.record_chunk(chunk("s9", 0, BLOCK, creator=None), "sha-9")
    with pytest.raises(EnforcementConflict) as refused:
        store.record_chunk(chunk("s9", 0, BLOCK, creator="c9"), "sha-9")
    assert refused.value.field == "creator_id" and "next chunk" in str(refused.value)
    assert store.record_chunk(chunk("s9", 1, creator="c9"), "sha-9b").repeated is None
    assert store.room_state("s9")["creator_id"] == "c9"
    room = store.room_state("s1")
    assert room["chunks"] == 1 and room["counts"] == {"block": 1, "review": 0}
    # A call without a chunk number counts on its own, in the answer and in the read alike.
    unnumbered = dataclasses.replace(chunk("s1", 0), chunk=None, request_id="s1-x")
    answer = store.record_chunk(unnumbered, "sha-x", {"request_id": "s1-x"}).answer
    assert answer["room"]["chunks"] == store.room_state("s1")["chunks"] == 2


def test_concurrent_workers_lose_no_count_and_take_no_action_twice(tmp_path) -> None:
    make_store(tmp_path)  # migrate once
    stores = [make_store(tmp_path) for _ in range(4)]  # four engines: four workers' connections
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            for n in range(worker, 40, 4):
                stores[worker].record_chunk(chunk("busy", n, BLOCK, at=T0 + timedelta(seconds=n)), f"sha{n}")
                stores[worker].record_chunk(chunk("busy", n, BLOCK, at=T0 + timedelta(seconds=n)), f"sha{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    room = stores[0].room_state("busy")
    assert room["chunks"] == 40 and room["counts"]["block"] == 40 and room["segments"] == 120
    assert [a["to"] for a in room["actions"]] == ["warn", "restrict", "stop"]
    creator = stores[0].creator_state("c1")
    assert [e["category"] for e in creator["ledger"] if e["kind"] == "charge"] == ["off_platform"]
    feed = stores[0].actions(0, 1000)["actions"]
    assert [a["id"] for a in feed] == sorted(a["id"] for a in feed) and len({a["id"] for a in feed}) == len(feed)


def late_host_scenario(open_store: Callable[[], EnforcementStore], room: str, host: str) -> None:
    """A room whose first chunks name no host, written by four workers at once; then two chunks
    naming the host at once, each sent twice (a retry); then, after a restart, a verdict on an
    early chunk. The host is charged once per category for what stood before, the verdict
    reaches them, and the shadow replay reproduces the live ledger."""
    stores = [open_store() for _ in range(4)]
    price = FlaggedInput(1, "review", ("price_fraud",))
    errors: list[BaseException] = []

    def run_all(jobs: list[Callable[[], None]]) -> None:
        def guarded(job: Callable[[], None]) -> None:
            try:
                job()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
        threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    early = [chunk(room, n, BLOCK, price, creator=None, at=T0 + timedelta(seconds=n)) for n in range(8)]
    # The stream's burst rule blocked on chunk 5's three endorsement reviews: charged as a block
    # (once per category), to the host too.
    endorsements = [FlaggedInput(i, "review", ("fake_endorsement",)) for i in (2, 3, 4)]
    early[5] = dataclasses.replace(chunk(room, 5, BLOCK, price, *endorsements, creator=None,
                                         at=T0 + timedelta(seconds=5)), rule_blocked=(2, 3, 4), segments=5)
    run_all([lambda w=w: [stores[w].record_chunk(c, f"sha-{c.chunk}") for c in early[w::4]] for w in range(4)])
    assert stores[0].room_state(room)["creator_id"] is None
    naming = [chunk(room, n, creator=host, at=T0 + timedelta(seconds=n)) for n in (8, 9)]
    run_all([lambda w=w: stores[w].record_chunk(naming[w % 2], f"sha-{naming[w % 2].chunk}") for w in range(4)])
    restarted = open_store()
    feedback_id = zlib.crc32(room.encode()) & 0x7FFFFFFF  # verdicts apply once per feedback id, in a shared database
    restarted.record_verdict(VerdictGiven(T0 + timedelta(minutes=5), feedback_id, "stream", room, f"{room}-3",
                                          "price_fraud", "rev", 1))
    creator = restarted.creator_state(host)
    charges = [(e["category"], e["status"]) for e in creator["ledger"] if e["kind"] == "charge"]
    # each once, whoever named first: the blocks', the burst rule's and the verdict's
    assert charges == [("off_platform", "provisional"), ("fake_endorsement", "provisional"), ("price_fraud", "final")]
    assert creator["credit"] == 10 - 2 - 2 - 2
    assert restarted.room_state(room)["chunks"] == 10
    comparison = compare_with_live(replay(restarted.events(), load_policy()), restarted.ledger_entries(),
                                   restarted.all_actions())
    assert comparison.identical, (comparison.missing_entries[:3], comparison.extra_entries[:3])


def test_a_host_named_late_is_charged_once_across_workers_retries_and_a_restart(tmp_path) -> None:
    make_store(tmp_path)  # migrate once
    late_host_scenario(lambda: make_store(tmp_path), "late", "host-late")


def test_the_clock_recovers_credit_ends_penalties_and_expires_points(tmp_path) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    heavy = FlaggedInput(0, "block", ("efficacy_claim", "counterfeit"))  # 3 + 4: credit 10 -> 3
    store.record_chunk(chunk("s1", 0, heavy), "x")
    assert store.creator_state("c1")["penalty"]["kind"] == "limit_live_selling"
    clock.now = T0 + timedelta(days=31)
    assert store.tick() is not None and store.tick() is None  # applied once
    creator = store.creator_state("c1")
    recoveries = [e for e in creator["ledger"] if e["kind"] == "recovery"]
    assert [e["at"] - T0 for e in recoveries] == [timedelta(days=7 * k) for k in range(1, 5)]
    assert creator["credit"] == 7 and creator["penalty"] is None
    assert [a["cause"] for a in creator["actions"]] == ["credit_threshold", "penalty_ended"]
    clock.now = T0 + timedelta(days=91)
    store.tick()
    merchant = store.merchant_state("m1")
    assert merchant["points"] == 0 and {e["kind"] for e in merchant["ledger"]} == {"charge", "expiry"}


def test_appeals_are_one_per_entry_within_the_deadline(tmp_path) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_chunk(chunk("s1", 0, BLOCK), "x")
    charge = next(e for e in store.creator_state("c1")["ledger"] if e["kind"] == "charge")
    appeal = store.file_appeal(charge["id"], "c1", "the handle was a brand name")
    with pytest.raises(EnforcementConflict, match="appealed already"):
        store.file_appeal(charge["id"], "c1", "again")
    with pytest.raises(EnforcementNotFound):
        store.file_appeal(99_999, "c1", "?")
    store.decide_appeal(appeal.id, "overturned", "lead")
    with pytest.raises(EnforcementConflict, match="decided already"):
        store.decide_appeal(appeal.id, "upheld", "lead")
    creator = store.creator_state("c1")
    assert creator["credit"] == 10 and creator["appeals"][0]["status"] == "overturned"
    store.record_chunk(chunk("s2", 0, BLOCK, at=T0 + timedelta(hours=1)), "y")
    late = next(e for e in store.creator_state("c1")["ledger"] if e["kind"] == "charge" and e["stream_id"] == "s2")
    clock.now = T0 + timedelta(days=8)
    with pytest.raises(EnforcementConflict, match="deadline"):
        store.file_appeal(late["id"], "c1", "too late")


def test_replaying_the_live_policy_reproduces_the_live_ledger(tmp_path) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    rng = random.Random(3)
    categories = ("efficacy_claim", "price_fraud", "off_platform", "false_scarcity", "counterfeit")
    scored: list[tuple[str, int]] = []
    for step in range(400):
        clock.now = T0 + timedelta(hours=step * 3)
        roll = rng.random()
        if roll < 0.75:
            stream, creator = f"s{rng.randrange(25)}", f"c{rng.randrange(6)}"
            room = store.room_state(stream)["creator_id"] if stream in _rooms(store) else creator
            flagged = tuple(FlaggedInput(i, rng.choice(["block", "review", "review"]),
                                         tuple(rng.sample(categories, rng.randint(1, 2))))
                            for i in range(3) if rng.random() < 0.3)
            event = ChunkScored(clock.now, stream, f"r{step}", 3, flagged, room, f"m{rng.randrange(4)}", step)
            store.record_chunk(event, f"sha{step}")
            scored += [(f"r{step}", f.index) for f in flagged]
        elif roll < 0.85:
            items = tuple(ListingScored(f"L{rng.randrange(30)}", f"m{rng.randrange(4)}", rng.choice(["block", "review"]))
                          for _ in range(3))
            store.record_listings(ListingsScored(clock.now, f"r{step}", items))
        elif roll < 0.95 and scored:
            request_id, index = rng.choice(scored)
            label = rng.choice(["ok", "ok", "price_fraud"])
            stream = next(c for c in _calls(store) if c == request_id)
            store.record_verdict(VerdictGiven(clock.now, step, "stream", _stream_of(store, stream), request_id, label,
                                              "rev", index))
        else:
            store.tick()
    clock.now += timedelta(days=120)
    store.tick()
    live_entries, live_actions = store.ledger_entries(), store.all_actions()
    assert len(live_entries) > 100 and len(live_actions) > 20
    assert {e.kind for e in live_entries} >= {"charge", "reversal", "recovery", "expiry"}
    result = replay(store.events(), load_policy())
    comparison = compare_with_live(result, live_entries, live_actions)
    assert comparison.identical, (comparison.missing_entries[:3], comparison.extra_entries[:3],
                                  comparison.missing_actions[:3], comparison.extra_actions[:3])
    lenient = PolicyDocument.model_validate({**load_policy().model_dump(), "name": "lenient",
                                             "rooms": {"rungs": [{"action": "warn", "weight": 8, "blocks": 6}]}})
    rows = day_table(result, replay(store.events(), lenient), None, None)
    current = sum(r.get("rooms_warn", 0) + r.get("rooms_restrict", 0) + r.get("rooms_stop", 0)
                  for r in rows if r["policy"] == "current")
    candidate = sum(r.get("rooms_warn", 0) + r.get("rooms_restrict", 0) + r.get("rooms_stop", 0)
                    for r in rows if r["policy"] == "candidate")
    assert candidate < current
    assert all(0 <= r["overturned_share"] <= 1 for r in rows)


def _rooms(store: EnforcementStore) -> set[str]:
    return {r["stream_id"] for r in store.rooms(limit=1000)}


def _calls(store: EnforcementStore) -> list[str]:
    from sqlalchemy import select

    from policy.store import calls_table

    with store.engine.connect() as conn:
        return list(conn.execute(select(calls_table.c.request_id)).scalars())


def _stream_of(store: EnforcementStore, request_id: str) -> str:
    from sqlalchemy import select

    from policy.store import calls_table

    with store.engine.connect() as conn:
        return conn.execute(select(calls_table.c.entity_id).where(calls_table.c.request_id == request_id)).scalar()


def test_a_penalty_keeps_its_start_when_stored_and_one_stored_before_loads_without() -> None:
    from policy.state import Penalty
    from policy.store import _penalty, _penalty_json

    raised = Penalty("limit_live_selling", T0 + timedelta(days=2), T0 + timedelta(days=32), 3, 2, 7, T0)
    assert _penalty(_penalty_json(raised)) == raised
    stored_before = {k: v for k, v in _penalty_json(raised).items() if k != "started"}
    old = _penalty(stored_before)
    assert old is not None and old.started is None and old.run_start == old.since


def test_an_earlier_verdict_applied_after_a_later_one_on_the_same_segment_acts_on_nothing(tmp_path) -> None:
    # Two reviewers at once on two workers: each verdict is stored, then applied, so the earlier
    # (an ok) could be applied last and leave the segment cleared against the verdict in force.
    store = make_store(tmp_path)
    store.record_chunk(chunk("s1", 0, BLOCK), "sha-0")
    assert store.creator_state("c1")["credit"] == 8
    later = VerdictGiven(T0 + timedelta(minutes=1), 159, "stream", "s1", "s1-0", "off_platform", "rev2", 0)
    earlier = VerdictGiven(T0 + timedelta(minutes=1), 158, "stream", "s1", "s1-0", "ok", "rev1", 0)
    store.record_verdict(later)
    store.record_verdict(earlier)
    creator = store.creator_state("c1")
    assert creator["credit"] == 8 and {e["kind"] for e in creator["ledger"]} == {"charge", "confirmation"}
    assert store.applied_feedback_ids() == {158, 159}  # both applied once: the clock does not retry either
    comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(), store.all_actions())
    assert comparison.identical
    # An earlier verdict on the whole call acts only on the segments no later verdict named.
    store.record_verdict(VerdictGiven(T0 + timedelta(minutes=2), 157, "stream", "s1", "s1-0", "ok", "rev1", None))
    assert store.creator_state("c1")["credit"] == 8
    # A later verdict on the whole call supersedes an earlier one on a segment, applied after it.
    store.record_verdict(VerdictGiven(T0 + timedelta(minutes=3), 160, "stream", "s1", "s1-0", "ok", "rev1", None))
    store.record_verdict(VerdictGiven(T0 + timedelta(minutes=3), 155, "stream", "s1", "s1-0", "off_platform", "rev3",
                                      0))
    assert store.creator_state("c1")["credit"] == 10
    comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(), store.all_actions())
    assert comparison.identical


def test_an_appeal_is_decided_by_someone_who_neither_filed_it_nor_judged_the_item_charged(tmp_path) -> None:
    # A token with the feedback scope could once file an appeal and decide it itself.
    store = make_store(tmp_path, FakeClock(T0 + timedelta(hours=1)))
    store.record_chunk(chunk("s1", 0, BLOCK, FlaggedInput(1, "review", ("efficacy_claim",))), "sha-0")
    store.record_verdict(VerdictGiven(T0 + timedelta(minutes=1), 7, "stream", "s1", "s1-0", "efficacy_claim",
                                      "rev1", 1))
    charges = {e["segment_index"]: e for e in store.creator_state("c1")["ledger"] if e["kind"] == "charge"}
    assert set(charges) == {0, 1}
    filed = store.file_appeal(charges[0]["id"], "c1", "the handle was a brand name", filed_by="ops")
    assert store.creator_state("c1")["appeals"][0]["filed_by"] == "ops"
    with pytest.raises(EnforcementForbidden, match="filed by 'ops'") as refused:
        store.decide_appeal(filed.id, "overturned", "ops")
    assert refused.value.field == "reviewer"
    with pytest.raises(EnforcementForbidden):
        store.decide_appeal(filed.id, "overturned", "ＯＰＳ")  # one person, however cased or wide
    assert store.appeal(filed.id, "ops")["barred"] is not None and store.appeal(filed.id, "rev1")["barred"] is None
    store.decide_appeal(filed.id, "overturned", "rev1")  # rev1 judged segment 1, not segment 0
    judged = store.file_appeal(charges[1]["id"], "c1", "I only said it helps")
    with pytest.raises(EnforcementForbidden, match="verdict 'rev1' gave"):
        store.decide_appeal(judged.id, "upheld", "rev1")
    assert store.appeal(judged.id)["status"] == "pending"  # refused: nothing changed
    store.decide_appeal(judged.id, "upheld", "lead")
    appeals = {a["id"]: a for a in store.creator_state("c1")["appeals"]}
    assert (appeals[filed.id]["decided_by"], appeals[judged.id]["decided_by"]) == ("rev1", "lead")
    assert appeals[judged.id]["filed_by"] is None  # filed with authentication off
    comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(), store.all_actions())
    assert comparison.identical


def _chained(ledger: list[dict]) -> bool:
    """Whether each ledger entry's balance is the previous one's plus its points."""
    return all(b["balance"] == a["balance"] + b["points"] for a, b in zip(ledger, ledger[1:], strict=False))


def _listing_scored_twice(store: EnforcementStore, clock: FakeClock) -> None:
    """Listing L1 of merchant m1 blocked in call req-a (charged) and again in req-b (a re-score)."""
    store.record_listings(ListingsScored(clock.now, "req-a", (ListingScored("L1", "m1", "block", "block"),)))
    clock.now += timedelta(hours=1)
    store.record_listings(ListingsScored(clock.now, "req-b", (ListingScored("L1", "m1", "block", "block"),)))
    clock.now += timedelta(hours=1)


def test_a_verdict_on_a_listings_re_score_bars_its_reviewer_and_supersedes_earlier_verdicts(tmp_path) -> None:
    # A listing's verdict acts on the listing whichever of its calls it names: it once neither
    # barred its reviewer from the appeal (four eyes) nor superseded an earlier verdict applied later.
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    _listing_scored_twice(store, clock)
    store.record_verdict(VerdictGiven(clock.now, 10, "listing", "L1", "req-b", "inferior", "rev2"))
    store.record_verdict(VerdictGiven(clock.now, 9, "listing", "L1", "req-a", "ok", "rev1"))  # given first, late
    merchant = store.merchant_state("m1")
    assert merchant["points"] == 4 and [e["kind"] for e in merchant["ledger"]] == ["charge", "confirmation"]
    charge = merchant["ledger"][0]
    appeal = store.file_appeal(charge["id"], "m1", "not inferior")
    with pytest.raises(EnforcementForbidden, match="verdict 'rev2' gave"):
        store.decide_appeal(appeal.id, "overturned", "rev2")
    assert store.appeal(appeal.id, "rev1")["barred"] is not None  # rev1's ok, though superseded, judged it too
    store.decide_appeal(appeal.id, "overturned", "lead")
    assert store.merchant_state("m1")["points"] == 0
    comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(), store.all_actions())
    assert comparison.identical


def test_a_confirmation_names_the_balance_after_what_fell_due_in_the_same_event(tmp_path) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_listings(ListingsScored(T0, "req-a", (ListingScored("L1", "m1", "block", "block"),)))
    clock.now = T0 + timedelta(days=60)
    store.record_listings(ListingsScored(clock.now, "req-b", (ListingScored("L2", "m1", "block", "block"),)))
    clock.now = T0 + timedelta(days=91)  # L1's points expired at 90 days; no tick ran since
    store.record_verdict(VerdictGiven(clock.now, 1, "listing", "L2", "req-b", "inferior", "rev"))
    ledger = store.merchant_state("m1")["ledger"]
    assert [(e["kind"], e["balance"]) for e in ledger] == [("charge", 4), ("charge", 8), ("expiry", 4),
                                                           ("confirmation", 4)]  # once 8
    assert _chained(ledger)


def test_lifting_a_withdrawal_counts_clean_days_from_the_lift(tmp_path) -> None:
    # An overturn easing a withdrawal once wrote a recovery dated inside the withdrawal, before
    # the reversal that ended it, and a confirmation with the balance before that recovery.
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_chunk(chunk("s1", 0, FlaggedInput(0, "block", ("counterfeit", "efficacy_claim")),
                             FlaggedInput(1, "block", ("off_platform", "price_fraud"))), "x")
    assert store.creator_state("c1")["penalty"]["kind"] == "withdraw_ecommerce"
    clock.now = T0 + timedelta(days=10)
    store.tick()
    assert "recovery" not in {e["kind"] for e in store.creator_state("c1")["ledger"]}  # none while withdrawn
    store.record_verdict(VerdictGiven(clock.now, 1, "stream", "s1", "s1-0", "off_platform", "rev", 1))
    creator = store.creator_state("c1")
    assert creator["credit"] == 1 and creator["penalty"]["kind"] == "limit_live_selling"
    assert "recovery" not in {e["kind"] for e in creator["ledger"]} and _chained(creator["ledger"])
    clock.now = T0 + timedelta(days=17)
    store.tick()
    recoveries = [e for e in store.creator_state("c1")["ledger"] if e["kind"] == "recovery"]
    assert [e["at"] for e in recoveries] == [T0 + timedelta(days=17)]  # 7 clean days after the lift
    comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(), store.all_actions())
    assert comparison.identical


@pytest.mark.parametrize("named_first", [True, False])
def test_a_host_named_late_is_not_stopped_for_a_penalty_that_began_during_the_broadcast(tmp_path,
                                                                                         named_first) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_chunk(chunk("s1", 0, creator="c1" if named_first else None), "a")
    clock.now = T0 + timedelta(minutes=10)
    store.record_chunk(chunk("s2", 0, FlaggedInput(0, "block", ("counterfeit",))), "b")  # c1 limited
    assert store.creator_state("c1")["penalty"]["kind"] == "limit_live_selling"
    clock.now = T0 + timedelta(minutes=20)
    answer = store.record_chunk(chunk("s1", 1, at=clock.now), "c")
    assert answer.answer["room"]["action"] == "none"  # the room in progress goes on, however named
    clock.now = T0 + timedelta(minutes=30)
    opened_under_it = store.record_chunk(chunk("s3", 0, creator=None, at=clock.now), "d")
    assert opened_under_it.answer["room"]["action"] == "none"
    named = store.record_chunk(chunk("s3", 1, at=clock.now), "e")
    assert named.answer["room"]["action"] == "stop"  # opened while the host was limited


def test_a_host_named_late_in_a_log_of_earlier_rules_replays_as_it_acted(tmp_path) -> None:
    # Events logged before rules 4 were applied with the naming chunk's standing: their replay
    # must reproduce the ledger and actions they left.
    from policy.engine import Enforcer
    from policy.state import MemoryState

    enforcer, state = Enforcer(load_policy()), MemoryState()
    later = T0 + timedelta(minutes=20)
    enforcer.apply(ChunkScored(T0, "s1", "s1-0", 3, (), None, "m1", 0, rules=3), state)
    enforcer.apply(ChunkScored(T0 + timedelta(minutes=10), "s2", "s2-0", 3,
                               (FlaggedInput(0, "block", ("counterfeit",)),), "c1", "m1", 0, rules=3), state)
    old = enforcer.apply(ChunkScored(later, "s1", "s1-1", 3, (), "c1", "m1", 1, rules=3), state)
    assert old.room is not None and old.room["action"] == "stop"


def test_a_review_burst_restored_by_a_verdict_charges_its_reviews_again(tmp_path) -> None:
    store = make_store(tmp_path, FakeClock(T0))
    store.record_chunk(ChunkScored(T0, "s1", "s1-0", 3, (
        FlaggedInput(0, "review", ("false_scarcity",)), FlaggedInput(1, "review", ("price_fraud",)),
        FlaggedInput(2, "review", ("price_fraud",))), "c1", "m1", 0, rule_blocked=(0, 1, 2)), "a")
    assert store.creator_state("c1")["credit"] == 7
    store.record_verdict(VerdictGiven(T0, 1, "stream", "s1", "s1-0", "ok", "rev1", 1))  # the burst breaks
    assert store.creator_state("c1")["credit"] == 10
    store.record_verdict(VerdictGiven(T0, 2, "stream", "s1", "s1-0", "price_fraud", "rev2", 1))  # it stands again
    assert store.creator_state("c1")["credit"] == 7  # was 8: false_scarcity of segment 0 never charged again
    assert store.merchant_state("m1")["points"] == store.merchant_state("m1")["ledger"][1]["balance"]
    comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(), store.all_actions())
    assert comparison.identical


CF = FlaggedInput(0, "block", ("counterfeit",))


@pytest.mark.parametrize("named_first", [True, False])
def test_a_room_opened_under_a_penalty_that_ended_before_the_host_was_named_is_stopped(tmp_path,
                                                                                       named_first) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_chunk(chunk("s0", 0, CF, merchant=None), "a")  # c1: 10 -> 6, limited 7 days
    clock.now = opened = T0 + timedelta(days=7) - timedelta(minutes=30)
    store.record_chunk(chunk("s1", 0, creator="c1" if named_first else None, at=opened, merchant=None), "b")
    clock.now = T0 + timedelta(days=7, minutes=30)  # the limit ended meanwhile
    named = store.record_chunk(chunk("s1", 1, at=clock.now, merchant=None), "c")
    assert named.answer["room"]["action"] == "stop"  # as a room opened under it: named first or late
    comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(), store.all_actions())
    assert comparison.identical


def test_a_room_opened_under_a_penalty_stays_stopped_when_another_begins_before_the_host_is_named(tmp_path) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_chunk(chunk("s0", 0, CF, merchant=None), "a")  # limited until T0 + 7 days
    clock.now = opened = T0 + timedelta(days=7) - timedelta(minutes=30)
    store.record_chunk(chunk("s1", 0, creator=None, at=opened, merchant=None), "b")
    clock.now = T0 + timedelta(days=7, minutes=10)  # a new run of penalties, begun during the broadcast
    store.record_chunk(chunk("s2", 0, FlaggedInput(0, "block", ("absolute_claim",)), at=clock.now, merchant=None), "x")
    clock.now = T0 + timedelta(days=7, minutes=30)
    assert store.record_chunk(chunk("s1", 1, at=clock.now, merchant=None), "c").answer["room"]["action"] == "stop"


def test_a_reviewer_whose_verdict_restored_a_burst_may_not_decide_the_appeal_of_its_charges(tmp_path) -> None:
    store = make_store(tmp_path, FakeClock(T0 + timedelta(hours=1)))
    store.record_chunk(ChunkScored(T0, "s1", "s1-0", 3, (
        FlaggedInput(0, "review", ("false_scarcity",)), FlaggedInput(1, "review", ("price_fraud",)),
        FlaggedInput(2, "review", ("price_fraud",))), "c1", None, 0, rule_blocked=(0, 1, 2)), "a")
    store.record_verdict(VerdictGiven(T0, 1, "stream", "s1", "s1-0", "ok", "rev1", 1))
    store.record_verdict(VerdictGiven(T0, 2, "stream", "s1", "s1-0", "price_fraud", "rev2", 1))
    again = [e for e in store.creator_state("c1")["ledger"]
             if e["kind"] == "charge" and e["category"] == "false_scarcity"][-1]
    assert again["segment_index"] == 0  # charged on segment 0 by rev2's verdict on segment 1
    appeal = store.file_appeal(again["id"], "c1", "x")
    with pytest.raises(EnforcementForbidden):
        store.decide_appeal(appeal.id, "overturned", "rev2")


def test_a_listing_id_two_merchants_use_is_two_listings_to_verdicts(tmp_path) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_listings(ListingsScored(clock.now, "req-a", (ListingScored("L1", "m1", "block", "block"),)))
    store.record_listings(ListingsScored(clock.now, "req-b", (ListingScored("L1", "m2", "block", "block"),)))
    clock.now += timedelta(hours=1)
    store.record_verdict(VerdictGiven(clock.now, 10, "listing", "L1", "req-b", "inferior", "rev2"))
    store.record_verdict(VerdictGiven(clock.now, 9, "listing", "L1", "req-a", "ok", "rev1"))  # m1's, applied late
    assert (store.merchant_state("m1")["points"], store.merchant_state("m2")["points"]) == (0, 4)
    appeal = store.file_appeal(store.merchant_state("m2")["ledger"][0]["id"], "m2", "x")
    assert store.appeal(appeal.id, "rev1")["barred"] is None  # rev1 judged m1's L1, not m2's


def test_a_candidate_policys_replay_counts_the_decision_an_appeal_overturned(tmp_path) -> None:
    # A candidate numbers its ledger otherwise: the appeal's entry id named another charge there.
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    for n, (room, host, category) in enumerate([("s1", "c1", "off_platform"), ("s2", "c2", "price_fraud"),
                                                ("s3", "c3", "counterfeit")]):
        store.record_chunk(chunk(room, 0, FlaggedInput(0, "block", (category,)), creator=host, merchant=None), str(n))
    charge = next(e for e in store.creator_state("c2")["ledger"] if e["kind"] == "charge")
    clock.now += timedelta(hours=1)
    appeal = store.file_appeal(charge["id"], "c2", "no")
    store.decide_appeal(appeal.id, "overturned", "lead")
    live = replay(store.events(), load_policy())
    candidate = PolicyDocument.model_validate({**load_policy().model_dump(), "name": "cand", "creators": {
        **load_policy().creators.model_dump(), "points": {"off_platform": 0}}})
    assert live.overturned == {("s2-0", 0)} == replay(store.events(), candidate).overturned


def test_a_chunk_logged_before_events_named_their_rules_is_read_under_the_first_rules() -> None:
    from policy.state import event_from_payload, event_payload

    payload = event_payload(chunk("s1", 0, CF))
    assert payload.pop("rules") == 4
    assert event_from_payload("chunk", payload).rules == 1


def _blocked_in_four_rooms(tmp_path: Path, name: str) -> EnforcementStore:
    """Creator c1 charged counterfeit (4 points) in rooms r0..r3: credit 10, 6, 2, 0, 0."""
    (tmp_path / name).mkdir()
    store = make_store(tmp_path / name, FakeClock(T0 + timedelta(hours=1)))
    for n in range(4):
        store.record_chunk(chunk(f"r{n}", 0, CF, merchant=None, at=T0 + timedelta(minutes=n)), f"sha-{n}")
    assert [e["balance"] for e in store.creator_state("c1")["ledger"] if e["kind"] == "charge"] == [6, 2, 0, 0]
    return store


def test_what_an_overturn_gives_back_does_not_depend_on_the_order_of_the_charges(tmp_path) -> None:
    # Credit stops at 0: the charge that reached it took 2 of its 4 points, the next none, so an
    # overturn once gave back 4 or nothing depending on which charge reviewers overturned.
    first, last = _blocked_in_four_rooms(tmp_path, "first"), _blocked_in_four_rooms(tmp_path, "last")
    credits = []
    for store, rooms in ((first, ("r0", "r1")), (last, ("r3", "r2"))):
        after = []
        for feedback_id, room in enumerate(rooms, start=1):
            store.record_verdict(VerdictGiven(T0 + timedelta(hours=1), feedback_id, "stream", room, f"{room}-0",
                                              "ok", "rev", 0))
            creator = store.creator_state("c1")
            after.append((creator["credit"], creator["penalty"]["kind"]))
        credits.append(after)
        comparison = compare_with_live(replay(store.events(), load_policy()), store.ledger_entries(),
                                       store.all_actions())
        assert comparison.identical and _chained(store.creator_state("c1")["ledger"])
    # Without one charge 10-4-4-4 still stops at 0 (still withdrawn); without two, 2 (limited).
    assert credits[0] == credits[1] == [(0, "withdraw_ecommerce"), (2, "limit_live_selling")]


def test_an_overturn_after_a_recovery_gives_back_no_more_than_the_creator_would_hold(tmp_path) -> None:
    clock = FakeClock(T0)
    store = make_store(tmp_path, clock)
    store.record_chunk(chunk("s1", 0, CF, merchant=None), "a")  # 10 -> 6
    clock.now = T0 + timedelta(days=8)
    store.tick()
    assert store.creator_state("c1")["credit"] == 7  # 7 clean days below 10: +1
    store.record_verdict(VerdictGiven(clock.now, 1, "stream", "s1", "s1-0", "ok", "rev", 0))
    assert store.creator_state("c1")["credit"] == 10  # once 11: without the charge it never fell below 10


@pytest.mark.parametrize("carried_first", [False, True])
def test_a_charge_carried_at_the_floor_still_counts_its_full_points(tmp_path, carried_first) -> None:
    # At the floor a reversal gives nothing back, so a charge carried to the broadcast's next
    # violation took nothing: it once counted as nothing, and a later overturn eased the creator
    # while 12 points still stood against 10.
    clock = FakeClock(T0 + timedelta(hours=1))
    store = make_store(tmp_path, clock)
    for n in range(3):  # 10 -> 6 -> 2 -> 0
        store.record_chunk(chunk(f"r{n}", 0, CF, merchant=None, at=T0 + timedelta(minutes=n)), f"sha-{n}")
    store.record_chunk(ChunkScored(T0 + timedelta(minutes=3), "r3", "r3-0", 2, (
        FlaggedInput(0, "block", ("counterfeit",)), FlaggedInput(1, "block", ("counterfeit",))), "c1", None, 0), "x")
    if carried_first:  # r3's segment 0 found clean: its charge moves to segment 1
        store.record_verdict(VerdictGiven(clock.now, 1, "stream", "r3", "r3-0", "ok", "rev", 0))
    store.record_verdict(VerdictGiven(clock.now, 2, "stream", "r0", "r0-0", "ok", "rev", 0))
    creator = store.creator_state("c1")
    assert (creator["credit"], creator["penalty"]["kind"]) == (0, "withdraw_ecommerce")  # 10-4-4-4 still stands


def test_a_charge_stopped_at_the_floor_under_an_earlier_policy_version_counts_its_full_points(tmp_path) -> None:
    clock = FakeClock(T0 + timedelta(hours=1))
    store = make_store(tmp_path, clock)
    for n in range(3):  # 10 -> 6 -> 2 -> 0: the third took 2 of its 4
        store.record_chunk(chunk(f"r{n}", 0, CF, merchant=None, at=T0 + timedelta(minutes=n)), f"sha-{n}")
    edited = load_policy()  # an edit elsewhere (the appeal deadline) makes another version, same points
    edited = PolicyDocument.model_validate({**edited.model_dump(), "appeals": {
        **edited.appeals.model_dump(), "deadline_days": 8}})
    store = make_store(tmp_path, clock, edited)
    store.record_verdict(VerdictGiven(clock.now, 1, "stream", "r0", "r0-0", "ok", "rev", 0))
    assert store.creator_state("c1")["credit"] == 2  # 10-4-4, once 4
