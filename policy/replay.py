"""Shadow replay: what a candidate policy would have done to the logged past.

Every enforcement event is logged before its effects are written (``policy/store.py``): each
scored chunk with its segments' decisions, listing and merchant decisions, verdicts, appeals
and the clock's ticks, with its time. A replay applies them, in the order they were applied
live, to an empty in-memory state (``MemoryState``) under any policy: nothing live is read
after the events or written. Under the policy that was live, the replay reproduces the live
ledger and actions entry for entry (``compare_with_live``); under a candidate, it shows per
day what the candidate would have done, beside the current policy, and how many of its
actions rested on decisions that reviewers overturned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from policy.document import PolicyDocument
from policy.engine import Enforcer
from policy.state import Action, AppealDecided, AppealFiled, Entry, Event, MemoryState, VerdictGiven

ESCALATIONS = ("warn", "restrict", "stop")


@dataclass
class ReplayResult:
    """A policy's replayed state, its actions and per-day figures."""

    policy: PolicyDocument
    state: MemoryState
    events: int = 0
    # (request id, segment index) of a stream verdict, (request id, "listing", listing id) of a listing's
    overturned: set[tuple[str, int | None] | tuple[str, str, str]] = field(default_factory=set)

    def days(self, since: datetime | None = None, until: datetime | None = None) -> dict[date, dict[str, Any]]:
        """Per day: rooms warned / restricted / stopped, creators and merchants that crossed into
        each penalty, actions taken and the share resting on an overturned decision."""
        out: dict[date, Counter] = {}
        for action in self.state.actions:
            if (since and action.at < since) or (until and action.at >= until) or not _escalation(action):
                continue
            day = out.setdefault(action.at.date(), Counter())
            day[_column(action)] += 1
            day["actions"] += 1
            day["actions_on_overturned"] += self.rests_on_overturned(action)
        return {d: {**counts, "overturned_share": round(counts["actions_on_overturned"] / counts["actions"], 4)}
                for d, counts in sorted(out.items())}

    def rests_on_overturned(self, action: Action) -> bool:
        """Whether a decision the action was taken on was later found clean by a reviewer."""
        def overturned(trigger: dict[str, Any]) -> bool:
            request_id = trigger.get("request_id")
            if trigger.get("listing_id") is not None:  # one listing of a call, not every listing in it
                return (request_id, "listing", trigger["listing_id"]) in self.overturned
            return ((request_id, trigger.get("segment_index")) in self.overturned
                    or (request_id, None) in self.overturned)
        return any(overturned(t) for t in action.triggers)


def _escalation(action: Action) -> bool:
    """An action that acts (a room raised, a penalty imposed), not one that lifts."""
    return action.after != "none" and action.cause not in ("overturn", "penalty_ended", "hold_ended")


def _column(action: Action) -> str:
    if action.entity_type == "room":
        return f"rooms_{action.after}"
    return f"{action.entity_type}s_{action.after}"


def replay(events: Iterable[tuple[int, Event]], policy: PolicyDocument) -> ReplayResult:
    """Apply ``events`` (id, event), in order, under ``policy``, in memory."""
    enforcer = Enforcer(policy)
    result = ReplayResult(policy, MemoryState())
    filed: dict[int, AppealFiled] = {}
    for event_id, event in events:
        result.state.event_id = event_id
        if isinstance(event, AppealFiled):
            filed[event.appeal_id] = event
        enforcer.apply(event, result.state)
        result.events += 1
        if isinstance(event, VerdictGiven) and event.label == "ok" and event.superseded_by is None:
            result.overturned |= _overturned_by(event, result.state)
        elif isinstance(event, AppealDecided) and event.outcome == "overturned" and event.appeal_id in filed:
            result.overturned |= _overturned_by_appeal(filed[event.appeal_id], result.state)
    return result


