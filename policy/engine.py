"""Enforcement over time: events in, ledger entries and actions out, under one policy.

``Enforcer(policy).apply(event, state)`` is the whole logic; the live service runs it inside
one database transaction per event (``store.py``), the shadow replay over the logged events
in memory (``replay.py``), so replaying the live policy reproduces the live ledger.

- **Rooms.** Each segment at review or block of a broadcast enters its room's ladder: among
  the room's last ``rooms.window_segments`` segments (in the order received), the flagged ones
  weigh ``block_weight`` / ``review_weight``; the strongest rung whose weight and block count
  are reached is the room's action (``none < warn < restrict < stop``), never lowered within the
  broadcast except when an overturn takes away what it rested on. A creator who may not sell
  live (a penalty) has the room stopped from the first chunk.
- **Charges.** Only confirmed violations cost points: a segment at block (or one a stream
  rule blocked on) at once, as a *provisional* charge; a segment at review once a verdict
  names its categories (*final*). At most one charge per category per broadcast (per
  listing for listings) unless the policy charges per segment. A creator loses credit
  (``creators.points``), the room's merchant gains points (``merchants.points``); an inferior
  listing at block costs its merchant ``listing_block_points``.
- **Penalties**: a creator's charge that leaves the credit at or below a penalty's
  ``at_or_below`` imposes it (the strictest reached) unless one as strict is in force; a
  merchant's penalty is imposed when its active points cross a milestone. They end at their
  ``until``. Behind a penalty stands the balance when it was imposed and every charge since
  (recoveries and expiries left out); a reversal takes its points away from that, and a
  penalty with no longer enough behind it is lifted or eased to the level that still stands
  (never raised), counted from the start of its run of penalties.
- **Time.** Credit recovers after clean days, merchant points expire, penalties end: each is
  an entry or action dated when it took effect, applied before any later event of that
  entity and by the clock's ``Tick``.
- **Overturns and appeals.** A reviewer's ``ok`` on a flagged segment or a listing, or an
  appeal overturned, reverses every charge resting on it (moving a broadcast's charge of a
  category to another standing violation of that category, if any), lifts what no longer
  stands and re-derives the room's action. An appeal upheld, or a verdict naming the
  categories, makes a provisional charge final.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from policy.calls import MODEL_HOLD, MerchantHold
from policy.document import PENALTY_RAISES, ROOM_ACTIONS, PolicyDocument
from policy.state import (
    RULES,
    Action,
    AppealDecided,
    AppealFiled,
    Call,
    ChunkScored,
    Creator,
    Entry,
    Event,
    Flagged,
    ListingsScored,
    Merchant,
    MerchantsScored,
    ModelHold,
    Penalty,
    Room,
    State,
    Tick,
    VerdictGiven,
)

MERCHANT_STANDING = ("none", "review_hold", "suspension")
CLEAN_LABEL = "ok"
LISTING_CHARGE = "inferior_listing"


@dataclass
class Outcome:
    """What an event changed: the answer fields of a stream call, and every entry and action written."""

    room: dict[str, Any] | None = None
    creator: dict[str, Any] | None = None
    entries: list[Entry] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def answer_fields(self) -> dict[str, Any]:
        """What enforcement adds to a call's answer: a chunk's room and creator."""
        return {} if self.room is None else {"room": self.room, "creator": self.creator}


def _days(days: float | None) -> timedelta | None:
    return None if days is None else timedelta(days=days)


def stronger(a: str, b: str, order: tuple[str, ...]) -> str:
    """The stronger of two states in ``order``."""
    return a if order.index(a) >= order.index(b) else b


def _charged_as(segment: Flagged) -> str:
    """The rule a provisional charge of ``segment`` names: its block, or the stream's burst rule."""
    return "block" if segment.decision == "block" else "stream rule calls.stream_review_burst"


def _penalty_text(penalty: Penalty | None) -> str:
    """A penalty as the action feed says it: its kind and until when."""
    if penalty is None:
        return "none"
    return penalty.kind + (f" until {penalty.until:%Y-%m-%d %H:%M} UTC" if penalty.until else " (no end)")

# A recovery entry's rule: the level it recovers below is read back when credit is re-derived.
RECOVERY_RULE = "creators.recovery: {days:g} clean days below {below}"


def _recovered_below(rule: str) -> int | None:
    """The level a recovery entry's rule (``RECOVERY_RULE``) recovers below, or None."""
    found = re.fullmatch(r"creators\.recovery: \S+ clean days below (\d+)", rule)
    return int(found.group(1)) if found else None


# The rules of the event being applied (``RULES`` for events that name none: ticks), so that a
# replay of an older log reproduces its ledger; a context variable, as workers apply events on
# several threads through one enforcer.
_APPLYING: ContextVar[int] = ContextVar("shopguard_enforcement_rules", default=RULES)


def _rules() -> int:
    """The rules of the event being applied."""
    return _APPLYING.get()


