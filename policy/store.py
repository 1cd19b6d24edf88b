"""Enforcement in the database: each event is one transaction that logs the event, runs the
engine over the rows it touches and writes what changed, before the caller is answered.

Concurrency. SQLite: every enforcement transaction begins ``IMMEDIATE`` (one writer at a
time, across workers, queued on a file lock). PostgreSQL: the transaction first takes a
transaction-scoped advisory lock on the key of each room, creator and merchant it touches,
in sorted order in one statement (no deadlock), so two chunks of one room, or of two rooms of
one creator, are applied one after the other while other rooms go on in parallel; an event takes its id only once it holds its locks, so the
event ids of any two events that share an entity are in the order they were applied, which
is the order a replay applies them in. Actions take a transaction-scoped advisory lock before
their insert, so the feed's ids are committed in order: a reader paging by id never skips an
action that commits later with a lower id.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from common.errors import ShopGuardError
from features.ids import principal_key
from policy.calls import MerchantHold
from policy.document import PolicyDocument
from policy.engine import Enforcer, Outcome, charge_status
from policy.state import (
    Action,
    Appeal,
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
    Tick,
    VerdictGiven,
    event_payload,
    event_type,
)

metadata = MetaData()
ID = String(128)

events_table = Table(
    "enforcement_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("type", String(16), nullable=False),
    Column("request_id", String(64), nullable=True, index=True),
    Column("source_key", String(200), nullable=True, unique=True),
    Column("policy_version", String(96), nullable=False),
    Column("payload", JSON, nullable=False),
)
calls_table = Table(
    "enforcement_calls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("entity_type", String(16), nullable=False),
    Column("entity_id", ID, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("merchant_id", ID, nullable=True),
    Column("creator_id", ID, nullable=True),
    Column("chunk", Integer, nullable=True),
    Column("decision", String(16), nullable=True),
    Column("ordinal", Integer, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("segments_sha256", String(64), nullable=True),
    Column("answer", Text, nullable=True),  # a chunk's answer as JSON text, given again to a repeat
    Column("event_id", Integer, nullable=True),
    UniqueConstraint("entity_type", "entity_id", "chunk", name="uq_enforcement_calls_chunk"),
    Index("ix_enforcement_calls_request", "request_id", "entity_id"),
)
rooms_table = Table(
    "rooms", metadata,
    Column("stream_id", ID, primary_key=True),
    Column("creator_id", ID, nullable=True, index=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True, index=True),
    Column("action", String(16), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("blocks", Integer, nullable=False),
    Column("reviews", Integer, nullable=False),
    Column("penalty_stop", Boolean, nullable=False),
    Column("reasons", JSON, nullable=False),
)
room_segments_table = Table(
    "room_segments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream_id", ID, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("segment_index", Integer, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("categories", String(400), nullable=False),
    Column("merchant_id", ID, nullable=True),
    Column("overturned", Boolean, nullable=False),
    Column("confirmed", String(400), nullable=False),
    Column("rule_blocked", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("stream_id", "ordinal", name="uq_room_segments_ordinal"),
)
creators_table = Table(
    "creators", metadata,
    Column("creator_id", ID, primary_key=True),
    Column("credit", Integer, nullable=False),
    Column("clock", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("penalty", JSON, nullable=True),
    Column("next_due_at", DateTime(timezone=True), nullable=True, index=True),
)
merchant_standing_table = Table(
    "merchant_standing", metadata,
    Column("merchant_id", ID, primary_key=True),
    Column("points", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("penalty", JSON, nullable=True),
    Column("model_hold", JSON, nullable=True),
    Column("next_due_at", DateTime(timezone=True), nullable=True, index=True),
)
ledger_table = Table(
    "ledger_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity_type", String(16), nullable=False),
    Column("entity_id", ID, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("points", Integer, nullable=False),
    Column("balance", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("rule", String(400), nullable=False),
    Column("policy_version", String(96), nullable=False),
    Column("status", String(16), nullable=False),
    Column("category", String(32), nullable=True),
    Column("stream_id", ID, nullable=True),
    Column("listing_id", ID, nullable=True),
    Column("request_id", String(64), nullable=True, index=True),
    Column("segment_index", Integer, nullable=True),
    Column("refers_to", Integer, nullable=True),
    Column("event_id", Integer, nullable=True),
    Index("ix_ledger_entity", "entity_type", "entity_id", "id"),
)
actions_table = Table(
    "enforcement_actions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("entity_type", String(16), nullable=False),
    Column("entity_id", ID, nullable=False),
    Column("before", String(32), nullable=False),
    Column("after", String(32), nullable=False),
    Column("cause", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("policy_version", String(96), nullable=False),
    Column("ledger_entry_id", Integer, nullable=True),
    Column("triggers", JSON, nullable=False),
    Column("event_id", Integer, nullable=True),
    Index("ix_enforcement_actions_entity", "entity_type", "entity_id", "id"),
)
appeals_table = Table(
    "appeals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ledger_entry_id", Integer, nullable=False, unique=True),
    Column("entity_type", String(16), nullable=False),
    Column("entity_id", ID, nullable=False),
    Column("appellant", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("decided_by", String(128), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("note", Text, nullable=False),
    Column("filed_by", String(128), nullable=True),  # migration 0014
)
def _listing_requests(listing_id: str, merchant_id: str | None) -> Any:
    """The request ids of the calls that scored ``listing_id`` of ``merchant_id``, as a subquery
    (a listing re-scored in many calls would bind too many parameters)."""
    t = calls_table
    return select(t.c.request_id).where(t.c.entity_type == "listing", t.c.entity_id == listing_id,
                                        t.c.merchant_id == merchant_id if merchant_id is not None
                                        else t.c.merchant_id.is_(None))


def _feedback_keys(conn: Connection) -> tuple[Any, Any]:
    """The conditions picking verdict events (``source_key`` ``feedback:N``): a range of the
    key's index, compared byte by byte (under PostgreSQL's ICU or language collations ':' and
    ';' do not sort as they do in ASCII)."""
    key = events_table.c.source_key.collate("C") if conn.dialect.name == "postgresql" else events_table.c.source_key
    return key >= "feedback:", key < "feedback;"


FEED_LOCK = 72_610_026  # pg_advisory_xact_lock key of the action feed
NEVER_DUE = datetime(9999, 1, 1, tzinfo=UTC)


class EnforcementError(ShopGuardError):
    """An enforcement call refused, naming the ``field`` at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class EnforcementConflict(EnforcementError):
    """A call that contradicts what the room already holds (409 naming ``field``)."""


def host_conflict(stream_id: str, host: str) -> EnforcementConflict:
    """A chunk naming another creator than the room's."""
    return EnforcementConflict(f"stream {stream_id!r} is hosted by creator {host!r}; a stream's creator_id cannot "
                               "change", "creator_id")


def repeat_conflict(stream_id: str, chunk: int | None, sent: tuple[str, str | None, str | None],
                    stored: tuple[str, str | None, str | None]) -> EnforcementConflict | None:
    """A chunk sent again must be the same call: the same segments (sha256), and the creator
    and merchant it names (where it names them) those already stored, else the field that
    differs. ``sent`` and ``stored`` are (segments sha256, creator_id, merchant_id); the stored
    creator is the room's."""
    (sha, creator, merchant), (first_sha, host, first_merchant) = sent, stored
    if sha != first_sha:
        return EnforcementConflict(f"chunk {chunk} of stream {stream_id!r} was already scored with other segments; "
                                   "send each chunk once, or the same segments again", "chunk")
    if creator is not None and host is not None and creator != host:
        return host_conflict(stream_id, host)
    if creator is not None and host is None:  # answered as a repeat, the host would be dropped unsaid
        return EnforcementConflict(f"chunk {chunk} of stream {stream_id!r} was already scored without a creator_id and "
                                   "the stream names no host yet; send creator_id with the stream's next chunk",
                                   "creator_id")
    if merchant is not None and merchant != first_merchant:
        scored_for = f"for merchant {first_merchant!r}" if first_merchant is not None else "without a merchant_id"
        return EnforcementConflict(f"chunk {chunk} of stream {stream_id!r} was already scored {scored_for}; send a "
                                   "chunk again as it was first sent", "merchant_id")
    return None


