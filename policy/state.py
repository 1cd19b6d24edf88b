"""What enforcement remembers: rooms, creators, merchants, their ledgers, actions and appeals,
and the events that change them.

The engine (``engine.py``) reads and writes these through ``State``; ``MemoryState`` keeps
them in dictionaries (the shadow replay), ``store.py``'s ``SqlState`` in the database (the
live service), so both run the same engine code.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlaggedInput:
    """A segment of a scored chunk at review or block, as the model and per-call rules decided."""

    index: int
    decision: str
    categories: tuple[str, ...]


# The enforcement rules an event was applied under. 2: a verdict naming a segment's categories
# withdraws the others, a charge whose appeal was upheld stays, a listing reviewers cleared is
# not charged again; 3: a reviewer's finding on a listing names the listing's call; 4: a
# confirmation's balance includes what fell due in the same event, a host named late is stopped
# only for a penalty in force when the room opened, clean days count from a withdrawal's lift,
# a review burst restored by a verdict charges its reviews again, a creator's reversal gives the
# credit re-derived without the charge (not what it took at the floor). Events logged before carry
# none and are read as 1, so that a replay of an older log reproduces its ledger.
RULES = 4


@dataclass(frozen=True)
class ChunkScored:
    """One stream call: a chunk of a broadcast, scored."""

    at: datetime
    stream_id: str
    request_id: str
    segments: int
    flagged: tuple[FlaggedInput, ...]
    creator_id: str | None = None
    merchant_id: str | None = None
    chunk: int | None = None
    rule_blocked: tuple[int, ...] = ()  # segments a stream rule (the review burst) blocked on
    rules: int = RULES


@dataclass(frozen=True)
class ListingScored:
    """A listing decision at review or block of a listing with a merchant."""

    listing_id: str
    merchant_id: str
    decision: str
    model_decision: str | None = None  # before the merchant rule; None in events logged before it was kept



@dataclass(frozen=True)
class ListingsScored:
    """One listing call (its listings at review or block that name a merchant)."""

    at: datetime
    request_id: str
    items: tuple[ListingScored, ...]
    rules: int = RULES


@dataclass(frozen=True)
class MerchantScored:
    """A merchant-risk decision."""

    merchant_id: str
    decision: str
    score: float
    model: str


@dataclass(frozen=True)
class MerchantsScored:
    """One merchant call."""

    at: datetime
    request_id: str
    items: tuple[MerchantScored, ...]


@dataclass(frozen=True)
class VerdictGiven:
    """A reviewer's verdict (a stored feedback row)."""

    at: datetime
    feedback_id: int
    entity_type: str
    entity_id: str
    request_id: str
    label: str
    reviewer: str
    segment_index: int | None = None
    # A later verdict on the same item applied first (two reviewers within the same instant, on
    # two workers): this one is logged, and acts on nothing; a whole-call verdict acts on nothing
    # for the segments later verdicts named (``skip_segments``).
    superseded_by: int | None = None
    skip_segments: tuple[int, ...] = ()
    rules: int = RULES


@dataclass(frozen=True)
class AppealFiled:
    """An appeal of one ledger entry."""

    at: datetime
    appeal_id: int
    ledger_entry_id: int
    appellant: str
    reason: str
    filed_by: str | None = None  # the calling token's name (None: authentication off, or logged before)
    # The decision the charge came from (None: logged before): a replay under another policy
    # numbers its ledger otherwise, so the entry id alone would name another charge there.
    request_id: str | None = None
    segment_index: int | None = None
    listing_id: str | None = None


@dataclass(frozen=True)
class AppealDecided:
    """A reviewer's decision on an appeal: ``upheld`` (the charge stands) or ``overturned``."""

    at: datetime
    appeal_id: int
    outcome: str
    reviewer: str
    note: str = ""
    rules: int = RULES


@dataclass(frozen=True)
class Tick:
    """The clock: recoveries, expiries and penalty ends due by ``at``."""

    at: datetime


Event = ChunkScored | ListingsScored | MerchantsScored | VerdictGiven | AppealFiled | AppealDecided | Tick
EVENT_TYPES: dict[str, type] = {"chunk": ChunkScored, "listings": ListingsScored, "merchants": MerchantsScored,
                                "verdict": VerdictGiven, "appeal": AppealFiled, "appeal_decision": AppealDecided,
                                "tick": Tick}