class Enforcer:
    """The enforcement logic of one policy."""

    def __init__(self, policy: PolicyDocument) -> None:
        self.policy = policy
        self.version = policy.version

    # -- dispatch --------------------------------------------------------------------------

    def apply(self, event: Event, state: State) -> Outcome:
        """Apply one event; everything it changes is written through ``state``."""
        out = Outcome()
        handler = {ChunkScored: self._chunk, ListingsScored: self._listings, MerchantsScored: self._merchants,
                   VerdictGiven: self._verdict, AppealFiled: self._appeal_filed, AppealDecided: self._appeal_decided,
                   Tick: self._tick}[type(event)]
        token = _APPLYING.set(getattr(event, "rules", RULES))
        try:
            handler(event, state, out)  # type: ignore[operator]
        finally:
            _APPLYING.reset(token)
        return out

    # -- reading state as the policy sees it -------------------------------------------------

    def creator_view(self, creator: Creator, now: datetime) -> dict[str, Any]:
        """A creator as the answers show it: credit and the penalty in force."""
        penalty = creator.penalty if creator.penalty and creator.penalty.active(now) else None
        return {"creator_id": creator.creator_id, "credit": creator.credit,
                "penalty": None if penalty is None else {
                    "kind": penalty.kind, "since": penalty.since, "until": penalty.until,
                    "reason": f"credit fell to {penalty.level} or below (creators.penalties)"}}

    def merchant_hold(self, merchant: Merchant, now: datetime) -> MerchantHold | None:
        """The merchant's strongest penalty in force (its points penalty or the model's hold)."""
        holds = []
        penalty = merchant.penalty
        if penalty is not None and penalty.active(now):
            raises = self._raises(penalty.kind)
            holds.append(MerchantHold(merchant.merchant_id, penalty.kind, "points",
                                      f"{penalty.basis} violation points reached the milestone {penalty.level}",
                                      raises, penalty.until))
        hold = merchant.model_hold
        rule = self.policy.merchants.model_hold
        if hold is not None and hold.since + timedelta(days=rule.days) > now:
            holds.append(MerchantHold(merchant.merchant_id, rule.penalty, MODEL_HOLD, hold.detail,
                                      self._raises(rule.penalty), hold.since + timedelta(days=rule.days)))
        if not holds:
            return None
        return max(holds, key=lambda h: (MERCHANT_STANDING.index(h.kind), h.cause == "points"))

    def _raises(self, kind: str) -> str:
        return self.policy.calls.merchant_penalty_raises_to if kind == "review_hold" else PENALTY_RAISES[kind]

    def merchant_standing(self, merchant: Merchant | None, now: datetime) -> str:
        """``none``, ``review_hold`` or ``suspension``: the merchant's state in the action feed."""
        hold = self.merchant_hold(merchant, now) if merchant else None
        return hold.kind if hold else "none"

    @staticmethod
    def creator_standing(creator: Creator | None, now: datetime) -> str:
        """``none`` or the kind of the creator's penalty in force."""
        if creator is None or creator.penalty is None or not creator.penalty.active(now):
            return "none"
        return creator.penalty.kind

    # -- chunks of a broadcast -------------------------------------------------------------

    def _chunk(self, event: ChunkScored, state: State, out: Outcome) -> None:
        room = state.room(event.stream_id)
        # A room's creator is fixed by the first chunk that names one: a later chunk that leaves
        # creator_id out is still the creator's broadcast, and charged to them, and what stood
        # against the broadcast before it was named is charged to them then.
        creator_id = event.creator_id or (room.creator_id if room else None)
        named_late = room is not None and room.creator_id is None and event.creator_id is not None
        opened_under: str | None = None
        creator = self._creator(state, creator_id, event.at, out) if creator_id else None
        merchant = self._merchant(state, event.merchant_id, event.at, out) if event.merchant_id else None
        if room is None:  # a broadcast opened while its creator may not sell live is stopped throughout
            room = Room(event.stream_id, opened_at=event.at, creator_id=event.creator_id,
                        penalty_stop=self.policy.rooms.stop_for_creator_penalty
                        and self.creator_standing(creator, event.at) != "none")
        room.creator_id = room.creator_id or event.creator_id
        if named_late and creator is not None:
            # As if named from the first chunk: a host who may not sell live has the room stopped
            # (their standing before this room's own charges, as a room opened under it).
            standing = (state.standing_at("creator", creator.creator_id, room.opened_at) if _rules() >= 4
                        else self.creator_standing(creator, event.at))
            room.penalty_stop = room.penalty_stop or (self.policy.rooms.stop_for_creator_penalty
                                                      and standing != "none")
            if room.penalty_stop and standing != "none" and creator.penalty is None:
                opened_under = standing  # a penalty in force when the room opened, ended since
            self._charge_before_named(state, room, creator, event.at, out)
        base = room.segments
        state.add_call(Call(event.request_id, "stream", event.stream_id, event.at, event.merchant_id,
                            creator_id, event.chunk, None, base, event.segments))
        room.chunks += 1
        room.segments += event.segments
        new = []
        for f in event.flagged:
            segment = Flagged(event.stream_id, base + f.index, event.request_id, f.index, f.decision, f.categories,
                              event.merchant_id, rule_blocked=f.index in event.rule_blocked)
            state.put_flagged(segment)
            new.append(segment)
            room.blocks += f.decision == "block"
            room.reviews += f.decision == "review"
        for segment in new:
            if segment.decision == "block" or segment.rule_blocked:
                self._charge_segment(state, segment, segment.categories, "provisional", event.at,
                                     _charged_as(segment), creator, merchant, out)
        if creator is not None:
            state.put_creator(creator)
        if merchant is not None:
            state.put_merchant(merchant)
        self._climb(state, room, creator, event.at, [s.ordinal for s in new], "chunk", out, opened_under)
        room.updated_at = event.at
        state.put_room(room)
        out.room = self.room_view(state, room)
        out.creator = self.creator_view(creator, event.at) if creator is not None else None

    def _charge_before_named(self, state: State, room: Room, creator: Creator, at: datetime, out: Outcome) -> None:
        """A room whose first chunks named no host names one now: what already stands against
        the broadcast is the host's too. Blocks (and reviews the burst rule blocked on) are
        charged provisionally, categories a reviewer confirmed finally (once per category per
        broadcast, as always)."""
        flagged = state.flagged(room.stream_id)
        bursts = self._standing_bursts(flagged)
        for segment in flagged:
            if segment.overturned:
                continue
            if segment.decision == "block" or self._burst_stands(segment, bursts):
                self._charge_segment(state, segment, segment.categories, "provisional", at,
                                     f"{_charged_as(segment)}, before the host was named", creator, None, out)
            if segment.confirmed:
                self._charge_segment(state, segment, segment.confirmed, "final", at,
                                     "confirmed, before the host was named", creator, None, out)

    def room_view(self, state: State, room: Room) -> dict[str, Any]:
        """The room as a stream answer shows it: its action, counts, window and reasons."""
        rules = self.policy.rooms
        window = [s for s in state.flagged(room.stream_id, max(0, room.segments - rules.window_segments))
                  if not s.overturned and s.decision in ("block", "review")]
        blocks = sum(s.decision == "block" for s in window)
        return {"action": room.action, "counts": {"block": room.blocks, "review": room.reviews},
                "window": {"segments": min(room.segments, rules.window_segments), "block": blocks,
                           "review": len(window) - blocks,
                           "weight": round(blocks * rules.block_weight + (len(window) - blocks) * rules.review_weight,
                                           4)},
                "chunks": room.chunks, "reasons": list(room.reasons)}

    def _climb(self, state: State, room: Room, creator: Creator | None, at: datetime, ordinals: list[int],
               cause: str, out: Outcome, opened_under: str | None = None) -> None:
        """Raise the room's action to the strongest rung its new segments reach, and to stop for
        a creator who may not sell live (``opened_under``: the penalty a host named late was
        under when the room opened, ended since)."""
        before, reasons, triggers = room.action, list(room.reasons), []
        if ordinals:
            history = [s for s in state.flagged(room.stream_id, max(0, min(ordinals) - self.policy.rooms.window_segments))
                       if not s.overturned]
            reached, triggers, reason = self._ladder(history, min(ordinals))
            if ROOM_ACTIONS.index(reached) > ROOM_ACTIONS.index(room.action):
                room.action, reasons = reached, [reason]
        if room.penalty_stop and room.action != "stop" and creator is not None and creator.penalty is not None:
            penalty = creator.penalty
            until = f" until {penalty.until:%Y-%m-%d %H:%M} UTC" if penalty.until else ""
            room.action = "stop"
            reasons = [{"code": "creator_penalty", "detail": f"creator {creator.creator_id} is under "
                        f"{penalty.kind}{until} (credit {creator.credit})"}]
            triggers = []
            cause = "creator_penalty"
        elif opened_under is not None and room.action != "stop" and creator is not None:
            room.action, triggers, cause = "stop", [], "creator_penalty"
            reasons = [{"code": "creator_penalty", "detail": f"creator {creator.creator_id} was under {opened_under} "
                        "when the room opened"}]
        if room.action != before:
            room.reasons = reasons
            self._act(state, at, "room", room.stream_id, before, room.action, cause, reasons[0]["detail"], None,
                      triggers, out)

    def _ladder(self, flagged: list[Flagged], from_ordinal: int = 0
                ) -> tuple[str, list[dict[str, Any]], dict[str, str]]:
        """The strongest rung reached by a window ending at a flagged segment at or after
        ``from_ordinal``: (action, the decisions in that window, the reason)."""
        rules = self.policy.rooms
        counted = [s for s in flagged if s.decision in ("block", "review")]
        best, best_window, best_rung = "none", [], None
        start = 0
        for end, segment in enumerate(counted):
            while counted[start].ordinal <= segment.ordinal - rules.window_segments:
                start += 1
            if segment.ordinal < from_ordinal:
                continue
            window = counted[start:end + 1]
            blocks = sum(s.decision == "block" for s in window)
            weight = blocks * rules.block_weight + (len(window) - blocks) * rules.review_weight
            for rung in rules.rungs:
                if (weight >= rung.weight - 1e-9 and blocks >= rung.blocks
                        and ROOM_ACTIONS.index(rung.action) > ROOM_ACTIONS.index(best)):
                    best, best_window, best_rung = rung.action, window, (rung, weight, blocks)
        if best_rung is None:
            return "none", [], {}
        rung, weight, blocks = best_rung
        triggers = [{"request_id": s.request_id, "segment_index": s.segment_index, "decision": s.decision}
                    for s in best_window]
        shown = ", ".join(f"{t['request_id'][:12]}#{t['segment_index']}" for t in triggers[:6])
        reason = {"code": f"room_{best}",
                  "detail": f"{weight:g} weighted flagged segments ({blocks} at block, {len(best_window) - blocks} at "
                            f"review) within {rules.window_segments} segments reach the {best} rung (weight "
                            f"{rung.weight:g}, {rung.blocks} at block): {shown}"
                            + (" ..." if len(triggers) > 6 else "")}
        return best, triggers, reason

    # -- charges and penalties -----------------------------------------------------------

    def _charge_segment(self, state: State, segment: Flagged, categories: Iterable[str], status: str,
                        at: datetime, rule: str, creator: Creator | None, merchant: Merchant | None,
                        out: Outcome) -> None:
        for category in categories:
            if creator is not None:
                self._charge(state, "creator", creator, category, segment, status, at, rule, out)
            if merchant is not None:
                self._charge(state, "merchant", merchant, category, segment, status, at, rule, out)

    def _standing_charges(self, state: State, entity_type: str, entity_id: str, stream_id: str | None = None,
                          listing_id: str | None = None) -> list[Entry]:
        """The entity's charges not reversed (nor, for merchants, expired); only those of one
        broadcast or one listing when named (a reversal or expiry carries its charge's)."""
        entries = state.entries(entity_type, entity_id, stream_id, listing_id)
        ended = {e.refers_to for e in entries if e.kind in ("reversal", "expiry")}
        return [e for e in entries if e.kind == "charge" and e.id not in ended]

    def _charge(self, state: State, entity_type: str, entity: Creator | Merchant, category: str,
                segment: Flagged | None, status: str, at: datetime, rule: str, out: Outcome,
                listing_id: str | None = None, carrying: Entry | None = None, request_id: str | None = None) -> None:
        """Charge ``category`` of ``segment`` (or a listing) unless it is charged already, and
        impose the penalty the balance reaches. ``carrying``: the reversal of an overturned
        charge this one takes the place of; it takes back exactly what that gave, and leaves
        the penalty, the basis behind it and the recovery clock as they were."""
        entity_id = entity.creator_id if isinstance(entity, Creator) else entity.merchant_id
        standing = self._standing_charges(state, entity_type, entity_id, segment.stream_id if segment else None,
                                          listing_id)
        if listing_id is not None:
            if any(e.listing_id == listing_id for e in standing):
                return
            points, rule_key = self.policy.merchants.listing_block_points, "merchants.listing_block_points"
        else:
            assert segment is not None
            same = [e for e in standing if e.category == category and (
                (e.request_id, e.segment_index) == (segment.request_id, segment.segment_index)
                or (self.policy.charging.once_per == "category_per_broadcast" and e.stream_id == segment.stream_id))]
            if same:
                return
            table = self.policy.creators.points if entity_type == "creator" else self.policy.merchants.points
            points, rule_key = table[category], f"{entity_type}s.points.{category}"
        if points <= 0:
            return
        entry = Entry(entity_type, entity_id, at, 0, 0, "charge", f"{rule_key} ({rule})", self.version, status,
                      category, segment.stream_id if segment else None, listing_id,
                      segment.request_id if segment else request_id, segment.segment_index if segment else None)
        if carrying is not None:
            if isinstance(entity, Creator):
                entity.credit -= carrying.points
                entry = replace(entry, points=-carrying.points, balance=entity.credit)
            else:
                entity.points -= carrying.points
                entry = replace(entry, points=-carrying.points, balance=entity.points)
            out.entries.append(state.add_entry(entry))
            return
        if isinstance(entity, Creator):
            before = entity.credit
            entity.credit = max(0, entity.credit - points)
            entity.clock = at
            entry = replace(entry, points=entity.credit - before, balance=entity.credit)
        else:
            before = entity.points
            entity.points += points
            entry = replace(entry, points=points, balance=entity.points)
        penalty = entity.penalty
        if penalty is not None and penalty.active(at) and penalty.started is not None:
            penalty.basis += entry.points  # what stands behind the penalty in force grows too (not a stored one's)
        written = state.add_entry(entry)
        out.entries.append(written)
        self._impose(state, entity_type, entity, before, written, at, out)

    def _impose(self, state: State, entity_type: str, entity: Creator | Merchant, before: int, entry: Entry,
                at: datetime, out: Outcome) -> None:
        """A creator's charge that leaves the credit at or below a level imposes that level's
        penalty (the strictest reached) unless one as strict is in force: a creator whose 7-day
        limit ended at credit 5 is limited again by the next charge. A merchant's penalty is
        imposed when the points cross a milestone (TikTok Shop's milestones)."""
        if isinstance(entity, Creator):
            reached = [p for p in self.policy.creators.penalties if entity.credit <= p.at_or_below]
            if not reached:
                return
            rule = reached[-1]  # the lowest level reached is the strictest
            level, kind, days, balance = rule.at_or_below, rule.kind, rule.days, entity.credit
            current = entity.penalty if entity.penalty and entity.penalty.active(at) else None
            if current is not None and current.level <= level:
                return
            standing_before = self.creator_standing(entity, at)
            entity.penalty = Penalty(kind, at, at + _days(days) if days else None, level, balance, entry.id,
                                     current.run_start if current is not None else at)
            self._act(state, at, "creator", entity.creator_id, standing_before, kind, "credit_threshold",
                      f"credit {before} -> {entity.credit}: at or below {level} (creators.penalties): "
                      f"{_penalty_text(entity.penalty)}", entry.id, self._entry_trigger(entry), out, changed=True)
            return
        crossed_m = [m for m in self.policy.merchants.milestones if before < m.points <= entity.points]
        if not crossed_m:
            return
        milestone = crossed_m[-1]
        current = entity.penalty if entity.penalty and entity.penalty.active(at) else None
        if current is not None and current.level >= milestone.points:
            return
        standing_before = self.merchant_standing(entity, at)
        entity.penalty = Penalty(milestone.penalty, at, at + _days(milestone.days) if milestone.days else None,
                                 milestone.points, entity.points, entry.id,
                                 current.run_start if current is not None else at)
        self._act_merchant(state, entity, standing_before, at, "points_milestone",
                           f"points {before} -> {entity.points}: milestone {milestone.points} (merchants.milestones): "
                           f"{_penalty_text(entity.penalty)}", entry.id, self._entry_trigger(entry), out, changed=True)

    @staticmethod
    def _entry_trigger(entry: Entry) -> list[dict[str, Any]]:
        if entry.request_id is None:
            return []
        return [{"request_id": entry.request_id, "segment_index": entry.segment_index,
                 "listing_id": entry.listing_id, "category": entry.category}]

    def _act(self, state: State, at: datetime, entity_type: str, entity_id: str, before: str, after: str,
             cause: str, detail: str, entry_id: int | None, triggers: list[dict[str, Any]], out: Outcome,
             changed: bool = False) -> None:
        """Write an action to the feed when the standing changes (``changed``: also when its kind
        stays, as a 7-day limit raised to a 30-day one)."""
        if before == after and not changed:
            return
        out.actions.append(state.add_action(Action(at, entity_type, entity_id, before, after, cause, detail,
                                                   self.version, entry_id, triggers)))

    def _act_merchant(self, state: State, merchant: Merchant, before: str, at: datetime, cause: str, detail: str,
                      entry_id: int | None, triggers: list[dict[str, Any]], out: Outcome, changed: bool = False) -> None:
        self._act(state, at, "merchant", merchant.merchant_id, before, self.merchant_standing(merchant, at), cause,
                  detail, entry_id, triggers, out, changed)

    # -- entities and time ----------------------------------------------------------------

    def _creator(self, state: State, creator_id: str, at: datetime, out: Outcome) -> Creator:
        creator = state.creator(creator_id)
        if creator is None:
            return Creator(creator_id, self.policy.creators.start, at, at)
        self._creator_due(state, creator, at, out)
        return creator

    def _merchant(self, state: State, merchant_id: str, at: datetime, out: Outcome) -> Merchant:
        merchant = state.merchant(merchant_id)
        if merchant is None:
            return Merchant(merchant_id, 0, at)
        self._merchant_due(state, merchant, at, out)
        return merchant

    def next_creator_due(self, creator: Creator) -> datetime | None:
        """When the creator's next recovery or penalty end falls due (None: nothing will)."""
        times = []
        if creator.penalty is not None and creator.penalty.until is not None:
            times.append(creator.penalty.until)
        recovery = self._recovery_rule(creator)
        if recovery is not None:
            times.append(creator.clock + timedelta(days=recovery.clean_days))
        return min(times) if times else None

    def _withdrawn(self, creator: Creator) -> bool:
        """Whether the creator is withdrawn until lifted and the policy recovers no credit then."""
        return (not self.policy.creators.recovers_while_withdrawn and creator.penalty is not None
                and creator.penalty.kind == "withdraw_ecommerce" and creator.penalty.until is None)

    def _recovery_rule(self, creator: Creator) -> Any:
        rules = self.policy.creators
        if creator.credit >= rules.cap:
            return None
        if self._withdrawn(creator):
            return None
        return next((r for r in rules.recovery if creator.credit < r.below), None)

    def _creator_due(self, state: State, creator: Creator, now: datetime, out: Outcome) -> None:
        """Penalty ends and recoveries due by ``now``, in the order they fell due."""
        while True:
            ends = creator.penalty.until if creator.penalty is not None and creator.penalty.until else None
            recovery = self._recovery_rule(creator)
            recovers = creator.clock + timedelta(days=recovery.clean_days) if recovery is not None else None
            due = [t for t in (ends, recovers) if t is not None and t <= now]
            if not due:
                return
            at = min(due)
            if ends is not None and ends == at:
                before = self.creator_standing(creator, at - timedelta(microseconds=1))
                kind = creator.penalty.kind if creator.penalty else "none"
                creator.penalty = None
                self._act(state, at, "creator", creator.creator_id, before, "none", "penalty_ended",
                          f"{kind} ended", None, [], out)
                continue
            assert recovery is not None
            points = min(recovery.points, self.policy.creators.cap - creator.credit)
            creator.credit += points
            creator.clock = at
            out.entries.append(state.add_entry(Entry(
                "creator", creator.creator_id, at, points, creator.credit, "recovery",
                RECOVERY_RULE.format(days=recovery.clean_days, below=recovery.below), self.version)))

    def next_merchant_due(self, state: State, merchant: Merchant) -> datetime | None:
        """When the merchant's next expiry, penalty end or hold end falls due."""
        times = [self._expires(e) for e in self._standing_charges(state, "merchant", merchant.merchant_id)]
        if merchant.penalty is not None and merchant.penalty.until is not None:
            times.append(merchant.penalty.until)
        if merchant.model_hold is not None:
            times.append(merchant.model_hold.since + timedelta(days=self.policy.merchants.model_hold.days))
        return min(times) if times else None

    def _expires(self, entry: Entry) -> datetime:
        return entry.at + timedelta(days=self.policy.merchants.expire_days)

    def _merchant_due(self, state: State, merchant: Merchant, now: datetime, out: Outcome) -> None:
        """Expiries, penalty ends and the model hold's end due by ``now``, in the order they fell due."""
        if merchant.due_hint is not None and merchant.due_hint > now:
            return  # nothing falls due before the hint (written with the merchant's last change)
        while True:
            expiring = sorted((self._expires(e), e.id or 0, e) for e in
                              self._standing_charges(state, "merchant", merchant.merchant_id) if self._expires(e) <= now)
            ends = merchant.penalty.until if merchant.penalty is not None and merchant.penalty.until else None
            hold_ends = (merchant.model_hold.since + timedelta(days=self.policy.merchants.model_hold.days)
                         if merchant.model_hold is not None else None)
            due = [t for t in (expiring[0][0] if expiring else None, ends, hold_ends) if t is not None and t <= now]
            if not due:
                return
            at = min(due)
            before = self.merchant_standing(merchant, at - timedelta(microseconds=1))
            if expiring and expiring[0][0] == at:
                entry = expiring[0][2]
                merchant.points -= entry.points
                out.entries.append(state.add_entry(Entry(
                    "merchant", merchant.merchant_id, at, -entry.points, merchant.points, "expiry",
                    f"merchants.expire_days: {self.policy.merchants.expire_days:g} days after the charge",
                    self.version, category=entry.category, stream_id=entry.stream_id, listing_id=entry.listing_id,
                    request_id=entry.request_id, segment_index=entry.segment_index, refers_to=entry.id)))
                continue
            if ends is not None and ends == at:
                merchant.penalty = None
                self._act_merchant(state, merchant, before, at, "penalty_ended", "points penalty ended", None, [], out)
                continue
            merchant.model_hold = None
            self._act_merchant(state, merchant, before, at, "hold_ended",
                               f"the merchant-risk hold ended after {self.policy.merchants.model_hold.days:g} days",
                               None, [], out)

    def _tick(self, event: Tick, state: State, out: Outcome) -> None:
        for entity_type, entity_id in state.due(event.at):
            if entity_type == "creator":
                creator = state.creator(entity_id)
                if creator is not None:
                    self._creator_due(state, creator, event.at, out)
                    state.put_creator(creator)
            else:
                merchant = state.merchant(entity_id)
                if merchant is not None:
                    self._merchant_due(state, merchant, event.at, out)
                    state.put_merchant(merchant)

    # -- listings and merchants -----------------------------------------------------------

    def _listings(self, event: ListingsScored, state: State, out: Outcome) -> None:
        for item in event.items:
            state.add_call(Call(event.request_id, "listing", item.listing_id, event.at, item.merchant_id,
                                decision=item.decision))
            if (item.model_decision or item.decision) != "block":
                continue  # a block the merchant rule raised is the merchant's standing, not a new violation
            merchant = self._merchant(state, item.merchant_id, event.at, out)
            if event.rules >= 2 and self._cleared(state, merchant.merchant_id, item.listing_id):
                state.put_merchant(merchant)  # what fell due on reading it is kept
                continue
            # the call is named where the event says what the model decided (logged since it does), so that a
            # replay of a log written before reproduces its live ledger entry for entry
            self._charge(state, "merchant", merchant, LISTING_CHARGE, None, "provisional", event.at,
                         f"listing {item.listing_id} at block", out, listing_id=item.listing_id,
                         request_id=event.request_id if item.model_decision is not None else None)
            state.put_merchant(merchant)

    def _merchants(self, event: MerchantsScored, state: State, out: Outcome) -> None:
        for item in event.items:
            if item.decision != "block":
                continue  # a later, better score does not lower a hold: only a reviewer's ok lifts it
            merchant = self._merchant(state, item.merchant_id, event.at, out)
            before = self.merchant_standing(merchant, event.at)
            merchant.model_hold = ModelHold(event.at, f"{item.model} decided block (score {item.score:.3f}, "
                                                      f"{event.at:%Y-%m-%d %H:%M} UTC)")
            self._act_merchant(state, merchant, before, event.at, "merchant_risk_block", merchant.model_hold.detail,
                               None, [{"request_id": event.request_id, "model": item.model}], out)
            state.put_merchant(merchant)

    # -- verdicts -------------------------------------------------------------------------

    def _verdict(self, event: VerdictGiven, state: State, out: Outcome) -> None:
        if event.superseded_by is not None:
            return  # a later verdict on the item, applied before it, is the one that acts
        if event.entity_type == "merchant":
            self._merchant_verdict(event, state, out)
            return
        call = state.call(event.request_id, event.entity_id)
        if call is None:
            return  # a decision enforcement never saw (scored before it existed): nothing to change
        if call.entity_type == "listing":
            self._listing_verdict(event, call, state, out)
            return
        indexes = [i for i in (range(call.segments) if event.segment_index is None else [event.segment_index])
                   if i not in event.skip_segments]
        flagged = {s.ordinal: s for s in state.flagged(call.entity_id, call.ordinal)
                   if s.ordinal < call.ordinal + call.segments}
        reason = f"verdict {event.feedback_id} by {event.reviewer}"
        if event.label == CLEAN_LABEL:
            targets = [flagged[call.ordinal + i] for i in indexes if call.ordinal + i in flagged]
            self._overturn(state, call.entity_id, targets, event.at, reason, out, protect_upheld=event.rules >= 2)
            return
        categories = tuple(c for c in event.label.split("|") if c)
        for index in indexes:
            segment = flagged.get(call.ordinal + index) or Flagged(
                call.entity_id, call.ordinal + index, call.request_id, index, "allow", (), call.merchant_id)
            if event.segment_index is not None and event.rules >= 2:  # the categories it truly has: the rest fall
                if segment.ordinal in flagged:
                    self._withdraw(state, segment, categories, event.at, reason, out)
                segment.confirmed = ()
            self._confirm(state, segment, categories, call, event.at, reason, out)

    def _merchant_verdict(self, event: VerdictGiven, state: State, out: Outcome) -> None:
        if event.label != CLEAN_LABEL:
            return
        merchant = state.merchant(event.entity_id)
        if merchant is None:
            return
        self._merchant_due(state, merchant, event.at, out)
        before = self.merchant_standing(merchant, event.at)
        if merchant.model_hold is not None:
            merchant.model_hold = None
            self._act_merchant(state, merchant, before, event.at, "overturn",
                               f"verdict {event.feedback_id} by {event.reviewer}: the merchant is ordinary",
                               None, [{"request_id": event.request_id}], out)
        state.put_merchant(merchant)

    def _listing_verdict(self, event: VerdictGiven, call: Call, state: State, out: Outcome) -> None:
        if call.merchant_id is None:
            return
        merchant = self._merchant(state, call.merchant_id, event.at, out)
        reason = f"verdict {event.feedback_id} by {event.reviewer}"
        charges = [e for e in self._standing_charges(state, "merchant", merchant.merchant_id,
                                                     listing_id=call.entity_id) if e.listing_id == call.entity_id]
        if event.label == CLEAN_LABEL:
            for charge in charges:
                if not (event.rules >= 2 and self._upheld(state, charge)):
                    self._reverse(state, merchant, charge, event.at, f"overturned: {reason}", out)
        elif charges:
            self._confirm_entries(state, charges, event.at, reason, out, merchant.points)
        else:
            self._charge(state, "merchant", merchant, LISTING_CHARGE, None, "final", event.at,
                         f"listing {call.entity_id} confirmed inferior: {reason}", out, listing_id=call.entity_id,
                         request_id=call.request_id if event.rules >= 3 else None)
        state.put_merchant(merchant)

    def _confirm(self, state: State, segment: Flagged, categories: tuple[str, ...], call: Call, at: datetime,
                 reason: str, out: Outcome) -> None:
        """A reviewer names the categories a segment truly has: it stands (again), its charges
        are final, categories not yet charged in the broadcast are charged; a review burst its
        overturn had broken that stands again charges its other reviews again."""
        restored = segment.overturned and segment.rule_blocked and _rules() >= 4
        segment.overturned = False
        segment.confirmed = tuple(dict.fromkeys((*segment.confirmed, *categories)))
        state.put_flagged(segment)
        host = state.room(segment.stream_id)
        # The room's host: also for a call sent before any chunk named one (charged when one was named).
        creator_id = call.creator_id or (host.creator_id if host else None)
        creator = self._creator(state, creator_id, at, out) if creator_id else None
        merchant = self._merchant(state, call.merchant_id, at, out) if call.merchant_id else None
        for entity_type, entity in (("creator", creator), ("merchant", merchant)):
            if entity is None:
                continue
            entity_id = entity.creator_id if isinstance(entity, Creator) else entity.merchant_id
            on_it = [e for e in self._standing_charges(state, entity_type, entity_id, segment.stream_id)
                     if (e.request_id, e.segment_index) == (segment.request_id, segment.segment_index)]
            balance = entity.credit if isinstance(entity, Creator) else entity.points
            self._confirm_entries(state, [e for e in on_it if e.category in categories], at, reason, out, balance)
        self._charge_segment(state, segment, categories, "final", at, f"confirmed: {reason}", creator, merchant, out)
        if restored:
            self._charge_burst_again(state, segment, at, reason, creator, merchant, out)
        if creator is not None:
            state.put_creator(creator)
        if merchant is not None:
            state.put_merchant(merchant)
        room = state.room(segment.stream_id)
        if room is not None and segment.decision in ("block", "review"):
            self._climb(state, room, None, at, [segment.ordinal], "verdict", out)
            state.put_room(room)

    def _charge_burst_again(self, state: State, segment: Flagged, at: datetime, reason: str,
                            creator: Creator | None, merchant: Merchant | None, out: Outcome) -> None:
        """The other burst reviews of ``segment``'s call, when the burst stands again: charged
        provisionally, as the call charged them (once per category per broadcast)."""
        flagged = state.flagged(segment.stream_id)
        bursts = self._standing_bursts(flagged)
        for other in flagged:
            if (other.request_id == segment.request_id and other.segment_index != segment.segment_index
                    and self._burst_stands(other, bursts)):
                self._charge_segment(state, other, other.categories, "provisional", at,
                                     f"{_charged_as(other)}, the burst standing again: {reason}", creator, merchant,
                                     out)

    def _confirm_entries(self, state: State, charges: list[Entry], at: datetime, reason: str, out: Outcome,
                         balance: int | None = None) -> None:
        """Confirmation entries of ``charges`` not yet final; ``balance``: the entity's balance
        now (what fell due in the same event included), else the stored one."""
        confirmed = {e.refers_to for e in state.entries(charges[0].entity_type, charges[0].entity_id)
                     if e.kind == "confirmation"} if charges else set()
        for charge in charges:
            if charge.status == "final" or charge.id in confirmed:
                continue
            after = (balance if balance is not None and _rules() >= 4
                     else self._balance(state, charge.entity_type, charge.entity_id))
            out.entries.append(state.add_entry(Entry(
                charge.entity_type, charge.entity_id, at, 0, after, "confirmation", f"confirmed: {reason}",
                self.version, category=charge.category, stream_id=charge.stream_id, listing_id=charge.listing_id,
                request_id=charge.request_id, segment_index=charge.segment_index, refers_to=charge.id)))

    def _balance(self, state: State, entity_type: str, entity_id: str) -> int:
        if entity_type == "creator":
            creator = state.creator(entity_id)
            return creator.credit if creator else self.policy.creators.start
        merchant = state.merchant(entity_id)
        return merchant.points if merchant else 0

    # -- overturns ------------------------------------------------------------------------

    def _withdraw(self, state: State, segment: Flagged, keep: tuple[str, ...], at: datetime, reason: str,
                  out: Outcome) -> None:
        """A verdict naming the categories ``segment`` truly has: it stands, the model's other
        categories are no longer its own (nothing carries or charges them to it later), and their
        charges fall. The room's ladder is unchanged: the segment still stands."""
        segment.categories = tuple(c for c in segment.categories if c in keep)
        state.put_flagged(segment)
        self._overturn(state, segment.stream_id, [segment], at, reason, out, keep=keep)

    def _overturn(self, state: State, stream_id: str, segments: list[Flagged], at: datetime, reason: str,
                  out: Outcome, keep: tuple[str, ...] | None = None, protect_upheld: bool = True) -> None:
        """Segments found clean: reverse their charges, lift what no longer stands, re-derive the
        room. With ``keep`` (``_withdraw``), the segments stand and only their charges of other
        categories fall. With ``protect_upheld``, a charge whose appeal was upheld is final and
        stays (events logged before that rule: not)."""
        if keep is None:
            segments = [s for s in segments if not s.overturned]
            if not segments:
                return
            for segment in segments:
                segment.overturned = True
                state.put_flagged(segment)
        # Whose charges fall: the overturned segments', and those of burst reviews of the same
        # calls that no longer make a burst (a category a reviewer confirmed on them stays).
        falls: dict[tuple[str, int], tuple[str, ...]] = {(s.request_id, s.segment_index): keep or () for s in segments}
        flagged = state.flagged(stream_id)
        broken = {s.request_id for s in segments if s.rule_blocked} if keep is None else set()
        bursts = self._standing_bursts(flagged)
        for other in flagged:
            if other.request_id in broken and other.rule_blocked and not other.overturned \
                    and not self._burst_stands(other, bursts):
                falls[(other.request_id, other.segment_index)] = other.confirmed
        room = state.room(stream_id)
        creator_id = room.creator_id if room else None
        creator = self._creator(state, creator_id, at, out) if creator_id else None
        merchants = {s.merchant_id for s in flagged if (s.request_id, s.segment_index) in falls and s.merchant_id}
        for entity_type, entity in [("creator", creator)] + [("merchant", self._merchant(state, m, at, out))
                                                            for m in sorted(merchants)]:
            if entity is None:
                continue
            entity_id = entity.creator_id if isinstance(entity, Creator) else entity.merchant_id
            for charge in self._standing_charges(state, entity_type, entity_id, stream_id):
                kept = falls.get((charge.request_id, charge.segment_index))
                if kept is None or charge.category in kept or (protect_upheld and self._upheld(state, charge)):
                    continue
                # A charge carried to another violation of its category stands in its place: the
                # penalty behind it neither eases nor starts again.
                reversal = self._reverse(state, entity, charge, at, f"overturned: {reason}", out, ease=False)
                if not self._recharge(state, entity_type, entity, charge, reversal, at, out):
                    self._ease(state, entity, charge, reversal, at, out)
            if isinstance(entity, Creator):
                state.put_creator(entity)
            else:
                state.put_merchant(entity)
        room = state.room(stream_id)  # lifting a penalty may have re-derived it already
        if room is not None and keep is None:
            self._rederive(state, room, creator, at, reason, out)
            state.put_room(room)

    @staticmethod
    def _cleared(state: State, merchant_id: str, listing_id: str) -> bool:
        """Whether reviewers cleared the listing's latest charge (its last entry is a reversal): a
        re-score blocking it again as it was is not charged again. A charge that expired, or a
        reviewer's later finding, is not a clearing."""
        entries = [e for e in state.entries("merchant", merchant_id, None, listing_id)
                   if e.kind in ("charge", "reversal", "expiry")]
        return bool(entries) and entries[-1].kind == "reversal"

    @staticmethod
    def _upheld(state: State, charge: Entry) -> bool:
        """Whether an appeal of ``charge`` was upheld: the charge is final, whatever comes later."""
        appeal = state.appeal_of(charge.id or 0)
        return appeal is not None and appeal.status == "upheld"

    def _recharge(self, state: State, entity_type: str, entity: Creator | Merchant, reversed_charge: Entry,
                  reversal: Entry, at: datetime, out: Outcome) -> bool:
        """Charged once per category per broadcast: when that charge goes, the broadcast's next
        standing violation of the category (a block, a review the burst rule blocked on, or a
        confirmed segment) carries it. Whether one did."""
        if self.policy.charging.once_per != "category_per_broadcast" or reversed_charge.stream_id is None:
            return False
        category = reversed_charge.category
        flagged = state.flagged(reversed_charge.stream_id)
        bursts = self._standing_bursts(flagged)
        for segment in flagged:
            if segment.overturned or (segment.request_id, segment.segment_index) == (
                    reversed_charge.request_id, reversed_charge.segment_index):
                continue
            if entity_type == "merchant" and segment.merchant_id != reversed_charge.entity_id:
                continue
            blocked = segment.decision == "block" or self._burst_stands(segment, bursts)
            if category in segment.confirmed or (blocked and category in segment.categories):
                status = "final" if category in segment.confirmed else "provisional"
                self._charge(state, entity_type, entity, category or "", segment, status, at,
                             "carried from an overturned charge", out, carrying=reversal)
                return True
        return False

    @staticmethod
    def _standing_bursts(flagged: list[Flagged]) -> Counter[str]:
        """Per call (request id): how many of its burst reviews stand (not overturned). Counted
        once per room read, so that a long room is not scanned once per segment."""
        return Counter(s.request_id for s in flagged if s.rule_blocked and not s.overturned)

    def _burst_stands(self, segment: Flagged, standing: Counter[str]) -> bool:
        """Whether ``segment`` is a review the burst rule blocked on and enough of that call's
        burst reviews still stand (``standing``: ``_standing_bursts``) to charge it as a block."""
        return (segment.rule_blocked and not segment.overturned
                and standing[segment.request_id] >= self.policy.calls.stream_review_burst.segments)

    def _reverse(self, state: State, entity: Creator | Merchant, charge: Entry, at: datetime, reason: str,
                 out: Outcome, ease: bool = True) -> Entry:
        """A reversing entry giving back what ``charge`` took; penalties re-checked (``ease``).
        A creator's credit becomes what it would be without the charge (``_credit_without``), so
        that what an overturn gives back does not depend on the order of charges at the floor."""
        if isinstance(entity, Creator):
            before = entity.credit
            if _rules() >= 4:
                entity.credit = max(entity.credit, self._credit_without(state, entity, charge))
            else:
                entity.credit = min(self.policy.creators.cap, entity.credit - charge.points)
            points, balance = entity.credit - before, entity.credit
        else:
            points, balance = -charge.points, entity.points - charge.points
            entity.points = balance
        entry = state.add_entry(Entry(charge.entity_type, charge.entity_id, at, points, balance, "reversal", reason,
                                      self.version, category=charge.category, stream_id=charge.stream_id,
                                      listing_id=charge.listing_id, request_id=charge.request_id,
                                      segment_index=charge.segment_index, refers_to=charge.id))
        out.entries.append(entry)
        appeal = state.appeal_of(charge.id or 0)
        if appeal is not None and appeal.status == "pending":  # nothing left to appeal: closed with the reversal
            appeal.status, appeal.decided_by, appeal.decided_at, appeal.note = "overturned", "reversal", at, reason
            state.put_appeal(appeal)
        if ease:
            self._ease(state, entity, charge, entry, at, out)
        return entry

    def _credit_without(self, state: State, creator: Creator, charge: Entry) -> int:
        """The creator's credit re-derived from their ledger without ``charge`` and the charges
        reversed before: each standing charge takes its full points down to the floor at 0, each
        recovery given adds its points while the credit is below the level it recovers below,
        up to the cap."""
        entries = sorted(state.entries("creator", creator.creator_id), key=lambda e: e.id or 0)
        if not entries:
            return creator.credit
        ended = {e.refers_to for e in entries if e.kind == "reversal"} | {charge.id}
        cap = self.policy.creators.cap
        credit = entries[0].balance - entries[0].points  # where the creator started
        for entry in entries:
            if entry.kind == "charge" and entry.id not in ended:
                credit = max(0, credit - self._full_points(entry))
            elif entry.kind == "recovery":
                below = _recovered_below(entry.rule)
                if below is None or credit < below:
                    credit = min(cap, credit + entry.points)
        return min(cap, credit)

    def _full_points(self, charge: Entry) -> int:
        """What a creator's charge takes without the floor at 0: a charge that stopped at 0
        (a carried one too, which takes back only what its reversal gave) counts its category's
        points (the policy's now: a charge does not keep those of the version it was made under)."""
        if charge.balance == 0 and charge.category is not None and charge.rule.startswith("creators.points."):
            return max(-charge.points, self.policy.creators.points.get(charge.category, 0))
        return -charge.points

    def _ease(self, state: State, entity: Creator | Merchant, charge: Entry, reversal: Entry, at: datetime,
              out: Outcome) -> None:
        """Take a reversed charge away from what stands behind the penalty in force; lift or ease
        the penalty when it no longer stands."""
        penalty = entity.penalty
        if penalty is None or not penalty.active(at):
            return
        if penalty.started is None and charge.at > penalty.since:
            return  # stored before charges made under a penalty counted behind it: they are not in its basis
        if isinstance(entity, Creator):
            penalty.basis += reversal.points if _rules() >= 4 else -charge.points  # what the reversal gave back
            still = [p for p in self.policy.creators.penalties if penalty.basis <= p.at_or_below]
            keep = still[-1] if still else None  # the strictest level the basis still reaches
            if keep is not None and keep.at_or_below <= penalty.level:
                return  # as strict as the penalty in force, or stricter: a reversal never raises a penalty
            if self._withdrawn(entity) and _rules() >= 4:
                entity.clock = max(entity.clock, at)  # no clean days counted while withdrawn: from the lift
            before = self.creator_standing(entity, at)
            entity.penalty = self._eased(penalty, keep.kind if keep else None, keep.at_or_below if keep else None,
                                         keep.days if keep else None, at)
            self._act(state, at, "creator", entity.creator_id, before, self.creator_standing(entity, at), "overturn",
                      f"credit behind the penalty is {penalty.basis} after a reversal: "
                      + (f"eased to at or below {keep.at_or_below}: {_penalty_text(entity.penalty)}"
                         if entity.penalty else "lifted"),
                      reversal.id, self._entry_trigger(charge), out, changed=True)
            if self.creator_standing(entity, at) == "none":
                self._unstop_rooms(state, entity, at, out)
            return
        penalty.basis -= charge.points
        reached = [m for m in self.policy.merchants.milestones if penalty.basis >= m.points]
        keep_m = reached[-1] if reached else None
        if keep_m is not None and keep_m.points >= penalty.level:
            return
        before = self.merchant_standing(entity, at)
        entity.penalty = self._eased(penalty, keep_m.penalty if keep_m else None, keep_m.points if keep_m else None,
                                     keep_m.days if keep_m else None, at)
        self._act_merchant(state, entity, before, at, "overturn",
                           f"points behind the penalty are {penalty.basis} after a reversal: "
                           + (f"eased to milestone {keep_m.points}: {_penalty_text(entity.penalty)}"
                              if entity.penalty else "lifted"),
                           reversal.id, self._entry_trigger(charge), out, changed=True)

    @staticmethod
    def _eased(penalty: Penalty, kind: str | None, level: int | None, days: float | None, at: datetime
               ) -> Penalty | None:
        """The weaker penalty that still stands, counted from the start of the run of penalties
        (a 30-day limit eased back to the 7-day one ends 7 days after the first limit; None: none)."""
        if kind is None or level is None:
            return None
        start = penalty.run_start
        until = start + timedelta(days=days) if days else None
        if until is not None and until <= at:
            return None
        return Penalty(kind, start, until, level, penalty.basis, penalty.entry_id, penalty.started)

    def _unstop_rooms(self, state: State, creator: Creator, at: datetime, out: Outcome) -> None:
        for room in state.rooms_of_creator(creator.creator_id):
            if room.penalty_stop:
                room.penalty_stop = False
                self._rederive(state, room, creator, at, "the creator's penalty was lifted", out)
                state.put_room(room)

    def _rederive(self, state: State, room: Room, creator: Creator | None, at: datetime, reason: str,
                  out: Outcome) -> None:
        """The room's action from what still stands: the ladder over its segments not overturned,
        and stop while its creator may not sell live. Lowered only here (an overturn)."""
        before = room.action
        action, triggers, why = self._ladder([s for s in state.flagged(room.stream_id) if not s.overturned])
        reasons = [why] if why else []
        if room.penalty_stop and creator is not None and self.creator_standing(creator, at) != "none":
            action, reasons = "stop", room.reasons
        if action == before:
            return
        room.action, room.reasons = action, reasons
        self._act(state, at, "room", room.stream_id, before, action, "overturn",
                  f"re-derived after {reason}" + (f": {why['detail']}" if why else ": nothing stands"), None,
                  triggers, out)

    # -- appeals --------------------------------------------------------------------------

    def _appeal_filed(self, event: AppealFiled, state: State, out: Outcome) -> None:
        from policy.state import Appeal

        entry = state.entry(event.ledger_entry_id)
        assert entry is not None, "appeals are checked before they are logged"
        state.put_appeal(Appeal(event.appeal_id, entry.id or 0, entry.entity_type, entry.entity_id, event.appellant,
                                event.reason, event.at, filed_by=event.filed_by))

    def _appeal_decided(self, event: AppealDecided, state: State, out: Outcome) -> None:
        appeal = state.appeal(event.appeal_id)
        assert appeal is not None and appeal.status == "pending", "decisions are checked before they are logged"
        appeal.status, appeal.decided_by, appeal.decided_at, appeal.note = (event.outcome, event.reviewer, event.at,
                                                                            event.note)
        state.put_appeal(appeal)
        charge = state.entry(appeal.ledger_entry_id)
        assert charge is not None
        reason = f"appeal {appeal.id} {event.outcome} by {event.reviewer}"
        if event.outcome == "upheld":
            self._confirm_entries(state, [charge], event.at, reason, out)
            return
        if charge.listing_id is not None and charge.entity_type == "merchant":
            merchant = self._merchant(state, charge.entity_id, event.at, out)
            if charge.id in {e.id for e in self._standing_charges(state, "merchant", merchant.merchant_id,
                                                                 listing_id=charge.listing_id)}:
                self._reverse(state, merchant, charge, event.at, f"overturned: {reason}", out)
            state.put_merchant(merchant)
            return
        if charge.stream_id is not None:
            segment = next((s for s in state.flagged(charge.stream_id) if (s.request_id, s.segment_index)
                            == (charge.request_id, charge.segment_index)), None)
            if segment is not None:
                self._overturn(state, charge.stream_id, [segment], event.at, reason, out,
                               protect_upheld=event.rules >= 2)


def charge_status(entry: Entry, entries: list[Entry], appeals: dict[int, Any], now: datetime,
                  deadline_days: float) -> str:
    """A charge's status now: ``reversed`` once a reversal names it, ``expired`` once an expiry
    does, ``final`` once confirmed (a verdict, an appeal upheld) or past the appeal deadline
    unappealed, else ``provisional``. Other entries are ``final``."""
    if entry.kind != "charge":
        return "final"
    kinds = {e.kind for e in entries if e.refers_to == entry.id}
    if "reversal" in kinds:
        return "reversed"
    if "expiry" in kinds:
        return "expired"
    if entry.status == "final" or "confirmation" in kinds:
        return "final"
    appeal = appeals.get(entry.id or 0)
    if appeal is None and now > entry.at + timedelta(days=deadline_days):
        return "final"
    return "provisional"