class EnforcementForbidden(EnforcementError):
    """A call the caller may not make on this item (403 naming ``field``): a reviewer deciding
    an appeal they filed, or of a charge their own verdict stands behind."""


class EnforcementNotFound(EnforcementError):
    """An id enforcement does not know (404 naming ``field``)."""


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _penalty_json(penalty: Penalty | None) -> dict[str, Any] | None:
    if penalty is None:
        return None
    return {"kind": penalty.kind, "since": penalty.since.isoformat(),
            "until": penalty.until.isoformat() if penalty.until else None, "level": penalty.level,
            "basis": penalty.basis, "entry_id": penalty.entry_id,
            "started": penalty.started.isoformat() if penalty.started else None}


def _penalty(value: dict[str, Any] | None) -> Penalty | None:
    if not value:
        return None
    return Penalty(value["kind"], datetime.fromisoformat(value["since"]), _time(value["until"]), value["level"],
                   value["basis"], value["entry_id"], _time(value.get("started")))  # stored before: no start


def _split(value: str) -> tuple[str, ...]:
    return tuple(c for c in value.split("|") if c)


class SqlState:
    """``State`` over one database transaction (``policy/state.py`` documents the interface).

    Rooms, creators, merchants, a room's recent segments and the calls are read once (a batch
    prefetches them in a few queries), kept and changed in memory, and written by ``flush()``
    in a few statements: every statement costs the writer a wait for the interpreter lock
    behind the scoring threads, so a batch of calls makes about a dozen, not a dozen each.
    Ledger entries, actions and appeals are inserted as they are added (their ids are
    referenced at once); they are rare beside chunks."""

    def __init__(self, conn: Connection, enforcer: Enforcer) -> None:
        self.conn, self.enforcer = conn, enforcer
        self.event_id: int | None = None
        self._feed_locked = False
        self._rooms: dict[str, Room | None] = {}
        self._creators: dict[str, Creator | None] = {}
        self._merchants: dict[str, Merchant | None] = {}
        self._loaded: dict[tuple[str, str], Any] = {}  # as read: an unchanged entity is not written
        self._dirty: dict[str, set[str]] = {"room": set(), "creator": set(), "merchant": set()}
        self._flagged: dict[str, dict[int, Flagged]] = {}
        self._read_from: dict[str, int] = {}  # a room's segments from this ordinal on are in _flagged
        self._stored_flagged: set[tuple[str, int]] = set()  # segments that have a row already
        self._dirty_flagged: set[tuple[str, int]] = set()
        self._new_calls: dict[tuple[str, str], Call] = {}
        self._entries: dict[tuple[str, str], list[Entry]] = {}

    # -- reading ahead (a batch) ------------------------------------------------------------

    def prefetch(self, rooms: set[str], creators: set[str], merchants: set[str]) -> None:
        """Read these entities (and each room's segments in its ladder window) in four queries."""
        rooms = rooms - set(self._rooms)
        if rooms:
            found = {r["stream_id"]: self._room(r) for r in self.conn.execute(
                select(rooms_table).where(rooms_table.c.stream_id.in_(sorted(rooms)))).mappings()}
            for stream_id in rooms:
                self._remember_room(stream_id, found.get(stream_id))
            window = self.enforcer.policy.rooms.window_segments
            ranges = [(r.stream_id, max(0, r.segments - window)) for r in found.values() if r.blocks + r.reviews]
            if ranges:
                t = room_segments_table
                rows = self.conn.execute(select(t).where(or_(*[and_(t.c.stream_id == sid, t.c.ordinal >= low)
                                                               for sid, low in ranges]))).mappings()
                for row in rows:
                    self._keep_flagged(row)
                for stream_id, low in ranges:
                    self._read_from[stream_id] = low
        creators = creators - set(self._creators)
        if creators:
            found_c = {r["creator_id"]: r for r in self.conn.execute(
                select(creators_table).where(creators_table.c.creator_id.in_(sorted(creators)))).mappings()}
            for creator_id in creators:
                self._creators[creator_id] = self._creator(found_c[creator_id]) if creator_id in found_c else None
        merchants = merchants - set(self._merchants)
        if merchants:
            t = merchant_standing_table
            found_m = {r["merchant_id"]: r for r in self.conn.execute(
                select(t).where(t.c.merchant_id.in_(sorted(merchants)))).mappings()}
            for merchant_id in merchants:
                self._merchants[merchant_id] = self._merchant(found_m[merchant_id]) if merchant_id in found_m else None

    # -- rooms ------------------------------------------------------------------------------

    def room(self, stream_id: str) -> Room | None:
        if stream_id not in self._rooms:
            row = self.conn.execute(select(rooms_table).where(rooms_table.c.stream_id == stream_id)
                                    ).mappings().first()
            self._remember_room(stream_id, self._room(row) if row else None)
        room = self._rooms[stream_id]
        return _copy_room(room) if room else None

    def _remember_room(self, stream_id: str, room: Room | None) -> None:
        self._rooms[stream_id] = room
        # A room's flagged segments all lie below its segment count: none is stored from there on.
        self._read_from.setdefault(stream_id, room.segments if room else 0)
        self._flagged.setdefault(stream_id, {})

    @staticmethod
    def _room(row: Any) -> Room:
        return Room(row["stream_id"], _utc(row["opened_at"]), row["creator_id"], row["action"], row["chunks"],
                    row["segments"], row["blocks"], row["reviews"], bool(row["penalty_stop"]), list(row["reasons"]),
                    _utc(row["updated_at"]))

    def put_room(self, room: Room) -> None:
        self._rooms[room.stream_id] = _copy_room(room)
        self._dirty["room"].add(room.stream_id)

    def rooms_of_creator(self, creator_id: str) -> list[Room]:
        rows = self.conn.execute(select(rooms_table.c.stream_id).where(
            rooms_table.c.creator_id == creator_id, rooms_table.c.penalty_stop.is_(True))).scalars().all()
        found = {stream_id for stream_id, room in self._rooms.items()
                 if room is not None and room.creator_id == creator_id and room.penalty_stop}
        return [r for r in (self.room(s) for s in sorted(found | set(rows))) if r is not None and r.penalty_stop]

    def _keep_flagged(self, row: Any) -> None:
        segment = Flagged(row["stream_id"], row["ordinal"], row["request_id"], row["segment_index"], row["decision"],
                          _split(row["categories"]), row["merchant_id"], bool(row["overturned"]),
                          _split(row["confirmed"]), bool(row["rule_blocked"]))
        self._flagged.setdefault(segment.stream_id, {}).setdefault(segment.ordinal, segment)
        self._stored_flagged.add((segment.stream_id, segment.ordinal))

    def flagged(self, stream_id: str, from_ordinal: int = 0) -> list[Flagged]:
        from_ordinal = max(from_ordinal, 0)
        known = self._flagged.setdefault(stream_id, {})
        read_from = self._read_from.get(stream_id)  # None: nothing of the room read yet
        if read_from is None or from_ordinal < read_from:
            t = room_segments_table
            query = select(t).where(t.c.stream_id == stream_id, t.c.ordinal >= from_ordinal)
            if read_from is not None:  # no sentinel bound: 2**62 overflowed PostgreSQL's INTEGER ordinal
                query = query.where(t.c.ordinal < read_from)
            for row in self.conn.execute(query).mappings():
                self._keep_flagged(row)
            self._read_from[stream_id] = from_ordinal
        # The cached segments themselves: the engine changes one only to put it back at once.
        return [known[o] for o in sorted(known) if o >= from_ordinal]

    def put_flagged(self, segment: Flagged) -> None:
        known = self._flagged.setdefault(segment.stream_id, {})
        read_from = self._read_from.get(segment.stream_id)
        if segment.ordinal not in known and (read_from is None or segment.ordinal < read_from):
            self.flagged(segment.stream_id, segment.ordinal)  # a row may exist below what was read
        known[segment.ordinal] = segment
        self._dirty_flagged.add((segment.stream_id, segment.ordinal))

    # -- calls ------------------------------------------------------------------------------

    def call(self, request_id: str, entity_id: str | None = None) -> Call | None:
        for (request, entity), call in self._new_calls.items():
            if request == request_id and (entity_id is None or entity == entity_id):
                return call
        t = calls_table
        query = select(t).where(t.c.request_id == request_id)
        if entity_id is not None:
            query = query.where(t.c.entity_id == entity_id)
        row = self.conn.execute(query.limit(1)).mappings().first()
        return call_from_row(row) if row else None

    def add_call(self, call: Call) -> None:
        call.event_id = self.event_id
        self._new_calls[(call.request_id, call.entity_id)] = call

    def chunk_call(self, stream_id: str, chunk: int) -> Call | None:
        """A call of this batch with that chunk of that stream (a repeat within one batch)."""
        return next((c for c in self._new_calls.values()
                     if c.entity_type == "stream" and c.entity_id == stream_id and c.chunk == chunk), None)

    # -- creators and merchants ---------------------------------------------------------------

    def _creator(self, row: Any) -> Creator:
        creator = Creator(row["creator_id"], row["credit"], _utc(row["clock"]), _utc(row["created_at"]),
                          _penalty(row["penalty"]))
        self._loaded[("creator", creator.creator_id)] = _copy_creator(creator)
        return creator

    def creator(self, creator_id: str) -> Creator | None:
        if creator_id not in self._creators:
            row = self.conn.execute(select(creators_table).where(creators_table.c.creator_id == creator_id)
                                    ).mappings().first()
            self._creators[creator_id] = self._creator(row) if row else None
        found = self._creators[creator_id]
        return _copy_creator(found) if found else None

    def put_creator(self, creator: Creator) -> None:
        self._creators[creator.creator_id] = _copy_creator(creator)
        if self._loaded.get(("creator", creator.creator_id)) != creator:
            self._dirty["creator"].add(creator.creator_id)

    def _merchant(self, row: Any) -> Merchant:
        hold = row["model_hold"]
        merchant = Merchant(row["merchant_id"], row["points"], _utc(row["created_at"]), _penalty(row["penalty"]),
                            ModelHold(datetime.fromisoformat(hold["since"]), hold["detail"]) if hold else None,
                            _utc(row["next_due_at"]) or NEVER_DUE)
        self._loaded[("merchant", merchant.merchant_id)] = _copy_merchant(merchant)
        return merchant

    def merchant(self, merchant_id: str) -> Merchant | None:
        if merchant_id not in self._merchants:
            t = merchant_standing_table
            row = self.conn.execute(select(t).where(t.c.merchant_id == merchant_id)).mappings().first()
            self._merchants[merchant_id] = self._merchant(row) if row else None
        found = self._merchants[merchant_id]
        return _copy_merchant(found) if found else None

    def put_merchant(self, merchant: Merchant) -> None:
        self._merchants[merchant.merchant_id] = _copy_merchant(merchant)
        if self._loaded.get(("merchant", merchant.merchant_id)) != merchant:
            self._dirty["merchant"].add(merchant.merchant_id)

    # -- the ledger, actions, appeals (written at once) ---------------------------------------

    def entry(self, entry_id: int) -> Entry | None:
        row = self.conn.execute(select(ledger_table).where(ledger_table.c.id == entry_id)).mappings().first()
        return entry_from_row(row) if row else None

    def entries(self, entity_type: str, entity_id: str, stream_id: str | None = None,
                listing_id: str | None = None) -> list[Entry]:
        key = (entity_type, entity_id, stream_id, listing_id)
        whole = self._entries.get((entity_type, entity_id, None, None))
        if whole is not None:
            return [e for e in whole if (stream_id is None or e.stream_id == stream_id)
                    and (listing_id is None or e.listing_id == listing_id)]
        if key not in self._entries:
            t = ledger_table
            query = select(t).where(t.c.entity_type == entity_type, t.c.entity_id == entity_id)
            if stream_id is not None:
                query = query.where(t.c.stream_id == stream_id)
            if listing_id is not None:
                query = query.where(t.c.listing_id == listing_id)
            self._entries[key] = [entry_from_row(r) for r in self.conn.execute(query.order_by(t.c.id)).mappings()]
        return list(self._entries[key])

    def add_entry(self, entry: Entry) -> Entry:
        values = {k: v for k, v in entry.__dict__.items() if k != "id"}
        values["event_id"] = self.event_id
        new_id = self.conn.execute(insert(ledger_table).values(**values)).inserted_primary_key[0]
        written = Entry(**{**values, "id": new_id})
        for (entity_type, entity_id, stream_id, listing_id), cached in self._entries.items():
            if (entity_type, entity_id) == (entry.entity_type, entry.entity_id) and (
                    stream_id is None or stream_id == entry.stream_id) and (
                    listing_id is None or listing_id == entry.listing_id):
                cached.append(written)
        return written

    def add_action(self, action: Action) -> Action:
        if not self._feed_locked and self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})
            self._feed_locked = True
        values = {k: v for k, v in action.__dict__.items() if k != "id"}
        values["event_id"] = self.event_id
        new_id = self.conn.execute(insert(actions_table).values(**values)).inserted_primary_key[0]
        return Action(**{**values, "id": new_id})

    def standing_at(self, entity_type: str, entity_id: str, at: datetime) -> str:
        t = actions_table
        row = self.conn.execute(select(t.c.after).where(t.c.entity_type == entity_type, t.c.entity_id == entity_id,
                                                        t.c.at <= at).order_by(t.c.at.desc(), t.c.id.desc()).limit(1)
                                ).first()
        return row.after if row else "none"

    def appeal(self, appeal_id: int) -> Appeal | None:
        row = self.conn.execute(select(appeals_table).where(appeals_table.c.id == appeal_id)).mappings().first()
        return appeal_from_row(row) if row else None

    def appeal_of(self, ledger_entry_id: int) -> Appeal | None:
        row = self.conn.execute(select(appeals_table).where(appeals_table.c.ledger_entry_id == ledger_entry_id)
                                ).mappings().first()
        return appeal_from_row(row) if row else None

    def put_appeal(self, appeal: Appeal) -> None:
        values = {k: v for k, v in appeal.__dict__.items() if k != "id"}
        t = appeals_table
        if self.conn.execute(update(t).where(t.c.id == appeal.id).values(**values)).rowcount == 0:
            self.conn.execute(insert(t).values(id=appeal.id, **values))

    def due(self, now: datetime) -> list[tuple[str, str]]:
        found = [("creator", r) for r in self.conn.execute(
            select(creators_table.c.creator_id).where(creators_table.c.next_due_at <= now)
            .order_by(creators_table.c.creator_id)).scalars()]
        t = merchant_standing_table
        return found + [("merchant", r) for r in self.conn.execute(
            select(t.c.merchant_id).where(t.c.next_due_at <= now).order_by(t.c.merchant_id)).scalars()]

    # -- writing what changed ------------------------------------------------------------------

    def flush(self) -> None:
        """Write every changed room, creator, merchant, segment and the new calls."""
        rooms = [self._rooms[s] for s in sorted(self._dirty["room"])]
        _upsert(self.conn, rooms_table, ["stream_id"], [
            {"stream_id": r.stream_id, "creator_id": r.creator_id, "opened_at": r.opened_at,
             "updated_at": r.updated_at, "action": r.action, "chunks": r.chunks, "segments": r.segments,
             "blocks": r.blocks, "reviews": r.reviews, "penalty_stop": r.penalty_stop, "reasons": r.reasons}
            for r in rooms if r is not None])
        creators = [self._creators[c] for c in sorted(self._dirty["creator"])]
        _upsert(self.conn, creators_table, ["creator_id"], [
            {"creator_id": c.creator_id, "credit": c.credit, "clock": c.clock, "created_at": c.created_at,
             "penalty": _penalty_json(c.penalty), "next_due_at": self.enforcer.next_creator_due(c)}
            for c in creators if c is not None])
        merchants = [self._merchants[m] for m in sorted(self._dirty["merchant"])]
        _upsert(self.conn, merchant_standing_table, ["merchant_id"], [
            {"merchant_id": m.merchant_id, "points": m.points, "created_at": m.created_at,
             "penalty": _penalty_json(m.penalty),
             "model_hold": {"since": m.model_hold.since.isoformat(), "detail": m.model_hold.detail}
             if m.model_hold else None, "next_due_at": self.enforcer.next_merchant_due(self, m)}
            for m in merchants if m is not None])
        segments = [self._flagged[s][o] for s, o in sorted(self._dirty_flagged)]
        _upsert(self.conn, room_segments_table, ["stream_id", "ordinal"], [
            {"stream_id": f.stream_id, "ordinal": f.ordinal, "request_id": f.request_id,
             "segment_index": f.segment_index, "decision": f.decision, "categories": "|".join(f.categories),
             "merchant_id": f.merchant_id, "overturned": f.overturned, "confirmed": "|".join(f.confirmed),
             "rule_blocked": f.rule_blocked}
            for f in segments])
        if self._new_calls:
            self.conn.execute(insert(calls_table), [
                {"request_id": c.request_id, "entity_type": c.entity_type, "entity_id": c.entity_id, "at": c.at,
                 "merchant_id": c.merchant_id, "creator_id": c.creator_id, "chunk": c.chunk, "decision": c.decision,
                 "ordinal": c.ordinal, "segments": c.segments, "segments_sha256": c.segments_sha256,
                 "answer": c.answer, "event_id": c.event_id} for c in self._new_calls.values()])
        for kind in self._dirty:
            self._dirty[kind].clear()
        self._dirty_flagged.clear()
        self._new_calls.clear()


