"""Whole real broadcasts through the enforcement policy: held-out rooms of ``live_asr``.

A false-marketing training run with ``--real`` decides every labelled real sentence with a
model that never saw its room (cross-fitted, ``heldout_segments.parquet`` in the home). Here
each room's sentences are put back in broadcast order (its clips in time order, each clip's
sentences in spoken order), cut into chunks as a review pipeline would send them, and run
through the enforcement engine (``policy/engine.py``) under a policy, in memory. Measured:

- **rooms acted on**, by how many violations their labels hold, and **how soon** (the chunk
  and sentence at which each rung is first reached);
- **actions resting on clean speech**: an action the room would not have reached had
  reviewers overturned every segment the labels call clean (the engine's own overturn);
- **clean-only broadcasts**: each room with its violating sentences taken out, i.e. a room
  of ordinary talk as the model sees it: any action there is a false alarm;
- **charges on clean speech**: credit taken for segments the labels call clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policy.calls import burst_segments
from policy.document import ROOM_ACTIONS, PolicyDocument
from policy.engine import Enforcer
from policy.state import ChunkScored, FlaggedInput, MemoryState, VerdictGiven

SECONDS_PER_SENTENCE = 4.0  # live hosts speak a sentence every ~4 s (a sentence ~ 20 characters)
START = datetime(2025, 4, 1, 20, 0, tzinfo=UTC)
VIOLATION_BANDS = ((0, 9, "fewer than 10"), (10, 23, "10-23"), (24, 49, "24-49 (dozens)"), (50, 10**9, "50+"))


def broadcast_order(root: Path) -> pd.DataFrame:
    """Every clip sentence's place in its room's broadcast: ``sha256``, ``room``, ``order``."""
    import gzip
    import hashlib
    import json

    from training.data.live_asr import CLIPS_FILE, split_sentences

    with gzip.open(root / CLIPS_FILE, "rt", encoding="utf-8") as handle:
        clips = [json.loads(line) for line in handle if line.strip()]
    rows, seen = [], set()
    for clip in sorted(clips, key=lambda c: (c["room"], c["clip"])):  # a clip's name carries its time and number
        for position, sentence in enumerate(split_sentences(clip["text"])):
            key = hashlib.sha256(sentence.encode("utf-8")).hexdigest()
            if key not in seen:
                seen.add(key)
                rows.append({"sha256": key, "room": clip["room"], "clip": clip["clip"], "position": position})
    frame = pd.DataFrame(rows)
    frame["order"] = frame.groupby("room").cumcount()
    return frame


@dataclass
class RoomResult:
    """One broadcast replayed."""

    room: str
    sentences: int
    violating: int
    action: str
    first: dict[str, int | None]  # rung -> the sentence number at which it was first reached
    action_on_truth: str  # what remains once every clean-labelled segment is overturned
    flagged: int
    flagged_clean: int
    credit: int
    charges: int
    charges_on_clean: int
    clean_only_action: str = "none"
    clean_only_sentences: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rests_on_clean(self) -> bool:
        """Whether the room's action would fall if reviewers overturned the clean segments."""
        return ROOM_ACTIONS.index(self.action_on_truth) < ROOM_ACTIONS.index(self.action)


def _chunks(rows: pd.DataFrame, chunk_sentences: int, stream_id: str, rules: PolicyDocument
            ) -> list[ChunkScored]:
    events = []
    for n, start in enumerate(range(0, len(rows), chunk_sentences)):
        part = rows.iloc[start:start + chunk_sentences]
        decisions = part["decision"].tolist()
        starts = [int(i * SECONDS_PER_SENTENCE * 1000) for i in range(start, start + len(part))]
        flagged = tuple(FlaggedInput(i, d, tuple(c for c in str(labels).split("|") if c))
                        for i, (d, labels) in enumerate(zip(decisions, part["flagged_labels"], strict=True))
                        if d in ("review", "block"))
        at = START + timedelta(seconds=start * SECONDS_PER_SENTENCE)
        events.append(ChunkScored(at, stream_id, f"{stream_id}:{n}", len(part), flagged, stream_id, stream_id, n,
                                  tuple(burst_segments(decisions, starts, rules.calls.stream_review_burst))))
    return events


def _replay(events: list[ChunkScored], enforcer: Enforcer) -> tuple[MemoryState, list[str]]:
    state = MemoryState()
    actions = []
    for number, event in enumerate(events, 1):
        state.event_id = number
        out = enforcer.apply(event, state)
        actions.append(out.room["action"] if out.room else "none")
    return state, actions


