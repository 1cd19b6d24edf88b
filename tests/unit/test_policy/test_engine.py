"""The enforcement engine on events, in memory: ladders, charges, penalties, time, overturns, appeals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from policy.document import PolicyDocument, load_policy
from policy.engine import Enforcer, charge_status
from policy.state import (
    AppealDecided,
    AppealFiled,
    ChunkScored,
    FlaggedInput,
    ListingScored,
    ListingsScored,
    MemoryState,
    MerchantScored,
    MerchantsScored,
    Tick,
    VerdictGiven,
)

T0 = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
CLAIM = FlaggedInput(0, "block", ("price_fraud", "off_platform"))


def chunk(n: int, *flagged: FlaggedInput, stream: str = "S1", creator: str | None = "C1",
          merchant: str | None = "M1", segments: int = 2, at: datetime | None = None) -> ChunkScored:
    return ChunkScored(at or T0 + timedelta(seconds=5 * n), stream, f"req-{stream}-{n}", segments, tuple(flagged),
                       creator, merchant, n)


def run(enforcer: Enforcer, state: MemoryState, *events):
    outs = []
    for i, event in enumerate(events):
        state.event_id = i + 1
        outs.append(enforcer.apply(event, state))
    return outs


@pytest.fixture()
def enforcer() -> Enforcer:
    return Enforcer(load_policy())


def test_a_host_repeating_blocking_claims_is_warned_restricted_and_stopped_within_six_chunks(enforcer) -> None:
    state = MemoryState()
    outs = run(enforcer, state, *[chunk(n, CLAIM) for n in range(6)])
    actions = [o.room["action"] for o in outs]
    assert actions == ["none", "warn", "warn", "restrict", "restrict", "stop"]  # blocks weigh 1: rungs at 2, 4, 6
    assert actions == sorted(actions, key=["none", "warn", "restrict", "stop"].index)  # never lowered
    assert [a.after for a in state.actions if a.entity_type == "room"] == ["warn", "restrict", "stop"]
    # charged once per category per broadcast: 2 (price_fraud) + 2 (off_platform) of credit 10
    assert outs[-1].creator["credit"] == 6
    assert outs[-1].creator["penalty"]["kind"] == "limit_live_selling"  # for later broadcasts (next test)
    merchant = state.merchant("M1")
    assert merchant is not None and merchant.points == 2 + 3
    charges = [e for e in state.ledger if e.kind == "charge"]
    assert {(e.entity_type, e.category) for e in charges} == {
        ("creator", "price_fraud"), ("creator", "off_platform"), ("merchant", "price_fraud"),
        ("merchant", "off_platform")}
    assert all(e.status == "provisional" and e.request_id == "req-S1-0" and e.policy_version == enforcer.version
               for e in charges)


def test_ordinary_talk_and_scattered_reviews_see_no_action(enforcer) -> None:
    state = MemoryState()
    review = FlaggedInput(1, "review", ("false_scarcity",))
    # one doubtful sentence every 40 segments (5% of a clean room's talk at most) for a long broadcast
    outs = run(enforcer, state, *[chunk(n, review, segments=40) for n in range(60)])
    assert {o.room["action"] for o in outs} == {"none"}
    assert outs[-1].creator["credit"] == 10 and not state.ledger  # reviews cost nothing unconfirmed


def test_a_creator_under_a_penalty_is_stopped_from_the_first_chunk_of_a_new_broadcast(enforcer) -> None:
    state = MemoryState()
    efficacy = FlaggedInput(0, "block", ("efficacy_claim", "counterfeit"))  # 3 + 4 points: credit 10 -> 3
    run(enforcer, state, chunk(0, efficacy))
    assert state.creator("C1").penalty.kind == "limit_live_selling"
    later = chunk(0, stream="S2", at=T0 + timedelta(days=1))
    (out,) = run(enforcer, state, later)
    assert out.room["action"] == "stop" and out.room["reasons"][0]["code"] == "creator_penalty"
    # 30 days later the limit has ended (an action dated at its end) and a new room is free
    (out,) = run(enforcer, state, chunk(0, stream="S3", at=T0 + timedelta(days=31)))
    assert out.room["action"] == "none" and out.creator["penalty"] is None
    ended = [a for a in state.actions if a.entity_type == "creator" and a.cause == "penalty_ended"]
    assert ended and ended[0].at == T0 + timedelta(days=30)


def test_a_chunk_that_leaves_creator_id_out_is_charged_to_the_rooms_creator(enforcer) -> None:
    state = MemoryState()
    first, second = run(enforcer, state, chunk(0), chunk(1, FlaggedInput(0, "block", ("price_fraud",)), creator=None))
    assert first.creator["credit"] == 10
    assert second.creator is not None and second.creator["creator_id"] == "C1" and second.creator["credit"] == 8
    assert [(e.entity_type, e.entity_id) for e in state.ledger if e.entity_type == "creator"] == [("creator", "C1")]
    assert state.creator("C1").credit == 8
    # A reviewer's verdict on such a chunk reaches the creator too: the call is the creator's.
    review = FlaggedInput(1, "review", ("false_scarcity",))
    run(enforcer, state, chunk(2, review, creator=None))
    run(enforcer, state, VerdictGiven(T0 + timedelta(minutes=5), 1, "stream", "S1", "req-S1-2", "false_scarcity", "rev", 1))
    assert [(e.entity_type, e.category) for e in state.ledger if e.request_id == "req-S1-2"] == [
        ("creator", "false_scarcity"), ("merchant", "false_scarcity")]


def test_a_host_named_after_the_first_chunks_is_charged_for_what_stands_against_the_broadcast(enforcer) -> None:
    state = MemoryState()
    verdict = lambda n, request, label: VerdictGiven(T0 + timedelta(seconds=30 + n), n, "stream", "S1",  # noqa: E731
                                                     request, label, "rev", 0 if request.endswith("-2") else 1)
    run(enforcer, state,
        chunk(0, FlaggedInput(0, "block", ("price_fraud",)), creator=None),  # stands: 2 points
        chunk(1, FlaggedInput(1, "review", ("false_scarcity",)), creator=None),
        verdict(1, "req-S1-1", "false_scarcity"),  # confirmed: 1 point, final
        chunk(2, FlaggedInput(0, "block", ("absolute_claim",)), creator=None),
        verdict(2, "req-S1-2", "ok"))  # overturned: nothing
    assert state.creator("C1") is None and {e.entity_type for e in state.ledger} == {"merchant"}
    (out,) = run(enforcer, state, chunk(3, creator="C1"))
    charges = [(e.category, e.status, e.request_id) for e in state.ledger
               if e.entity_type == "creator" and e.kind == "charge"]
    assert charges == [("price_fraud", "provisional", "req-S1-0"), ("false_scarcity", "final", "req-S1-1")]
    assert out.creator["credit"] == 10 - 2 - 1 and state.creator("C1").credit == 7
    # Naming the host again charges nothing twice; a later verdict on an early chunk reaches the host.
    run(enforcer, state, chunk(4, FlaggedInput(1, "review", ("fake_endorsement",)), creator="C1"),
        chunk(5, creator=None))
    run(enforcer, state, VerdictGiven(T0 + timedelta(minutes=9), 9, "stream", "S1", "req-S1-1", "fake_endorsement",
                                      "rev", 1))
    assert [(e.category, e.entity_type) for e in state.ledger if e.kind == "charge" and e.entity_type == "creator"] == [
        ("price_fraud", "creator"), ("false_scarcity", "creator"), ("fake_endorsement", "creator")]
    # The later verdict on that segment names fake_endorsement alone: its false_scarcity charge falls.
    assert [e.category for e in state.ledger if e.kind == "reversal" and e.entity_type == "creator"] == [
        "false_scarcity"]
    assert state.creator("C1").credit == 10 - 2 - 2


def test_reviews_the_burst_rule_blocked_before_the_host_was_named_are_charged_to_the_host(enforcer) -> None:
    state = MemoryState()
    reviews = [FlaggedInput(i, "review", ("fake_endorsement",)) for i in range(3)]
    burst = dataclasses.replace(chunk(0, *reviews, creator=None, segments=3), rule_blocked=(0, 1, 2))
    run(enforcer, state, burst)
    assert [(e.entity_type, e.status) for e in state.ledger if e.kind == "charge"] == [("merchant", "provisional")]
    (out,) = run(enforcer, state, chunk(1, creator="C1"))
    (charge,) = [e for e in state.ledger if e.entity_type == "creator" and e.kind == "charge"]
    assert (charge.category, charge.status, charge.request_id) == ("fake_endorsement", "provisional", "req-S1-0")
    assert charge.rule.endswith("(stream rule calls.stream_review_burst, before the host was named)")
    assert out.creator["credit"] == 10 - 2
    # The reviews alone, without the burst rule, were not charged: nothing stood against the host.
    quiet = MemoryState()
    run(enforcer, quiet, chunk(0, *reviews, creator=None, segments=3), chunk(1, creator="C1"))
    assert [e.entity_type for e in quiet.ledger if e.kind == "charge"] == []
    # A reviewer overturning the chunk reverses the host's charge with the merchant's.
    run(enforcer, state, VerdictGiven(T0 + timedelta(minutes=3), 7, "stream", "S1", "req-S1-0", "ok", "rev", None))
    assert state.creator("C1").credit == 10
    assert {e.entity_type for e in state.ledger if e.kind == "reversal"} == {"creator", "merchant"}


def test_credit_recovers_on_the_schedule_with_entries_dated_when_due(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, FlaggedInput(0, "block", ("price_fraud",))))  # 10 -> 8
    run(enforcer, state, Tick(T0 + timedelta(days=15)))
    recoveries = [e for e in state.ledger if e.kind == "recovery"]
    assert [(e.at - T0).days for e in recoveries] == [7, 14]
    assert [e.balance for e in recoveries] == [9, 10]
    run(enforcer, state, Tick(T0 + timedelta(days=14 + 30 + 30 + 5)))
    assert state.creator("C1").credit == 12  # capped: +1 after each 30 clean days at or above 10
    assert len([e for e in state.ledger if e.kind == "recovery"]) == 4


def test_merchant_points_expire_and_milestones_impose_holds(enforcer) -> None:
    state = MemoryState()
    listings = ListingsScored(T0, "req-L", tuple(ListingScored(f"L{i}", "M9", "block") for i in range(3)))
    run(enforcer, state, listings, listings)  # the same listings again: charged once each
    merchant = state.merchant("M9")
    assert merchant.points == 12 and merchant.penalty.kind == "review_hold"
    hold = enforcer.merchant_hold(merchant, T0)
    assert hold is not None and hold.raises_to == "review" and hold.cause == "points"
    run(enforcer, state, Tick(T0 + timedelta(days=91)))
    merchant = state.merchant("M9")
    assert merchant.points == 0 and merchant.penalty is None
    expiries = [e for e in state.ledger if e.kind == "expiry"]
    assert len(expiries) == 3 and all(e.at == T0 + timedelta(days=90) for e in expiries)


def test_a_block_the_merchant_rule_raised_costs_no_points_and_a_listing_charge_names_its_call(enforcer) -> None:
    state = MemoryState()
    raised = ListingsScored(T0, "req-raised", tuple(ListingScored(f"R{i}", "M8", "block", "allow") for i in range(3)))
    run(enforcer, state, raised)  # a suspended merchant's ordinary listings: its standing, not new violations
    assert state.merchant("M8") is None and not state.ledger  # nothing charged, no merchant record made
    own = ListingsScored(T0, "req-own", (ListingScored("L1", "M8", "block", "block"),))
    run(enforcer, state, own)
    [charge] = [e for e in state.ledger if e.kind == "charge"]
    assert charge.points == 4 and charge.listing_id == "L1" and charge.request_id == "req-own"


def test_overturning_every_violation_of_a_room_restores_the_credit_and_lifts_everything(enforcer) -> None:
    state = MemoryState()
    efficacy = FlaggedInput(0, "block", ("efficacy_claim",))
    price = FlaggedInput(1, "block", ("price_fraud",))
    run(enforcer, state, *[chunk(n, efficacy, price) for n in range(4)])
    creator = state.creator("C1")
    assert creator.credit == 5 and creator.penalty.kind == "limit_live_selling"
    assert state.room("S1").action == "stop"
    verdicts = [VerdictGiven(T0 + timedelta(hours=1, minutes=n), n, "stream", "S1", f"req-S1-{n}", "ok", "rev")
                for n in range(4)]
    run(enforcer, state, *verdicts)
    creator = state.creator("C1")
    assert creator.credit == 10 and creator.penalty is None
    assert state.room("S1").action == "none"
    assert state.merchant("M1").points == 0
    lifted = [a for a in state.actions if a.cause == "overturn"]
    assert {a.entity_type for a in lifted} == {"room", "creator"}
    # every charge has its reversal; none is edited
    charges = [e for e in state.ledger if e.kind == "charge"]
    assert all(charge_status(c, state.ledger, {}, T0, 7) == "reversed" for c in charges)


def test_a_charge_moves_to_the_next_violation_of_its_category_when_overturned(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, FlaggedInput(0, "block", ("price_fraud",))),
        chunk(1, FlaggedInput(0, "block", ("price_fraud",))))
    assert state.creator("C1").credit == 8  # once per category per broadcast
    run(enforcer, state, VerdictGiven(T0 + timedelta(hours=1), 1, "stream", "S1", "req-S1-0", "ok", "rev", 0))
    assert state.creator("C1").credit == 8  # the second segment now carries the charge
    carried = [e for e in state.ledger if e.kind == "charge" and e.request_id == "req-S1-1"]
    assert len(carried) == 2  # creator and merchant


def test_a_review_segment_costs_points_only_once_a_verdict_confirms_it(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, FlaggedInput(1, "review", ("efficacy_claim",))))
    assert state.creator("C1").credit == 10
    run(enforcer, state, VerdictGiven(T0 + timedelta(hours=1), 7, "stream", "S1", "req-S1-0", "efficacy_claim",
                                      "rev", 1))
    charge = next(e for e in state.ledger if e.entity_type == "creator")
    assert state.creator("C1").credit == 7 and charge.status == "final"


def test_an_appeal_overturned_returns_the_points_and_one_upheld_makes_the_charge_final(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, FlaggedInput(0, "block", ("price_fraud",))),
        chunk(1, stream="S2", creator="C2", merchant=None))
    run(enforcer, state, chunk(0, FlaggedInput(0, "block", ("absolute_claim",)), stream="S2", creator="C2",
                               merchant=None, at=T0 + timedelta(minutes=1)))
    first = next(e for e in state.ledger if e.entity_id == "C1")
    second = next(e for e in state.ledger if e.entity_id == "C2")
    at = T0 + timedelta(days=1)
    run(enforcer, state, AppealFiled(at, 1, first.id, "C1", "I said 'daily price' truthfully"),
        AppealFiled(at, 2, second.id, "C2", "no"),
        AppealDecided(at + timedelta(hours=2), 1, "overturned", "lead"),
        AppealDecided(at + timedelta(hours=2), 2, "upheld", "lead"))
    appeals = {a.ledger_entry_id: a for a in state.appeals.values()}
    assert state.creator("C1").credit == 10 and state.creator("C2").credit == 9
    assert charge_status(first, state.ledger, appeals, at, 7) == "reversed"
    assert charge_status(second, state.ledger, appeals, at, 7) == "final"
    assert appeals[first.id].status == "overturned" and appeals[second.id].decided_by == "lead"


def test_the_merchant_risk_block_is_a_hold_that_a_reviewers_ok_lifts(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, MerchantsScored(T0, "r1", (MerchantScored("m5", "block", 0.97, "merchant-risk:v1"),)))
    assert enforcer.merchant_standing(state.merchant("m5"), T0) == "review_hold"
    run(enforcer, state, MerchantsScored(T0 + timedelta(hours=1), "r2",
                                         (MerchantScored("m5", "allow", 0.1, "merchant-risk:v1"),)))
    assert enforcer.merchant_standing(state.merchant("m5"), T0 + timedelta(hours=1)) == "review_hold"
    run(enforcer, state, VerdictGiven(T0 + timedelta(hours=2), 3, "merchant", "m5", "r1", "ok", "rev"))
    assert enforcer.merchant_standing(state.merchant("m5"), T0 + timedelta(hours=2)) == "none"
    assert [(a.before, a.after) for a in state.actions] == [("none", "review_hold"), ("review_hold", "none")]


def test_a_stricter_policy_changes_only_what_it_says() -> None:
    default = load_policy()
    strict = PolicyDocument.model_validate({**default.model_dump(), "name": "strict",
                                            "charging": {"once_per": "segment"}})
    assert strict.version != default.version and strict.version.startswith("strict@")
    state = MemoryState()
    run(Enforcer(strict), state, chunk(0, FlaggedInput(0, "block", ("price_fraud",))),
        chunk(1, FlaggedInput(0, "block", ("price_fraud",))))
    assert state.creator("C1").credit == 6  # charged per segment


def test_memory_state_reads_a_rooms_flagged_segments_in_order_from_an_ordinal_as_copies() -> None:
    from policy.state import Flagged

    state = MemoryState()
    for ordinal in (7, 2, 5, 9):
        state.put_flagged(Flagged("S1", ordinal, f"r{ordinal}", 0, "review", ("false_scarcity",)))
    state.put_flagged(Flagged("S1", 5, "r5", 0, "block", ("efficacy_claim",)))  # the same segment, changed
    state.put_flagged(Flagged("S2", 3, "x", 0, "review", ("price_fraud",)))
    assert [s.ordinal for s in state.flagged("S1")] == [2, 5, 7, 9]
    assert [s.ordinal for s in state.flagged("S1", 5)] == [5, 7, 9] and state.flagged("S1", 10) == []
    assert state.flagged("S1", 3)[0].decision == "block"
    state.flagged("S1")[0].overturned = True  # a copy: the state is not changed behind its back
    assert not state.flagged("S1")[0].overturned and state.flagged("nobody") == []


def block(*categories: str) -> FlaggedInput:
    return FlaggedInput(0, "block", categories)


def ok_verdict(n: int, request: str, stream: str = "S1", minutes: int = 5) -> VerdictGiven:
    return VerdictGiven(T0 + timedelta(minutes=minutes), n, "stream", stream, request, "ok", "rev", 0)


def test_an_overturn_keeps_a_creators_limit_while_the_credit_left_is_still_at_its_level(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("absolute_claim", "off_platform")),  # 10 -> 7
        chunk(1, block("price_fraud")),  # 7 -> 5: limited for 7 days
        chunk(2, block("false_scarcity")))  # 5 -> 4, charged while the limit stands
    assert state.creator("C1").penalty.kind == "limit_live_selling"
    run(enforcer, state, ok_verdict(1, "req-S1-1"))  # price_fraud given back: 4 -> 6, still at or below 6
    creator = state.creator("C1")
    assert creator.credit == 6 and creator.penalty is not None and creator.penalty.kind == "limit_live_selling"
    run(enforcer, state, ok_verdict(2, "req-S1-2", minutes=6))  # false_scarcity too: 6 -> 7, past the level
    assert state.creator("C1").credit == 7 and state.creator("C1").penalty is None
    assert [a.detail.split(":")[0] for a in state.actions if a.entity_type == "creator"][-1].startswith(
        "credit behind the penalty is 7")


def test_an_overturn_keeps_a_merchants_hold_while_its_points_still_reach_the_milestone(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("counterfeit", "off_platform")),  # 0 -> 9 points
        chunk(1, block("efficacy_claim")),  # 9 -> 13: review hold (milestone 12)
        chunk(2, block("price_fraud", "guarantee_claim", "fake_endorsement")))  # 13 -> 19
    run(enforcer, state, ok_verdict(1, "req-S1-1"))  # efficacy given back: 19 -> 15, still past 12
    merchant = state.merchant("M1")
    assert merchant.points == 15 and merchant.penalty is not None and merchant.penalty.kind == "review_hold"


def test_a_creator_whose_limit_ended_at_a_low_credit_is_limited_again_by_the_next_charge(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("efficacy_claim", "price_fraud")))  # 10 -> 5: limited for 7 days
    run(enforcer, state, Tick(T0 + timedelta(days=8)))  # the limit ended; credit 5 -> 6 after 7 clean days
    creator = state.creator("C1")
    assert creator.penalty is None or not creator.penalty.active(T0 + timedelta(days=8))
    assert creator.credit == 6
    run(enforcer, state, chunk(0, block("false_scarcity"), stream="S2", at=T0 + timedelta(days=9)))  # 6 -> 5
    penalty = state.creator("C1").penalty
    assert penalty is not None and penalty.active(T0 + timedelta(days=9)) and penalty.kind == "limit_live_selling"
    assert penalty.since == T0 + timedelta(days=9)


def test_a_limited_host_named_after_a_rooms_first_chunk_has_the_room_stopped(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("efficacy_claim", "price_fraud")))  # credit 5: limited
    late = T0 + timedelta(hours=1)
    (first,) = run(enforcer, state, chunk(0, stream="S2", creator=None, at=late))
    assert first.room["action"] == "none"
    (named,) = run(enforcer, state, chunk(1, stream="S2", creator="C1", at=late + timedelta(seconds=5)))
    assert named.room["action"] == "stop" and named.room["reasons"][0]["code"] == "creator_penalty"
    # A host in good standing named late leaves the room as it was.
    (other,) = run(enforcer, state, chunk(0, stream="S3", creator=None, at=late),
                   chunk(1, stream="S3", creator="C2", at=late + timedelta(seconds=5)))[-1:]
    assert other.room["action"] == "none"


def test_a_limit_raised_or_eased_within_its_kind_is_written_to_the_action_feed(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("absolute_claim", "off_platform")),  # 10 -> 7
        chunk(1, block("price_fraud")),  # 7 -> 5: the 7-day limit
        chunk(2, block("efficacy_claim")))  # 5 -> 2: the 30-day limit
    limits = [(a.before, a.after) for a in state.actions if a.entity_type == "creator"]
    assert limits == [("none", "limit_live_selling"), ("limit_live_selling", "limit_live_selling")]
    raised = [a for a in state.actions if a.entity_type == "creator"][-1]
    assert "at or below 3" in raised.detail and f"until {T0 + timedelta(seconds=10, days=30):%Y-%m-%d}" in raised.detail
    run(enforcer, state, ok_verdict(2, "req-S1-2"))  # efficacy given back: 2 -> 5, eased to the 7-day limit
    eased = [a for a in state.actions if a.entity_type == "creator"][-1]
    assert (eased.before, eased.after, eased.cause) == ("limit_live_selling", "limit_live_selling", "overturn")
    assert "eased to at or below 6" in eased.detail
    # Counted from the first limit (chunk 1), not from the 30-day one that raised it.
    assert state.creator("C1").penalty.until == T0 + timedelta(seconds=5, days=7)


def test_an_overturned_charge_moves_to_a_review_the_burst_rule_blocked_on(enforcer) -> None:
    state = MemoryState()
    reviews = [FlaggedInput(i, "review", ("efficacy_claim",)) for i in range(3)]
    run(enforcer, state, chunk(0, block("efficacy_claim")),  # charged: once per category per broadcast
        dataclasses.replace(chunk(1, *reviews, segments=3), rule_blocked=(0, 1, 2)))
    assert len([e for e in state.ledger if e.entity_type == "creator" and e.kind == "charge"]) == 1
    run(enforcer, state, ok_verdict(1, "req-S1-0"))
    charges = [(e.request_id, e.status) for e in state.ledger if e.entity_type == "creator" and e.kind == "charge"]
    assert charges == [("req-S1-0", "provisional"), ("req-S1-1", "provisional")]
    assert state.creator("C1").credit == 10 - 3


def test_a_reversal_never_makes_a_penalty_stricter_after_recoveries(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("efficacy_claim", "price_fraud", "off_platform")),  # 10 -> 3: 30 days
        chunk(1, block("absolute_claim")),  # 3 -> 2
        Tick(T0 + timedelta(days=22)))  # three weekly recoveries: 2 -> 5 (not behind the penalty)
    assert state.creator("C1").credit == 5
    run(enforcer, state, chunk(0, block("counterfeit"), stream="S2", at=T0 + timedelta(days=23)))  # 5 -> 1
    run(enforcer, state, ok_verdict(1, "req-S1-1", minutes=60 * 24 * 23 + 5))  # absolute_claim back: 1 -> 2
    creator = state.creator("C1")
    assert creator.credit == 2 and (creator.penalty.kind, creator.penalty.level) == ("limit_live_selling", 3)
    assert "withdraw_ecommerce" not in {a.after for a in state.actions}


def test_a_penalty_stored_before_charges_counted_behind_it_is_not_eased_by_a_later_charge(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("efficacy_claim", "price_fraud", "off_platform")),  # 10 -> 3: 30 days
        chunk(1, block("absolute_claim")))  # 3 -> 2
    penalty = state.creators["C1"].penalty  # as the previous accounting stored it: no start, basis 3 (the
    penalty.started, penalty.basis = None, 3  # balance at imposition; the later charge not behind it)
    run(enforcer, state, ok_verdict(1, "req-S1-1"))  # back to 3: still at or below 3
    penalty = state.creator("C1").penalty
    assert state.creator("C1").credit == 3 and penalty.level == 3 and penalty.basis == 3


def test_a_charge_carried_to_another_violation_leaves_the_penalty_as_it_was(enforcer) -> None:
    state = MemoryState()
    reviews = [FlaggedInput(i, "review", ("counterfeit",)) for i in range(3)]
    run(enforcer, state, chunk(0, block("counterfeit")),  # 10 -> 6: the 7-day limit
        dataclasses.replace(chunk(1, *reviews, segments=3), rule_blocked=(0, 1, 2)))  # not charged again
    before = state.creator("C1").penalty
    run(enforcer, state, ok_verdict(1, "req-S1-0", minutes=60 * 24 * 2))  # the charge moves to the burst
    creator = state.creator("C1")
    assert creator.credit == 6 and creator.penalty.until == before.until and creator.penalty.basis == before.basis
    assert [a.cause for a in state.actions if a.entity_type == "creator"] == ["credit_threshold"]


def test_a_burst_with_an_overturned_review_no_longer_charges_its_other_reviews(enforcer) -> None:
    state = MemoryState()
    reviews = [FlaggedInput(i, "review", ("fake_endorsement",)) for i in range(3)]
    run(enforcer, state, dataclasses.replace(chunk(0, *reviews, creator=None, segments=3), rule_blocked=(0, 1, 2)))
    run(enforcer, state, VerdictGiven(T0 + timedelta(minutes=2), 1, "stream", "S1", "req-S1-0", "ok", "rev", 0))
    assert [e.kind for e in state.ledger if e.entity_type == "merchant"] == ["charge", "reversal"]  # not carried
    (out,) = run(enforcer, state, chunk(1, creator="C1"))
    assert out.creator["credit"] == 10 and not [e for e in state.ledger if e.entity_type == "creator"]


def test_a_charge_carried_after_the_penalty_ended_imposes_nothing_and_costs_nothing_more(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("counterfeit"), FlaggedInput(1, "block", ("price_fraud",))),  # 10 -> 4
        chunk(1, block("counterfeit")))  # once per category per broadcast: not charged
    run(enforcer, state, Tick(T0 + timedelta(days=7, hours=1)))  # the 7-day limit ends; credit 4 -> 5
    run(enforcer, state, ok_verdict(1, "req-S1-0", minutes=60 * 24 * 8))  # counterfeit moves to chunk 1: 5 -> 9 -> 5
    creator = state.creator("C1")
    assert creator.credit == 5 and enforcer.creator_standing(creator, T0 + timedelta(days=8)) == "none"
    assert [a.after for a in state.actions if a.entity_type == "creator"] == ["limit_live_selling", "none"]
    carried = [e for e in state.ledger if e.entity_type == "creator" and e.kind == "charge"][-1]
    assert (carried.request_id, carried.points) == ("req-S1-1", -4)


def test_a_charge_carried_at_the_credit_cap_takes_back_only_what_its_reversal_gave(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("counterfeit")), chunk(1, block("counterfeit")))  # 10 -> 6
    run(enforcer, state, Tick(T0 + timedelta(days=29)))  # weekly recoveries: 6 -> 10
    assert state.creator("C1").credit == 10
    run(enforcer, state, ok_verdict(1, "req-S1-0", minutes=60 * 24 * 29 + 60))  # +2 (the cap is 12), carried: -2
    assert state.creator("C1").credit == 10


def test_a_penalty_stored_before_stays_on_its_accounting_when_eased(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, block("counterfeit"), FlaggedInput(1, "block", ("efficacy_claim",))),  # -> 3
        chunk(1, block("absolute_claim")), chunk(2, block("false_scarcity")))  # -> 1
    penalty = state.creators["C1"].penalty
    penalty.started, penalty.basis = None, 3  # as stored before: the later charges not behind it
    run(enforcer, state, VerdictGiven(T0 + timedelta(minutes=5), 1, "stream", "S1", "req-S1-0", "ok", "rev", 1))
    eased = state.creator("C1").penalty  # efficacy back: 1 -> 4, the basis 3 -> 6: eased to the 7-day limit
    assert (eased.level, eased.started) == (6, None)
    run(enforcer, state, ok_verdict(2, "req-S1-1", minutes=6))  # absolute_claim, charged after it: 4 -> 5
    penalty = state.creator("C1").penalty  # still at or below 6, and still on the stored accounting
    assert state.creator("C1").credit == 5 and (penalty.level, penalty.basis, penalty.started) == (6, 6, None)


def test_overturning_one_review_of_a_burst_reverses_the_charges_of_the_others(enforcer) -> None:
    state = MemoryState()
    reviews = [FlaggedInput(0, "review", ("fake_endorsement",)), FlaggedInput(1, "review", ("guarantee_claim",)),
               FlaggedInput(2, "review", ("false_scarcity",))]
    run(enforcer, state, dataclasses.replace(chunk(0, *reviews, segments=3), rule_blocked=(0, 1, 2)))
    assert state.creator("C1").credit == 10 - 2 - 2 - 1
    run(enforcer, state, VerdictGiven(T0 + timedelta(minutes=1), 1, "stream", "S1", "req-S1-0", "guarantee_claim",
                                      "rev", 1))  # a reviewer confirms one of them
    run(enforcer, state, VerdictGiven(T0 + timedelta(minutes=2), 2, "stream", "S1", "req-S1-0", "ok", "rev", 0))
    # Two burst reviews are left: no burst. The unconfirmed one's charge goes, the confirmed one's stays.
    standing = [(e.category, e.status) for e in state.ledger if e.entity_type == "creator" and e.kind == "charge"
                and not any(r.refers_to == e.id for r in state.ledger if r.kind == "reversal")]
    assert standing == [("guarantee_claim", "provisional")] and state.creator("C1").credit == 8
    assert state.merchant("M1").points == 2


def test_replay_counts_a_penalty_as_resting_on_an_overturn_only_for_its_own_listing() -> None:
    from policy.replay import replay

    # one call: three blocks of M1 (12 points: a hold) and one of M2; a reviewer then finds M2's listing clean
    call = ListingsScored(T0, "req-L", (*(ListingScored(f"A{i}", "M1", "block", "block") for i in range(3)),
                                        ListingScored("B0", "M2", "block", "block")))
    clean_b0 = VerdictGiven(T0 + timedelta(minutes=5), 1, "listing", "B0", "req-L", "ok", "rev")
    result = replay([(1, call), (2, clean_b0)], load_policy())
    [hold] = [a for a in result.state.actions if a.entity_id == "M1" and a.after == "review_hold"]
    assert hold.triggers and all(t["request_id"] == "req-L" for t in hold.triggers)
    assert not result.rests_on_overturned(hold)  # M2's listing was overturned, not the ones M1's hold rests on
    clean_a2 = VerdictGiven(T0 + timedelta(minutes=6), 2, "listing", "A2", "req-L", "ok", "rev")
    assert replay([(1, call), (2, clean_a2)], load_policy()).rests_on_overturned(hold)


def test_a_verdict_naming_a_segments_categories_withdraws_the_charges_of_the_others(enforcer) -> None:
    # The model charged price_fraud and off_platform; the reviewer says the segment holds only
    # off_platform. The price_fraud charges once stayed and became final.
    state = MemoryState()
    run(enforcer, state, chunk(0, CLAIM))
    assert state.creator("C1").credit == 6 and state.merchant("M1").points == 5
    run(enforcer, state, VerdictGiven(T0 + timedelta(hours=1), 7, "stream", "S1", "req-S1-0", "off_platform",
                                      "rev", 0))
    assert state.creator("C1").credit == 8 and state.merchant("M1").points == 3
    appeals = {a.ledger_entry_id: a for a in state.appeals.values()}
    now = T0 + timedelta(hours=2)
    by_category = {(e.entity_type, e.category): charge_status(e, state.ledger, appeals, now, 7)
                   for e in state.ledger if e.kind == "charge"}
    assert by_category == {("creator", "price_fraud"): "reversed", ("creator", "off_platform"): "final",
                           ("merchant", "price_fraud"): "reversed", ("merchant", "off_platform"): "final"}
    # A changed verdict on the same segment is the one enforcement acts on.
    run(enforcer, state, VerdictGiven(T0 + timedelta(hours=3), 8, "stream", "S1", "req-S1-0", "price_fraud",
                                      "rev2", 0))
    assert state.creator("C1").credit == 8 and state.merchant("M1").points == 2


def test_a_charge_whose_appeal_was_upheld_stays_through_later_overturns(enforcer) -> None:
    # An ok verdict, or the other party's appeal overturned, once reversed an upheld charge while
    # its appeal still said upheld.
    state = MemoryState()
    run(enforcer, state, chunk(0, FlaggedInput(0, "block", ("price_fraud",))))
    creator_charge = next(e for e in state.ledger if e.entity_type == "creator")
    merchant_charge = next(e for e in state.ledger if e.entity_type == "merchant")
    at = T0 + timedelta(days=1)
    run(enforcer, state, AppealFiled(at, 1, creator_charge.id, "C1", "no"),
        AppealFiled(at, 2, merchant_charge.id, "M1", "no"),
        AppealDecided(at + timedelta(hours=1), 2, "upheld", "lead"),
        AppealDecided(at + timedelta(hours=2), 1, "overturned", "lead"))
    assert state.creator("C1").credit == 10 and state.merchant("M1").points == 2
    run(enforcer, state, ok_verdict(9, "req-S1-0", minutes=60 * 30))
    assert state.merchant("M1").points == 2
    appeals = {a.ledger_entry_id: a for a in state.appeals.values()}
    assert charge_status(merchant_charge, state.ledger, appeals, at + timedelta(days=2), 7) == "final"


def test_a_listing_reviewers_cleared_is_not_charged_again_when_re_scored_at_block(enforcer) -> None:
    # Once per listing however often re-scored: an identical re-score after an ok once charged 4 again.
    state = MemoryState()
    scored = lambda n: ListingsScored(T0 + timedelta(hours=n), f"req-L{n}",  # noqa: E731
                                      (ListingScored("L1", "M8", "block", "block"),))
    run(enforcer, state, scored(0), VerdictGiven(T0 + timedelta(hours=1), 5, "listing", "L1", "req-L0", "ok", "rev",
                                                 None))
    assert state.merchant("M8").points == 0
    run(enforcer, state, scored(2))
    assert state.merchant("M8").points == 0
    run(enforcer, state, VerdictGiven(T0 + timedelta(hours=3), 6, "listing", "L1", "req-L2", "inferior", "rev2",
                                      None))  # a reviewer's own finding still counts
    assert state.merchant("M8").points == 4


def test_a_verdict_logged_before_the_rules_of_this_version_replays_as_it_acted(enforcer) -> None:
    # An older log: its verdict naming one category left the other charge standing, and its
    # replay must reproduce that ledger.
    state = MemoryState()
    run(enforcer, state, chunk(0, CLAIM), VerdictGiven(T0 + timedelta(hours=1), 7, "stream", "S1", "req-S1-0",
                                                      "off_platform", "rev", 0, rules=1))
    assert state.creator("C1").credit == 6 and not [e for e in state.ledger if e.kind == "reversal"]


def test_categories_a_reviewer_withdrew_are_never_carried_or_charged_to_the_segment_later(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, chunk(0, FlaggedInput(0, "block", ("price_fraud",))), chunk(1, CLAIM))
    assert state.creator("C1").credit == 6  # price_fraud once per broadcast, off_platform
    run(enforcer, state, VerdictGiven(T0 + timedelta(hours=1), 7, "stream", "S1", "req-S1-1", "off_platform",
                                      "rev", 0),
        ok_verdict(8, "req-S1-0", minutes=120))
    # The first segment's price_fraud is overturned; the second no longer holds price_fraud, so
    # the charge is not carried to it.
    assert state.creator("C1").credit == 8
    assert [e.category for e in state.ledger if e.entity_type == "creator" and e.kind == "charge"] == [
        "price_fraud", "off_platform"]


def test_a_reviewers_finding_on_a_listing_names_its_call_so_an_appeal_of_it_shows_on_the_decision(enforcer) -> None:
    state = MemoryState()
    run(enforcer, state, ListingsScored(T0, "req-L", (ListingScored("L2", "M8", "review", "review"),)),
        VerdictGiven(T0 + timedelta(hours=1), 5, "listing", "L2", "req-L", "inferior", "rev", None))
    [charge] = [e for e in state.ledger if e.kind == "charge"]
    assert charge.listing_id == "L2" and charge.request_id == "req-L" and charge.status == "final"