_NESTED = {"flagged": FlaggedInput, "items_listings": ListingScored, "items_merchants": MerchantScored}


def event_type(event: Event) -> str:
    """The name an event is logged under."""
    return next(name for name, cls in EVENT_TYPES.items() if isinstance(event, cls))


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON form of an event (times as ISO strings)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {k: plain(v) for k, v in dataclasses.asdict(value).items()}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    payload = plain(event)
    if isinstance(event, VerdictGiven):
        if event.superseded_by is None:
            del payload["superseded_by"]
        if not event.skip_segments:
            del payload["skip_segments"]
    if isinstance(event, AppealFiled):
        for key in ("filed_by", "request_id", "segment_index", "listing_id"):
            if payload[key] is None:
                del payload[key]
    return payload


def event_from_payload(name: str, payload: dict[str, Any]) -> Event:
    """An event back from its logged form."""
    cls = EVENT_TYPES[name]
    values = dict(payload)
    values["at"] = datetime.fromisoformat(values["at"])
    if "rules" in {f.name for f in dataclasses.fields(cls)}:
        values.setdefault("rules", 1)  # logged before events named their rules
    if cls is VerdictGiven:
        values["skip_segments"] = tuple(values.get("skip_segments", ()))
    if cls is ChunkScored:
        values["flagged"] = tuple(FlaggedInput(f["index"], f["decision"], tuple(f["categories"]))
                                  for f in values["flagged"])
        values["rule_blocked"] = tuple(values.get("rule_blocked", ()))
    elif cls is ListingsScored:
        values["items"] = tuple(ListingScored(**i) for i in values["items"])
    elif cls is MerchantsScored:
        values["items"] = tuple(MerchantScored(**i) for i in values["items"])
    return cls(**values)


# -- what is remembered ---------------------------------------------------------------------


@dataclass
class Room:
    """A live room: one broadcast (``stream_id``)."""

    stream_id: str
    opened_at: datetime
    creator_id: str | None = None
    action: str = "none"
    chunks: int = 0
    segments: int = 0
    blocks: int = 0
    reviews: int = 0
    penalty_stop: bool = False  # stopped because its creator may not sell live
    reasons: list[dict[str, str]] = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass
class Flagged:
    """A segment of a room at review or block (or confirmed by a reviewer)."""

    stream_id: str
    ordinal: int  # its place among the room's segments, in the order received
    request_id: str
    segment_index: int
    decision: str
    categories: tuple[str, ...]
    merchant_id: str | None = None
    overturned: bool = False
    confirmed: tuple[str, ...] = ()  # categories a reviewer confirmed
    rule_blocked: bool = False  # a review the stream's burst rule blocked on (charged as a block)


@dataclass
class Call:
    """A scored call enforcement knows, to find it again from a verdict's request id."""

    request_id: str
    entity_type: str  # stream | listing
    entity_id: str
    at: datetime
    merchant_id: str | None = None
    creator_id: str | None = None
    chunk: int | None = None
    decision: str | None = None
    ordinal: int = 0  # a stream call: the room's segment count before it
    segments: int = 0
    segments_sha256: str | None = None
    answer: dict[str, Any] | None = None
    event_id: int | None = None


@dataclass
class Penalty:
    """A penalty in force: imposed at ``since`` when the balance reached ``level``; ``basis``
    is the balance at imposition net of later charges and reversals (what still stands behind
    it); ``started``: when the first penalty of an unbroken run was imposed (a penalty raised
    over one in force keeps its start, and one eased back is counted from it)."""

    kind: str
    since: datetime
    until: datetime | None
    level: int
    basis: int
    entry_id: int | None = None
    started: datetime | None = None

    @property
    def run_start(self) -> datetime:
        """When the run of penalties this one belongs to began."""
        return self.started or self.since

    def active(self, now: datetime) -> bool:
        """Whether it is in force at ``now``."""
        return self.until is None or self.until > now


@dataclass
class Creator:
    """A host: credit score and penalty."""

    creator_id: str
    credit: int
    clock: datetime  # last violation or recovery: clean days count from here
    created_at: datetime
    penalty: Penalty | None = None


@dataclass
class ModelHold:
    """The merchant-risk model's block, standing since ``since``."""

    since: datetime
    detail: str