def _copy_room(room: Room) -> Room:
    return replace(room, reasons=list(room.reasons))


def _copy_creator(creator: Creator) -> Creator:
    return replace(creator, penalty=replace(creator.penalty) if creator.penalty else None)


def _copy_merchant(merchant: Merchant) -> Merchant:
    return replace(merchant, penalty=replace(merchant.penalty) if merchant.penalty else None,
                   model_hold=replace(merchant.model_hold) if merchant.model_hold else None)


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert(conn: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """Insert rows, replacing those whose ``keys`` exist, in one statement."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        for row in rows:
            conn.execute(table.delete().where(and_(*[table.c[k] == row[k] for k in keys])))
        conn.execute(insert(table), rows)
        return
    cache_key = (dialect, table.name, tuple(keys), tuple(rows[0]))
    statement = _UPSERTS.get(cache_key)
    if statement is None:  # built once: constructing a statement costs more than running it
        statement = (sqlite_insert if dialect == "sqlite" else pg_insert)(table)
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={c.name: statement.excluded[c.name] for c in table.columns
                                       if c.name not in keys and c.name in rows[0]})
        _UPSERTS[cache_key] = statement
    conn.execute(statement, rows)


def jsonable(value: Any) -> Any:
    """``value`` as JSON holds it (models as their fields, times as ISO strings)."""
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


def call_from_row(row: Any) -> Call:
    """A ``Call`` from its row."""
    return Call(row["request_id"], row["entity_type"], row["entity_id"], _utc(row["at"]), row["merchant_id"],
                row["creator_id"], row["chunk"], row["decision"], row["ordinal"], row["segments"],
                row["segments_sha256"], row["answer"])


def entry_from_row(row: Any) -> Entry:
    """An ``Entry`` from its row."""
    values = dict(row)
    values["at"] = _utc(values["at"])
    return Entry(**values)


def appeal_from_row(row: Any) -> Appeal:
    """An ``Appeal`` from its row."""
    values = dict(row)
    values["filed_at"], values["decided_at"] = _utc(values["filed_at"]), _utc(values["decided_at"])
    return Appeal(**values)


def action_from_row(row: Any) -> Action:
    """An ``Action`` from its row."""
    values = dict(row)
    values["at"] = _utc(values["at"])
    return Action(**values)


def call_keys(event: Event) -> list[str]:
    """The lock keys of the entities a scoring call's event touches."""
    if isinstance(event, ChunkScored):
        return [f"room:{event.stream_id}"] + ([f"creator:{event.creator_id}"] if event.creator_id else []) + (
            [f"merchant:{event.merchant_id}"] if event.merchant_id else [])
    if isinstance(event, ListingsScored | MerchantsScored):
        return [f"merchant:{i.merchant_id}" for i in event.items]
    raise TypeError(f"a scoring call does not send {type(event).__name__}")


@dataclass(frozen=True)
class CallWork:
    """A scoring call for enforcement: its event, its segments' hash (a chunk), its answer so
    far as a JSON object's text (what enforcement adds is spliced in: no re-encoding)."""

    event: Event
    segments_sha256: str | None
    answer_json: str
    records: tuple[Any, ...] = ()  # the call's decision records, written in its transaction (record_writer)

    def answer(self, added: dict[str, Any]) -> str:
        """The call's whole answer, as stored for a repeat."""
        if not added:
            return self.answer_json
        extra = json.dumps(added, ensure_ascii=False)
        body = self.answer_json.rstrip()
        return body[:-1] + ("," if body[:-1].strip() != "{" else "") + extra[1:]


@dataclass
class ChunkAnswer:
    """A call applied (``added``: what enforcement adds to its answer, a chunk's room and
    creator), or the first answer of a repeated chunk (``repeated``, whole)."""

    added: dict[str, Any] = field(default_factory=dict)
    repeated: dict[str, Any] | None = None
    outcome: Outcome | None = None
    answer: dict[str, Any] | None = None  # the whole answer (``EnforcementStore.record``)


@dataclass
class Clock:
    """The server clock (injectable: tests pass their own)."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now()


class EnforcementStore:
    """The live enforcement: events applied in transactions, and the reads of the API and console."""

    def __init__(self, engine: Engine, policy: PolicyDocument, clock: Callable[[], datetime] | None = None,
                 read_engine: Engine | None = None,
                 record_writer: Callable[[Connection, list[Any]], None] | None = None) -> None:
        """``engine`` writes (on SQLite an ``immediate`` one: ``database.engine.make_engine``);
        ``read_engine`` reads without taking the write lock (default: ``engine``);
        ``record_writer`` writes scoring calls' decision records in their transaction."""
        self.engine = engine
        self.record_writer = record_writer
        self.reads = read_engine or engine
        self.policy = policy
        self.enforcer = Enforcer(policy)
        self.clock = clock or Clock()

    # -- writing -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self, keys: list[str]) -> Iterator[Connection]:
        from database.engine import write_lock

        with write_lock(self.engine), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql" and keys:  # one statement, the keys locked in sorted order
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) AS k "
                                  "ORDER BY k"), {"keys": sorted(set(keys))})
            yield conn

    def _log(self, conn: Connection, event: Event, source_key: str | None = None,
             request_id: str | None = None) -> int:
        return conn.execute(insert(events_table).values(
            at=event.at, type=event_type(event), request_id=request_id, source_key=source_key,
            policy_version=self.enforcer.version, payload=event_payload(event))).inserted_primary_key[0]

    def _apply(self, conn: Connection, event: Event, source_key: str | None = None,
               request_id: str | None = None) -> tuple[Outcome, SqlState]:
        """Log one event and apply it (verdicts, appeals, ticks: one event a transaction)."""
        state = SqlState(conn, self.enforcer)
        state.event_id = self._log(conn, event, source_key, request_id)
        outcome = self.enforcer.apply(event, state)
        state.flush()
        return outcome, state

    def record(self, event: Event, segments_sha256: str | None, fields: dict[str, Any] | None = None) -> ChunkAnswer:
        """Apply a scoring call's event in its own transaction; its answer is ``fields`` with
        what enforcement adds (stored with a chunk, so that a repeat of the chunk gets it
        again). ``EnforcementConflict`` when the call contradicts the room."""
        fields = jsonable(fields or {})
        [result] = self.apply_calls([CallWork(event, segments_sha256, json.dumps(fields, ensure_ascii=False))])
        if isinstance(result, Exception):
            raise result
        if result.repeated is None:
            result.answer = {**fields, **result.added}
        return result

    def apply_calls(self, works: list[CallWork]) -> list[ChunkAnswer | EnforcementConflict]:
        """Apply scoring calls in one transaction (``EnforcementWriter``'s batches): the keys
        of every call locked first, in one sorted order; the entities read in a few queries;
        each call checked (a repeated chunk gets its first answer, a contradicting one its own
        ``EnforcementConflict``), logged (one insert for all), applied in order in memory and
        stamped with the time it is applied; what changed written at the end, with the calls'
        decision records."""
        keys = sorted({key for work in works for key in call_keys(work.event)})
        with self._transaction(keys) as conn:
            now = self.clock()
            events = [dataclasses.replace(work.event, at=now) for work in works]
            state = SqlState(conn, self.enforcer)
            chunks = [e for e in events if isinstance(e, ChunkScored)]
            state.prefetch({e.stream_id for e in chunks}, {e.creator_id for e in chunks if e.creator_id},
                           {e.merchant_id for e in chunks if e.merchant_id}
                           | {i.merchant_id for e in events if isinstance(e, ListingsScored | MerchantsScored)
                              for i in e.items})
            verdicts = self._screen(conn, state, events, works)
            applied = [i for i, v in enumerate(verdicts) if v is None]
            ids = self._log_many(conn, [events[i] for i in applied])
            results: list[Any] = list(verdicts)
            for i, event_id in zip(applied, ids, strict=True):
                results[i] = self._apply_one(state, event_id, events[i], works[i])
            for i, verdict in enumerate(verdicts):  # a repeat of a chunk applied earlier in this batch
                if isinstance(verdict, int):
                    first = state.call(events[verdict].request_id, events[verdict].stream_id)
                    results[i] = ChunkAnswer(repeated=json.loads(first.answer))
            state.flush()
            records = [r for i in applied for r in works[i].records]
            if records and self.record_writer is not None:
                self.record_writer(conn, records)
        return results

    def _screen(self, conn: Connection, state: SqlState, events: list[Event], works: list[CallWork]
                ) -> list[Any]:
        """Per call: None (apply it), a ``ChunkAnswer`` (a repeat of a stored chunk), the index
        of an earlier call of the batch it repeats, or its ``EnforcementConflict``."""
        asked = [(e.stream_id, e.chunk) for e in events if isinstance(e, ChunkScored) and e.chunk is not None]
        stored: dict[tuple[str, int], tuple[str | None, Any]] = {}
        if asked:
            t = calls_table
            # streams x chunks asked, on the (entity_type, entity_id, chunk) index; the pairs kept below
            rows = conn.execute(select(t.c.entity_id, t.c.chunk, t.c.segments_sha256, t.c.answer, t.c.merchant_id)
                                .where(t.c.entity_type == "stream", t.c.entity_id.in_(sorted({s for s, _ in asked})),
                                       t.c.chunk.in_(sorted({c for _, c in asked}))))
            pairs = set(asked)
            stored = {(r.entity_id, r.chunk): (r.segments_sha256, r.answer, r.merchant_id)  # answers as text
                      for r in rows if (r.entity_id, r.chunk) in pairs}
        hosts = {stream: room.creator_id for stream, room in
                 ((e.stream_id, state.room(e.stream_id)) for e in events if isinstance(e, ChunkScored)) if room}
        seen: dict[tuple[str, int], int] = {}
        out: list[Any] = []
        for index, (event, work) in enumerate(zip(events, works, strict=True)):
            if not isinstance(event, ChunkScored):
                out.append(None)
                continue
            sha, key = work.segments_sha256 or "", (event.stream_id, event.chunk)
            first = stored.get(key) if event.chunk is not None else None
            earlier = seen.get(key) if event.chunk is not None else None
            host = hosts.get(event.stream_id)
            if first is not None or earlier is not None:
                before = ((first[0], host, first[2]) if first is not None else
                          (works[earlier].segments_sha256 or "", host, events[earlier].merchant_id))
                conflict = repeat_conflict(event.stream_id, event.chunk, (sha, event.creator_id, event.merchant_id),
                                           before)
                if conflict is not None:
                    out.append(conflict)
                else:
                    out.append(ChunkAnswer(repeated=json.loads(first[1])) if first is not None else earlier)
            elif event.creator_id is not None and host is not None and host != event.creator_id:
                out.append(host_conflict(event.stream_id, host))
            else:
                out.append(None)
                if event.chunk is not None:
                    seen[key] = index
                hosts[event.stream_id] = host or event.creator_id
        return out

    def _log_many(self, conn: Connection, events: list[Event]) -> list[int]:
        """Log events in one insert; their ids in order."""
        if not events:
            return []
        rows = [{"at": e.at, "type": event_type(e), "request_id": getattr(e, "request_id", None), "source_key": None,
                 "policy_version": self.enforcer.version, "payload": event_payload(e)} for e in events]
        statement = insert(events_table).returning(events_table.c.id, sort_by_parameter_order=True)
        return list(conn.execute(statement, rows).scalars())

    def _apply_one(self, state: SqlState, event_id: int, event: Event, work: CallWork) -> ChunkAnswer:
        state.event_id = event_id
        outcome = self.enforcer.apply(event, state)
        added = jsonable(outcome.answer_fields())
        if not isinstance(event, ChunkScored):
            return ChunkAnswer(added=added, outcome=outcome)
        call = state.call(event.request_id, event.stream_id)
        assert call is not None
        call.answer, call.segments_sha256 = work.answer(added), work.segments_sha256 or ""
        return ChunkAnswer(added=added, outcome=outcome)

    def record_chunk(self, event: ChunkScored, segments_sha256: str, fields: dict[str, Any] | None = None
                     ) -> ChunkAnswer:
        """Apply a stream call and store its answer in one transaction."""
        return self.record(event, segments_sha256, fields)

    def record_listings(self, event: ListingsScored) -> Outcome:
        """Apply a listing call's listings at review or block."""
        outcome = self.record(event, None).outcome
        assert outcome is not None
        return outcome

    def record_merchants(self, event: MerchantsScored) -> Outcome:
        """Apply a merchant call's decisions (a ``block`` puts the merchant on a hold)."""
        outcome = self.record(event, None).outcome
        assert outcome is not None
        return outcome

    def record_verdict(self, event: VerdictGiven) -> Outcome | None:
        """Apply a stored verdict once (None: applied before)."""
        with self.reads.connect() as conn:
            call = SqlState(conn, self.enforcer).call(event.request_id, event.entity_id)
        keys = [f"{event.entity_type}:{event.entity_id}"]
        if call is not None:
            keys += [f"room:{call.entity_id}"] if call.entity_type == "stream" else []
            keys += [f"creator:{call.creator_id}"] if call.creator_id else []
            keys += [f"merchant:{call.merchant_id}"] if call.merchant_id else []
        key = f"feedback:{event.feedback_id}"
        try:
            with self._transaction(keys) as conn:
                if conn.execute(select(events_table.c.id).where(events_table.c.source_key == key)).first():
                    return None
                event = self._as_superseded(conn, event)
                return self._apply(conn, event, key, event.request_id)[0]
        except IntegrityError:
            return None

    def _as_superseded(self, conn: Connection, event: VerdictGiven) -> VerdictGiven:
        """``event`` marked with what later verdicts on its item, applied before it, took over:
        verdicts are stored, then applied, so two given at once on two workers can be applied out
        of order, and the later one is what enforcement acts on. A later verdict on the whole call,
        or on the event's own segment, supersedes it (``superseded_by``); later verdicts on some
        segments take those out of an earlier whole-call verdict (``skip_segments``)."""
        # A listing's verdict acts on the listing, whichever of its calls it names.
        call = SqlState(conn, self.enforcer).call(event.request_id, event.entity_id)
        requests = (_listing_requests(event.entity_id, call.merchant_id if call else None)
                    if event.entity_type == "listing" else [event.request_id])
        rows = conn.execute(select(events_table.c.type, events_table.c.payload).where(
            events_table.c.request_id.in_(requests), *_feedback_keys(conn)))
        later = [p for t, p in rows if t == event_type(event) and p["feedback_id"] > event.feedback_id
                 and (p["entity_type"], p["entity_id"]) == (event.entity_type, event.entity_id)]
        covering = [p["feedback_id"] for p in later if p.get("segment_index") in (None, event.segment_index)]
        if covering:
            return dataclasses.replace(event, superseded_by=max(covering))
        if event.segment_index is None:
            return dataclasses.replace(event, skip_segments=tuple(sorted({p["segment_index"] for p in later})))
        return event

    def applied_feedback_ids(self, since_id: int = 0) -> set[int]:
        """The feedback ids whose verdicts are applied (from ``since_id`` on)."""
        with self.reads.connect() as conn:
            keys = conn.execute(select(events_table.c.source_key).where(*_feedback_keys(conn))).scalars()
            return {int(k.split(":", 1)[1]) for k in keys if int(k.split(":", 1)[1]) >= since_id}

    def file_appeal(self, ledger_entry_id: int, appellant: str, reason: str, filed_by: str | None = None) -> Appeal:
        """File an appeal of a charge (``filed_by``: the calling token's name, who may not decide
        it); ``EnforcementNotFound`` / ``EnforcementConflict`` naming ``ledger_entry_id`` when
        there is no such entry, it is not an appealable charge, it was appealed already or its
        deadline has passed."""
        now = self.clock()
        with self.reads.connect() as conn:
            entry = SqlState(conn, self.enforcer).entry(ledger_entry_id)
        if entry is None:
            raise EnforcementNotFound(f"no ledger entry {ledger_entry_id}", "ledger_entry_id")
        with self._transaction([f"{entry.entity_type}:{entry.entity_id}"]) as conn:
            state = SqlState(conn, self.enforcer)
            entries = state.entries(entry.entity_type, entry.entity_id)
            appeals = self._appeals_by_entry(conn, entry.entity_type, entry.entity_id)
            if entry.kind != "charge":
                raise EnforcementConflict(f"ledger entry {ledger_entry_id} is a {entry.kind}, not a charge: only "
                                          "charges can be appealed", "ledger_entry_id")
            if ledger_entry_id in appeals:
                raise EnforcementConflict(f"ledger entry {ledger_entry_id} was appealed already (appeal "
                                          f"{appeals[ledger_entry_id].id}, {appeals[ledger_entry_id].status}); one "
                                          "appeal per entry", "ledger_entry_id")
            status = charge_status(entry, entries, appeals, now, self.policy.appeals.deadline_days)
            if status in ("reversed", "expired"):
                raise EnforcementConflict(f"ledger entry {ledger_entry_id} is {status}: nothing to appeal",
                                          "ledger_entry_id")
            deadline = entry.at.timestamp() + self.policy.appeals.deadline_days * 86_400
            if now.timestamp() > deadline:
                raise EnforcementConflict(f"the appeal deadline of ledger entry {ledger_entry_id} passed "
                                          f"{datetime.fromtimestamp(deadline, UTC):%Y-%m-%d %H:%M} UTC "
                                          f"({self.policy.appeals.deadline_days:g} days, appeals.deadline_days)",
                                          "ledger_entry_id")
            appeal_id = conn.execute(insert(appeals_table).values(
                ledger_entry_id=ledger_entry_id, entity_type=entry.entity_type, entity_id=entry.entity_id,
                appellant=appellant, reason=reason, filed_at=now, status="pending", note="",
                filed_by=filed_by)).inserted_primary_key[0]
            self._apply(conn, AppealFiled(now, appeal_id, ledger_entry_id, appellant, reason, filed_by,
                                          entry.request_id, entry.segment_index, entry.listing_id),
                        f"appeal:{ledger_entry_id}")
            return Appeal(appeal_id, ledger_entry_id, entry.entity_type, entry.entity_id, appellant, reason, now,
                          filed_by=filed_by)

    @staticmethod
    def _appeals_by_entry(conn: Connection, entity_type: str, entity_id: str) -> dict[int, Appeal]:
        t = appeals_table
        rows = conn.execute(select(t).where(t.c.entity_type == entity_type, t.c.entity_id == entity_id)).mappings()
        return {r["ledger_entry_id"]: appeal_from_row(r) for r in rows}

    def decide_appeal(self, appeal_id: int, outcome: str, reviewer: str, note: str = "") -> Outcome:
        """Uphold or overturn a pending appeal. Four eyes: ``EnforcementForbidden`` naming
        ``reviewer`` when the reviewer filed the appeal or gave a verdict on the item charged."""
        if outcome not in ("upheld", "overturned"):
            raise EnforcementConflict("an appeal is upheld or overturned", "outcome")
        with self.reads.connect() as conn:
            state = SqlState(conn, self.enforcer)
            appeal = state.appeal(appeal_id)
            entry = state.entry(appeal.ledger_entry_id) if appeal else None
            call = state.call(entry.request_id) if entry and entry.request_id else None
        if appeal is None or entry is None:
            raise EnforcementNotFound(f"no appeal {appeal_id}", "appeal_id")
        keys = [f"{entry.entity_type}:{entry.entity_id}"] + ([f"room:{entry.stream_id}"] if entry.stream_id else [])
        if call is not None:
            keys += [f"creator:{call.creator_id}"] if call.creator_id else []
            keys += [f"merchant:{call.merchant_id}"] if call.merchant_id else []
        with self._transaction(keys) as conn:
            current = SqlState(conn, self.enforcer).appeal(appeal_id)
            if current is None or current.status != "pending":
                raise EnforcementConflict(f"appeal {appeal_id} was decided already "
                                          f"({current.status if current else 'unknown'})", "appeal_id")
            # Checked in the transaction: a verdict another worker applies meanwhile counts too.
            if (barred := self._four_eyes(conn, current, entry, reviewer)) is not None:
                raise EnforcementForbidden(barred, "reviewer")
            event = AppealDecided(self.clock(), appeal_id, outcome, reviewer, note)
            return self._apply(conn, event, f"appeal_decision:{appeal_id}")[0]

    def _four_eyes(self, conn: Connection, appeal: Appeal, entry: Entry, reviewer: str) -> str | None:
        """Why ``reviewer`` may not decide ``appeal`` (of the charge ``entry``), or None: an
        appeal is decided by someone who neither filed it nor judged the item charged."""
        if appeal.filed_by is not None and principal_key(appeal.filed_by) == principal_key(reviewer):
            return f"appeal {appeal.id} was filed by {reviewer!r}: another reviewer decides it (four eyes)"
        if self._judged_by(conn, entry, reviewer):
            return (f"the charge of appeal {appeal.id} stands on a verdict {reviewer!r} gave: another reviewer "
                    "decides it (four eyes)")
        return None

    def _judged_by(self, conn: Connection, entry: Entry, reviewer: str) -> bool:
        """Whether ``reviewer`` gave a verdict on the item ``entry`` charges: its listing (through
        any of the listing's calls: a verdict confirms every charge of it), or its segment of the
        call (a verdict on the whole call included; on any segment of the call for a review the
        burst rule blocked on, which stands or falls with the call's other burst reviews)."""
        if entry.listing_id is not None:
            merchant = entry.entity_id if entry.entity_type == "merchant" else None
            requests = _listing_requests(entry.listing_id, merchant)
        elif entry.request_id is not None:
            requests = [entry.request_id]
        else:
            return False
        t = room_segments_table
        burst = entry.stream_id is not None and bool(conn.execute(select(t.c.id).where(
            t.c.stream_id == entry.stream_id, t.c.request_id == entry.request_id,
            t.c.segment_index == entry.segment_index, t.c.rule_blocked.is_(True)).limit(1)).first())
        rows = conn.execute(select(events_table.c.payload).where(
            events_table.c.request_id.in_(requests), *_feedback_keys(conn))).scalars()
        for payload in rows:
            if principal_key(payload["reviewer"]) != principal_key(reviewer):  # one person, however cased
                continue
            if entry.listing_id is not None:
                if payload["entity_type"] == "listing" and payload["entity_id"] == entry.listing_id:
                    return True
            elif burst or payload.get("segment_index") in (None, entry.segment_index):
                return True
        return False

    def tick(self, now: datetime | None = None) -> Outcome | None:
        """Apply what fell due by ``now`` (recoveries, expiries, penalty ends); None when nothing was due."""
        now = now or self.clock()
        with self.reads.connect() as conn:
            due = SqlState(conn, self.enforcer).due(now)
        if not due:
            return None
        with self._transaction([f"{kind}:{entity}" for kind, entity in due]) as conn:
            if not SqlState(conn, self.enforcer).due(now):
                return None  # another worker applied them meanwhile
            return self._apply(conn, Tick(now))[0]

    # -- reading -----------------------------------------------------------------------

    def holds(self, merchant_ids: set[str], now: datetime | None = None) -> dict[str, MerchantHold]:
        """The merchants among ``merchant_ids`` (normalized ids) on a hold now."""
        if not merchant_ids:
            return {}
        now = now or self.clock()
        t = merchant_standing_table
        with self.reads.connect() as conn:
            rows = conn.execute(select(t.c.merchant_id).where(
                t.c.merchant_id.in_(sorted(merchant_ids)),
                (t.c.penalty.is_not(None)) | (t.c.model_hold.is_not(None)))).scalars().all()
            state = SqlState(conn, self.enforcer)
            found = {}
            for merchant_id in rows:
                merchant = state.merchant(merchant_id)
                hold = self.enforcer.merchant_hold(merchant, now) if merchant else None
                if hold is not None:
                    found[merchant_id] = hold
            return found

    def all_holds(self, now: datetime | None = None) -> dict[str, MerchantHold]:
        """Every merchant on a hold now (for batch jobs)."""
        t = merchant_standing_table
        with self.reads.connect() as conn:
            ids = set(conn.execute(select(t.c.merchant_id).where(
                (t.c.penalty.is_not(None)) | (t.c.model_hold.is_not(None)))).scalars())
        return self.holds(ids, now)

    def room_state(self, stream_id: str) -> dict[str, Any]:
        """``GET /v1/streams/{stream_id}``: the room's action, chunks, counts and action history."""
        with self.reads.connect() as conn:
            state = SqlState(conn, self.enforcer)
            room = state.room(stream_id)
            if room is None:
                raise EnforcementNotFound(f"no live room {stream_id!r}: it has not been scored", "stream_id")
            view = self.enforcer.room_view(state, room)
            # Chunks received: each distinct chunk number once, and each call without one on its
            # own (DESIGN.md), as the room counts them; a repeat is not applied, so not counted.
            return {"stream_id": stream_id, "creator_id": room.creator_id, "action": room.action,
                    "chunks": room.chunks, "segments": room.segments,
                    "counts": view["counts"], "window": view["window"], "reasons": view["reasons"],
                    "opened_at": room.opened_at, "updated_at": room.updated_at,
                    "actions": self._actions(conn, "room", stream_id)}

    def rooms(self, action: str | None = None, acted: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """Rooms, the latest call first (``action``: only those at it; ``acted``: not ``none``)."""
        t = rooms_table
        query = select(t).order_by(t.c.updated_at.desc()).limit(limit)
        if action:
            query = query.where(t.c.action == action)
        elif acted:
            query = query.where(t.c.action != "none")
        with self.reads.connect() as conn:
            return [SqlState._room(r).__dict__ for r in conn.execute(query).mappings()]

    def room_calls(self, stream_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """A room's calls in the order received, with each call's segment decisions."""
        t = calls_table
        with self.reads.connect() as conn:
            rows = conn.execute(select(t).where(t.c.entity_type == "stream", t.c.entity_id == stream_id)
                                .order_by(t.c.ordinal).limit(limit)).mappings().all()
            flagged = SqlState(conn, self.enforcer).flagged(stream_id)
        by_ordinal = {s.ordinal: s for s in flagged}
        out = []
        for row in rows:
            segments = [by_ordinal[o] for o in range(row["ordinal"], row["ordinal"] + row["segments"])
                        if o in by_ordinal]
            out.append({"request_id": row["request_id"], "chunk": row["chunk"], "at": _utc(row["at"]),
                        "ordinal": row["ordinal"], "segments": row["segments"],
                        "room_action": json.loads(row["answer"] or "{}").get("room", {}).get("action"),
                        "flagged": [{"segment_index": s.segment_index, "decision": s.decision,
                                     "categories": list(s.categories), "overturned": s.overturned,
                                     "confirmed": list(s.confirmed)} for s in segments]})
        return out

    def creator_state(self, creator_id: str) -> dict[str, Any]:
        """``GET /v1/creators/{creator_id}``: credit, penalty, ledger and appeals."""
        now = self.clock()
        with self.reads.connect() as conn:
            state = SqlState(conn, self.enforcer)
            creator = state.creator(creator_id)
            if creator is None:
                raise EnforcementNotFound(f"no creator {creator_id!r}: none of their streams was scored", "creator_id")
            view = self.enforcer.creator_view(creator, now)
            ledger, appeals = self._ledger(conn, state, "creator", creator_id, now)
            rooms = conn.execute(select(rooms_table.c.stream_id, rooms_table.c.action, rooms_table.c.opened_at)
                                 .where(rooms_table.c.creator_id == creator_id)
                                 .order_by(rooms_table.c.opened_at.desc()).limit(50)).mappings().all()
            return {**view, "cap": self.policy.creators.cap, "ledger": ledger, "appeals": appeals,
                    "actions": self._actions(conn, "creator", creator_id),
                    "rooms": [{"stream_id": r["stream_id"], "action": r["action"], "opened_at": _utc(r["opened_at"])}
                              for r in rooms]}

    def merchant_state(self, merchant_id: str) -> dict[str, Any]:
        """``GET /v1/merchants/{merchant_id}/standing``: points, penalty in force, ledger."""
        now = self.clock()
        with self.reads.connect() as conn:
            state = SqlState(conn, self.enforcer)
            merchant = state.merchant(merchant_id)
            if merchant is None:
                raise EnforcementNotFound(f"no standing for merchant {merchant_id!r}: no violation or hold has been "
                                          "recorded for it", "merchant_id")
            hold = self.enforcer.merchant_hold(merchant, now)
            ledger, appeals = self._ledger(conn, state, "merchant", merchant_id, now)
            return {"merchant_id": merchant_id, "points": merchant.points,
                    "penalty": None if hold is None else {"kind": hold.kind, "cause": hold.cause,
                                                          "until": hold.until, "raises_to": hold.raises_to,
                                                          "reason": hold.detail},
                    "ledger": ledger, "appeals": appeals, "actions": self._actions(conn, "merchant", merchant_id)}

    def _ledger(self, conn: Connection, state: SqlState, entity_type: str, entity_id: str, now: datetime
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        entries = state.entries(entity_type, entity_id)
        appeals = self._appeals_by_entry(conn, entity_type, entity_id)
        deadline = self.policy.appeals.deadline_days
        ledger = [{"id": e.id, "at": e.at, "points": e.points, "balance": e.balance, "kind": e.kind, "rule": e.rule,
                   "category": e.category, "policy_version": e.policy_version, "request_id": e.request_id,
                   "segment_index": e.segment_index, "stream_id": e.stream_id, "listing_id": e.listing_id,
                   "status": charge_status(e, entries, appeals, now, deadline),
                   "reverses": e.refers_to if e.kind == "reversal" else None, "refers_to": e.refers_to}
                  for e in entries]
        return ledger, [appeal_view(a) for a in sorted(appeals.values(), key=lambda a: a.id)]

    @staticmethod
    def _actions(conn: Connection, entity_type: str, entity_id: str, limit: int = 200) -> list[dict[str, Any]]:
        t = actions_table
        rows = conn.execute(select(t).where(t.c.entity_type == entity_type, t.c.entity_id == entity_id)
                            .order_by(t.c.id).limit(limit)).mappings()
        return [action_view(action_from_row(r)) for r in rows]

    def actions(self, after: int = 0, limit: int = 100) -> dict[str, Any]:
        """``GET /v1/enforcement/actions``: actions with id > ``after``, in id order."""
        t = actions_table
        with self.reads.connect() as conn:
            rows = conn.execute(select(t).where(t.c.id > after).order_by(t.c.id).limit(limit)).mappings().all()
        items = [action_view(action_from_row(r)) for r in rows]
        return {"actions": items, "next": items[-1]["id"] if items else after}

    def appeals(self, status: str | None = "pending", limit: int = 100, before: int | None = None
                ) -> list[dict[str, Any]]:
        """Appeals, newest first (the console's appeals queue)."""
        t = appeals_table
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if status:
            query = query.where(t.c.status == status)
        if before is not None:
            query = query.where(t.c.id < before)
        with self.reads.connect() as conn:
            rows = conn.execute(query).mappings().all()
            entries = {e.id: e for e in (SqlState(conn, self.enforcer).entry(r["ledger_entry_id"]) for r in rows) if e}
        return [{**appeal_view(appeal_from_row(r)), "entry": entries.get(r["ledger_entry_id"])} for r in rows]

    def appeal(self, appeal_id: int, reviewer: str | None = None) -> dict[str, Any]:
        """One appeal with the entry it is about; with ``reviewer``, ``barred``: why that
        reviewer may not decide it (four eyes), or None."""
        with self.reads.connect() as conn:
            state = SqlState(conn, self.enforcer)
            appeal = state.appeal(appeal_id)
            if appeal is None:
                raise EnforcementNotFound(f"no appeal {appeal_id}", "appeal_id")
            entry = state.entry(appeal.ledger_entry_id)
            barred = self._four_eyes(conn, appeal, entry, reviewer) if reviewer is not None and entry else None
            return {**appeal_view(appeal), "entry": entry, "barred": barred}

    def credit_history(self, creator_id: str) -> list[tuple[datetime, int]]:
        """(time, credit after) of each ledger entry of a creator, for the console's chart."""
        t = ledger_table
        with self.reads.connect() as conn:
            rows = conn.execute(select(t.c.at, t.c.balance).where(t.c.entity_type == "creator",
                                                                  t.c.entity_id == creator_id).order_by(t.c.id)).all()
        return [(_utc(r.at), r.balance) for r in rows]

    def ledger_entries(self) -> list[Entry]:
        """Every ledger entry, in id order (the replay's comparison)."""
        with self.reads.connect() as conn:
            return [entry_from_row(r) for r in conn.execute(select(ledger_table).order_by(ledger_table.c.id))
                    .mappings()]

    def all_actions(self) -> list[Action]:
        """Every action, in id order (the replay's comparison)."""
        with self.reads.connect() as conn:
            return [action_from_row(r) for r in conn.execute(select(actions_table).order_by(actions_table.c.id))
                    .mappings()]

    def events(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[tuple[int, Event]]:
        """The logged events in the order they were applied (``since`` <= at < ``until``)."""
        from policy.state import event_from_payload

        t = events_table
        last = 0
        while True:
            query = select(t.c.id, t.c.type, t.c.payload).where(t.c.id > last).order_by(t.c.id).limit(5000)
            conditions = []
            if since is not None:
                conditions.append(t.c.at >= since)
            if until is not None:
                conditions.append(t.c.at < until)
            if conditions:
                query = query.where(and_(*conditions))
            with self.reads.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
                yield row.id, event_from_payload(row.type, payload)
            last = rows[-1].id


def action_view(action: Action) -> dict[str, Any]:
    """An action as the feed and the reads show it."""
    return {"id": action.id, "at": action.at, "entity_type": action.entity_type, "entity_id": action.entity_id,
            "from": action.before, "to": action.after, "cause": action.cause, "detail": action.detail,
            "ledger_entry_id": action.ledger_entry_id, "policy_version": action.policy_version,
            "triggers": action.triggers}


def appeal_view(appeal: Appeal) -> dict[str, Any]:
    """An appeal as the reads show it."""
    return {"id": appeal.id, "ledger_entry_id": appeal.ledger_entry_id, "entity_type": appeal.entity_type,
            "entity_id": appeal.entity_id, "appellant": appeal.appellant, "reason": appeal.reason,
            "filed_at": appeal.filed_at, "status": appeal.status, "decided_by": appeal.decided_by,
            "decided_at": appeal.decided_at, "note": appeal.note, "filed_by": appeal.filed_by}