def replay_room(rows: pd.DataFrame, policy: PolicyDocument, chunk_sentences: int = 5) -> RoomResult:
    """One room's broadcast (rows in order: ``decision``, ``flagged_labels``, ``labels``)."""
    enforcer = Enforcer(policy)
    room = str(rows["room"].iloc[0])
    violating = rows["labels"].fillna("").astype(str) != ""
    events = _chunks(rows, chunk_sentences, room, policy)
    state, per_chunk = _replay(events, enforcer)
    first: dict[str, int | None] = {}
    for rung in ROOM_ACTIONS[1:]:
        reached = [i for i, a in enumerate(per_chunk) if ROOM_ACTIONS.index(a) >= ROOM_ACTIONS.index(rung)]
        first[rung] = reached[0] * chunk_sentences + chunk_sentences if reached else None
    flagged = rows["decision"].isin(["review", "block"]).to_numpy()
    clean_segments = {(e.request_id, f.index) for e in events for f in e.flagged
                      if not violating.iloc[int(e.request_id.rsplit(":", 1)[1]) * chunk_sentences + f.index]}
    charges = [e for e in state.ledger if e.kind == "charge" and e.entity_type == "creator"]
    truth = _action_on_truth(events, clean_segments, enforcer)
    result = RoomResult(room, len(rows), int(violating.sum()), per_chunk[-1] if per_chunk else "none", first, truth,
                        int(flagged.sum()), int((flagged & ~violating.to_numpy()).sum()), state.creators[room].credit
                        if room in state.creators else policy.creators.start, len(charges),
                        sum((e.request_id, e.segment_index) in clean_segments for e in charges),
                        actions=[{"at_sentence": (int(a.triggers[-1]["request_id"].rsplit(":", 1)[1]) + 1)
                                  * chunk_sentences if a.triggers else None, "to": a.after, "cause": a.cause}
                                 for a in state.actions if a.entity_type == "room"])
    clean_rows = rows[~violating.to_numpy()].reset_index(drop=True)
    if len(clean_rows):
        _, clean_actions = _replay(_chunks(clean_rows, chunk_sentences, room, policy), Enforcer(policy))
        result.clean_only_action, result.clean_only_sentences = clean_actions[-1], len(clean_rows)
    return result


def _action_on_truth(events: list[ChunkScored], clean: set[tuple[str, int]], enforcer: Enforcer) -> str:
    """The room's action once reviewers overturn every segment the labels call clean."""
    state, _ = _replay(events, enforcer)
    at = events[-1].at + timedelta(hours=1) if events else START
    for number, (request_id, index) in enumerate(sorted(clean), len(events) + 1):
        state.event_id = number
        enforcer.apply(VerdictGiven(at, number, "stream", events[0].stream_id, request_id, "ok", "labels", index),
                       state)
    room = state.room(events[0].stream_id) if events else None
    return room.action if room else "none"


def replay_rooms(segments: pd.DataFrame, order: pd.DataFrame, policy: PolicyDocument,
                 chunk_sentences: int = 5, group_column: str = "room") -> list[RoomResult]:
    """Every room of ``segments`` (held-out decisions by ``sha256``) replayed in broadcast order."""
    frame = segments.rename(columns={group_column: "room"}).merge(
        order[["sha256", "order"]], on="sha256", how="inner")
    frame = frame.sort_values(["room", "order"]).reset_index(drop=True)
    return [replay_room(rows.reset_index(drop=True), policy, chunk_sentences) for _, rows in frame.groupby("room")]


def summarize(results: list[RoomResult], policy: PolicyDocument, chunk_sentences: int) -> dict[str, Any]:
    """The figures of a replay: per band of violations, and over all rooms."""
    def share(values: list[bool]) -> float | None:
        return round(float(np.mean(values)), 4) if values else None

    bands = []
    for low, high, name in VIOLATION_BANDS:
        rooms = [r for r in results if low <= r.violating <= high]
        if not rooms:
            continue
        bands.append({
            "violations": name, "rooms": len(rooms),
            "acted_on": share([r.action != "none" for r in rooms]),
            "restricted_or_stopped": share([r.action in ("restrict", "stop") for r in rooms]),
            "stopped": share([r.action == "stop" for r in rooms]),
            "median_sentence_first_action": _median([r.first["warn"] for r in rooms]),
            "median_sentence_stop": _median([r.first["stop"] for r in rooms]),
        })
    acted = [r for r in results if r.action != "none"]
    charges = sum(r.charges for r in results)
    return {
        "policy": policy.version, "rooms": len(results), "sentences": sum(r.sentences for r in results),
        "chunk_sentences": chunk_sentences, "seconds_per_sentence": SECONDS_PER_SENTENCE,
        "by_violations": bands,
        "actions_resting_on_clean": share([r.rests_on_clean for r in acted]),
        "rooms_acted_on": len(acted),
        "clean_only_rooms_acted_on": share([r.clean_only_action != "none" for r in results if r.clean_only_sentences]),
        "clean_only_actions": {a: sum(r.clean_only_action == a for r in results) for a in ROOM_ACTIONS},
        "charges": charges, "charges_on_clean": round(sum(r.charges_on_clean for r in results) / charges, 4)
        if charges else None,
        "rooms_detail": [{"room": r.room, "sentences": r.sentences, "violating": r.violating, "action": r.action,
                          "first_warn": r.first["warn"], "first_restrict": r.first["restrict"],
                          "first_stop": r.first["stop"], "action_on_truth": r.action_on_truth,
                          "flagged": r.flagged, "flagged_clean": r.flagged_clean, "credit": r.credit,
                          "charges": r.charges, "charges_on_clean": r.charges_on_clean,
                          "clean_only_action": r.clean_only_action} for r in results],
    }


def _median(values: list[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None