@dataclass
class Merchant:
    """A merchant: violation points, a points penalty and the model's hold."""

    merchant_id: str
    points: int
    created_at: datetime
    penalty: Penalty | None = None
    model_hold: ModelHold | None = None
    # When something next falls due, as last written (a database row's hint; None: unknown,
    # work it out): a merchant with nothing due is not read further.
    due_hint: datetime | None = field(default=None, compare=False)


@dataclass
class Entry:
    """A ledger entry. ``points`` is signed: creators' charges are negative (credit lost),
    merchants' positive (points gained). Entries are never edited: a reversal, a confirmation,
    a recovery or an expiry is a new entry (``refers_to`` names the charge it concerns)."""

    entity_type: str  # creator | merchant
    entity_id: str
    at: datetime
    points: int
    balance: int
    kind: str  # charge | reversal | confirmation | recovery | expiry
    rule: str
    policy_version: str
    status: str = "final"  # a charge's status when written: provisional (a block) or final (confirmed)
    category: str | None = None
    stream_id: str | None = None
    listing_id: str | None = None
    request_id: str | None = None
    segment_index: int | None = None
    refers_to: int | None = None
    event_id: int | None = None
    id: int | None = None


@dataclass
class Action:
    """A change of a room's action or of a creator's or merchant's penalty."""

    at: datetime
    entity_type: str  # room | creator | merchant
    entity_id: str
    before: str
    after: str
    cause: str
    detail: str
    policy_version: str
    ledger_entry_id: int | None = None
    triggers: list[dict[str, Any]] = field(default_factory=list)
    event_id: int | None = None
    id: int | None = None


@dataclass
class Appeal:
    """An appeal of a ledger entry."""

    id: int
    ledger_entry_id: int
    entity_type: str
    entity_id: str
    appellant: str
    reason: str
    filed_at: datetime
    status: str = "pending"  # pending | upheld | overturned
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str = ""
    filed_by: str | None = None  # the token that filed it (None: authentication off, or filed before)


class State(Protocol):
    """What the engine reads and writes (``MemoryState`` here, ``SqlState`` in ``store.py``)."""

    event_id: int | None

    def room(self, stream_id: str) -> Room | None: ...
    def put_room(self, room: Room) -> None: ...
    def rooms_of_creator(self, creator_id: str) -> list[Room]: ...
    def flagged(self, stream_id: str, from_ordinal: int = 0) -> list[Flagged]: ...
    def put_flagged(self, segment: Flagged) -> None: ...
    def call(self, request_id: str, entity_id: str | None = None) -> Call | None: ...
    def add_call(self, call: Call) -> None: ...
    def creator(self, creator_id: str) -> Creator | None: ...
    def put_creator(self, creator: Creator) -> None: ...
    def merchant(self, merchant_id: str) -> Merchant | None: ...
    def put_merchant(self, merchant: Merchant) -> None: ...
    def entry(self, entry_id: int) -> Entry | None: ...
    def entries(self, entity_type: str, entity_id: str, stream_id: str | None = None,
                listing_id: str | None = None) -> list[Entry]: ...
    def add_entry(self, entry: Entry) -> Entry: ...
    def add_action(self, action: Action) -> Action: ...
    def standing_at(self, entity_type: str, entity_id: str, at: datetime) -> str:
        """The entity's standing (``after`` of its last action dated at or before ``at``)."""
        ...
    def appeal(self, appeal_id: int) -> Appeal | None: ...
    def appeal_of(self, ledger_entry_id: int) -> Appeal | None: ...
    def put_appeal(self, appeal: Appeal) -> None: ...
    def due(self, now: datetime) -> list[tuple[str, str]]: ...