def _overturned_by_appeal(appeal: AppealFiled, state: MemoryState) -> set[tuple]:
    """What an appeal overturned: the decision its charge came from (a listing or a segment),
    as the appeal names it (one logged before names only the entry, read from this ledger)."""
    request_id, segment_index, listing_id = appeal.request_id, appeal.segment_index, appeal.listing_id
    if request_id is None:
        entry = state.entry(appeal.ledger_entry_id)
        if entry is None or entry.request_id is None:
            return set()
        request_id, segment_index, listing_id = entry.request_id, entry.segment_index, entry.listing_id
    if listing_id is not None:
        return {(request_id, "listing", listing_id)}
    return {(request_id, segment_index)}


def _overturned_by(event: VerdictGiven, state: MemoryState) -> set[tuple]:
    """What an ``ok`` overturned: a listing, a segment, or a whole call (less the segments
    later verdicts took out of it)."""
    if event.entity_type == "listing":
        return {(event.request_id, "listing", event.entity_id)}
    if event.segment_index is not None or not event.skip_segments:
        return {(event.request_id, event.segment_index)}
    call = state.call(event.request_id, event.entity_id)
    return {(event.request_id, i) for i in range(call.segments if call else 0) if i not in event.skip_segments}


def _entry_key(entry: Entry) -> tuple:
    return (entry.entity_type, entry.entity_id, entry.at, entry.points, entry.balance, entry.kind, entry.rule,
            entry.status, entry.category, entry.stream_id, entry.listing_id, entry.request_id, entry.segment_index)


def _action_key(action: Action) -> tuple:
    return (action.at, action.entity_type, action.entity_id, action.before, action.after, action.cause,
            action.detail)


@dataclass
class LiveComparison:
    """Where a replay differs from the live ledger and actions (empty lists: identical)."""

    entries: int
    actions: int
    missing_entries: list[tuple] = field(default_factory=list)
    extra_entries: list[tuple] = field(default_factory=list)
    missing_actions: list[tuple] = field(default_factory=list)
    extra_actions: list[tuple] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Whether the replay reproduced the live ledger and actions exactly."""
        return not (self.missing_entries or self.extra_entries or self.missing_actions or self.extra_actions)


def compare_with_live(result: ReplayResult, live_entries: list[Entry], live_actions: list[Action]) -> LiveComparison:
    """Each entity's ledger and the actions of a replay against the live ones (ids aside:
    the order within each entity, every field and every time must agree)."""
    def per_entity(entries: list[Entry]) -> dict[tuple[str, str], list[tuple]]:
        grouped: dict[tuple[str, str], list[tuple]] = {}
        for entry in sorted(entries, key=lambda e: e.id or 0):
            grouped.setdefault((entry.entity_type, entry.entity_id), []).append(_entry_key(entry))
        return grouped

    live, replayed = per_entity(live_entries), per_entity(result.state.ledger)
    comparison = LiveComparison(len(live_entries), len(live_actions))
    for key in sorted(set(live) | set(replayed)):
        a, b = live.get(key, []), replayed.get(key, [])
        if a != b:
            comparison.missing_entries += [x for x in a if x not in b]
            comparison.extra_entries += [x for x in b if x not in a]
    live_actions_keys = Counter(_action_key(a) for a in live_actions)
    replayed_keys = Counter(_action_key(a) for a in result.state.actions)
    comparison.missing_actions = sorted((live_actions_keys - replayed_keys).elements(), key=str)
    comparison.extra_actions = sorted((replayed_keys - live_actions_keys).elements(), key=str)
    return comparison


def day_table(current: ReplayResult, candidate: ReplayResult, since: datetime | None,
              until: datetime | None) -> list[dict[str, Any]]:
    """One row per day and policy: the figures of ``ReplayResult.days`` side by side."""
    rows = []
    for name, result in (("current", current), ("candidate", candidate)):
        for day, figures in result.days(since, until).items():
            rows.append({"day": day.isoformat(), "policy": name, "policy_version": result.policy.version, **figures})
    columns = sorted({k for r in rows for k in r} - {"day", "policy", "policy_version"})
    return sorted(({**dict.fromkeys(columns, 0), **r} for r in rows), key=lambda r: (r["day"], r["policy"]))