class MemoryState:
    """Every entity in dictionaries: the shadow replay's state (nothing touches the database)."""

    def __init__(self) -> None:
        self.event_id: int | None = None
        self.rooms: dict[str, Room] = {}
        self._flagged: dict[str, dict[int, Flagged]] = {}
        self._ordinals: dict[str, list[int]] = {}  # each room's flagged ordinals, sorted
        self.calls: dict[tuple[str, str], Call] = {}
        self._calls_by_request: dict[str, list[Call]] = {}
        self.creators: dict[str, Creator] = {}
        self.merchants: dict[str, Merchant] = {}
        self.ledger: list[Entry] = []
        self._by_entity: dict[tuple[str, str], list[Entry]] = {}
        self.actions: list[Action] = []
        self.appeals: dict[int, Appeal] = {}

    def room(self, stream_id: str) -> Room | None:
        room = self.rooms.get(stream_id)
        return replace(room, reasons=list(room.reasons)) if room else None

    def put_room(self, room: Room) -> None:
        self.rooms[room.stream_id] = room

    def rooms_of_creator(self, creator_id: str) -> list[Room]:
        return [replace(r) for r in self.rooms.values() if r.creator_id == creator_id]

    def flagged(self, stream_id: str, from_ordinal: int = 0) -> list[Flagged]:
        # The ladder reads a window at a room's end: only those are copied (a replay of a room
        # with tens of thousands of flagged segments was quadratic when all were sorted and read).
        found, ordinals = self._flagged.get(stream_id, {}), self._ordinals.get(stream_id, [])
        return [replace(found[o]) for o in ordinals[bisect.bisect_left(ordinals, from_ordinal):]]

    def put_flagged(self, segment: Flagged) -> None:
        found = self._flagged.setdefault(segment.stream_id, {})
        if segment.ordinal not in found:
            bisect.insort(self._ordinals.setdefault(segment.stream_id, []), segment.ordinal)
        found[segment.ordinal] = segment

    def call(self, request_id: str, entity_id: str | None = None) -> Call | None:
        for call in self._calls_by_request.get(request_id, []):
            if entity_id is None or call.entity_id == entity_id:
                return call
        return None

    def add_call(self, call: Call) -> None:
        self.calls[(call.request_id, call.entity_id)] = call
        self._calls_by_request.setdefault(call.request_id, []).append(call)

    def creator(self, creator_id: str) -> Creator | None:
        found = self.creators.get(creator_id)
        return replace(found, penalty=replace(found.penalty) if found.penalty else None) if found else None

    def put_creator(self, creator: Creator) -> None:
        self.creators[creator.creator_id] = creator

    def merchant(self, merchant_id: str) -> Merchant | None:
        found = self.merchants.get(merchant_id)
        if found is None:
            return None
        return replace(found, penalty=replace(found.penalty) if found.penalty else None,
                       model_hold=replace(found.model_hold) if found.model_hold else None)

    def put_merchant(self, merchant: Merchant) -> None:
        self.merchants[merchant.merchant_id] = merchant

    def entry(self, entry_id: int) -> Entry | None:
        return self.ledger[entry_id - 1] if 0 < entry_id <= len(self.ledger) else None

    def entries(self, entity_type: str, entity_id: str, stream_id: str | None = None,
                listing_id: str | None = None) -> list[Entry]:
        return [e for e in self._by_entity.get((entity_type, entity_id), [])
                if (stream_id is None or e.stream_id == stream_id) and (listing_id is None or e.listing_id == listing_id)]

    def add_entry(self, entry: Entry) -> Entry:
        entry = replace(entry, id=len(self.ledger) + 1, event_id=self.event_id)
        self.ledger.append(entry)
        self._by_entity.setdefault((entry.entity_type, entry.entity_id), []).append(entry)
        return entry

    def add_action(self, action: Action) -> Action:
        action = replace(action, id=len(self.actions) + 1, event_id=self.event_id)
        self.actions.append(action)
        return action

    def standing_at(self, entity_type: str, entity_id: str, at: datetime) -> str:
        dated = [a for a in self.actions if (a.entity_type, a.entity_id) == (entity_type, entity_id) and a.at <= at]
        return max(dated, key=lambda a: (a.at, a.id or 0)).after if dated else "none"

    def appeal(self, appeal_id: int) -> Appeal | None:
        found = self.appeals.get(appeal_id)
        return replace(found) if found else None

    def appeal_of(self, ledger_entry_id: int) -> Appeal | None:
        found = next((a for a in self.appeals.values() if a.ledger_entry_id == ledger_entry_id), None)
        return replace(found) if found else None

    def put_appeal(self, appeal: Appeal) -> None:
        self.appeals[appeal.id] = appeal

    def due(self, now: datetime) -> list[tuple[str, str]]:
        return [("creator", c) for c in sorted(self.creators)] + [("merchant", m) for m in sorted(self.merchants)]


def by_id(items: Iterable[Entry]) -> dict[int, Entry]:
    """Entries by id."""
    return {e.id: e for e in items if e.id is not None}
