"""Enforcement in the database: each event is one transaction that logs the event, runs the
engine over the rows it touches and writes what changed, before the caller is answered.

Concurrency. SQLite: every enforcement transaction begins ``IMMEDIATE`` (one writer at a
time, across workers). PostgreSQL: the transaction first locks the keys of the room, creator
and merchant it touches (rows of ``enforcement_locks``, in sorted order: no deadlock), so two
chunks of one room, or of two rooms of one creator, are applied one after the other while
other rooms go on in parallel; an event takes its id only once it holds its locks, so the
event ids of any two events that share an entity are in the order they were applied, which
is the order a replay applies them in. Actions take a transaction-scoped advisory lock before
their insert, so the feed's ids are committed in order: a reader paging by id never skips an
action that commits later with a lower id.
"""

from __future__ import annotations

import copy
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
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from features.errors import ShopGuardError
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
    Column("answer", JSON, nullable=True),
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
)
locks_table = Table("enforcement_locks", metadata, Column("key", String(160), primary_key=True))
FEED_LOCK = 72_610_026  # pg_advisory_xact_lock key of the action feed
NEVER_DUE = datetime(9999, 1, 1, tzinfo=UTC)


class EnforcementConflict(ShopGuardError):
    """A call that contradicts what the room already holds (409 naming ``field``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class EnforcementNotFound(ShopGuardError):
    """An id enforcement does not know (404 naming ``field``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


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
            "basis": penalty.basis, "entry_id": penalty.entry_id}


def _penalty(value: dict[str, Any] | None) -> Penalty | None:
    if not value:
        return None
    return Penalty(value["kind"], datetime.fromisoformat(value["since"]), _time(value["until"]), value["level"],
                   value["basis"], value["entry_id"])


def _split(value: str) -> tuple[str, ...]:
    return tuple(c for c in value.split("|") if c)


class SqlState:
    """``State`` over one database transaction (``policy/state.py`` documents the interface)."""

    def __init__(self, conn: Connection, enforcer: Enforcer) -> None:
        self.conn, self.enforcer = conn, enforcer
        self.event_id: int | None = None
        self.touched: dict[str, set[str]] = {"creator": set(), "merchant": set()}
        self._feed_locked = False
        # Read once per transaction (its locks keep them current): an entity's ledger, a room's segments.
        self._entries: dict[tuple[str, str], list[Entry]] = {}
        self._flagged: dict[str, dict[int, Flagged]] = {}
        self._read_from: dict[str, int] = {}  # a room's segments from this ordinal on are in _flagged
        self._loaded: dict[tuple[str, str], Any] = {}  # creators and merchants as read: unchanged ones are not written

    # rooms
    def room(self, stream_id: str) -> Room | None:
        row = self.conn.execute(select(rooms_table).where(rooms_table.c.stream_id == stream_id)).mappings().first()
        room = self._room(row) if row else None
        # A room's flagged segments all lie below its segment count: none is stored from there on.
        if stream_id not in self._read_from:
            self._read_from[stream_id] = room.segments if room else 0
            self._flagged.setdefault(stream_id, {})
        return room

    @staticmethod
    def _room(row: Any) -> Room:
        return Room(row["stream_id"], _utc(row["opened_at"]), row["creator_id"], row["action"], row["chunks"],
                    row["segments"], row["blocks"], row["reviews"], bool(row["penalty_stop"]), list(row["reasons"]),
                    _utc(row["updated_at"]))

    def put_room(self, room: Room) -> None:
        values = {"creator_id": room.creator_id, "opened_at": room.opened_at, "updated_at": room.updated_at,
                  "action": room.action, "chunks": room.chunks, "segments": room.segments, "blocks": room.blocks,
                  "reviews": room.reviews, "penalty_stop": room.penalty_stop, "reasons": room.reasons}
        done = self.conn.execute(update(rooms_table).where(rooms_table.c.stream_id == room.stream_id).values(**values))
        if done.rowcount == 0:
            self.conn.execute(insert(rooms_table).values(stream_id=room.stream_id, **values))

    def rooms_of_creator(self, creator_id: str) -> list[Room]:
        rows = self.conn.execute(select(rooms_table).where(rooms_table.c.creator_id == creator_id,
                                                           rooms_table.c.penalty_stop.is_(True))).mappings()
        return [self._room(r) for r in rows]

    def flagged(self, stream_id: str, from_ordinal: int = 0) -> list[Flagged]:
        from_ordinal = max(from_ordinal, 0)
        known = self._flagged.setdefault(stream_id, {})
        if from_ordinal < self._read_from.get(stream_id, 1 << 62):
            t = room_segments_table
            rows = self.conn.execute(select(t).where(t.c.stream_id == stream_id, t.c.ordinal >= from_ordinal,
                                                     t.c.ordinal < self._read_from.get(stream_id, 1 << 62))
                                     .order_by(t.c.ordinal)).mappings()
            for r in rows:
                known[r["ordinal"]] = Flagged(r["stream_id"], r["ordinal"], r["request_id"], r["segment_index"],
                                              r["decision"], _split(r["categories"]), r["merchant_id"],
                                              bool(r["overturned"]), _split(r["confirmed"]))
            self._read_from[stream_id] = from_ordinal
        return [replace(s) for o, s in sorted(known.items()) if o >= from_ordinal]

    def put_flagged(self, segment: Flagged) -> None:
        t = room_segments_table
        values = {"request_id": segment.request_id, "segment_index": segment.segment_index,
                  "decision": segment.decision, "categories": "|".join(segment.categories),
                  "merchant_id": segment.merchant_id, "overturned": segment.overturned,
                  "confirmed": "|".join(segment.confirmed)}
        known = self._flagged.setdefault(segment.stream_id, {})
        absent = segment.ordinal not in known and segment.ordinal >= self._read_from.get(segment.stream_id, 1 << 62)
        if segment.ordinal in known or not absent:
            done = self.conn.execute(update(t).where(t.c.stream_id == segment.stream_id,
                                                     t.c.ordinal == segment.ordinal).values(**values))
            absent = done.rowcount == 0
        if absent:
            self.conn.execute(insert(t).values(stream_id=segment.stream_id, ordinal=segment.ordinal, **values))
        known[segment.ordinal] = replace(segment)

    # calls
    def call(self, request_id: str, entity_id: str | None = None) -> Call | None:
        t = calls_table
        query = select(t).where(t.c.request_id == request_id)
        if entity_id is not None:
            query = query.where(t.c.entity_id == entity_id)
        row = self.conn.execute(query.limit(1)).mappings().first()
        return call_from_row(row) if row else None

    def add_call(self, call: Call) -> None:
        self.conn.execute(insert(calls_table).values(
            request_id=call.request_id, entity_type=call.entity_type, entity_id=call.entity_id, at=call.at,
            merchant_id=call.merchant_id, creator_id=call.creator_id, chunk=call.chunk, decision=call.decision,
            ordinal=call.ordinal, segments=call.segments, segments_sha256=call.segments_sha256, answer=call.answer,
            event_id=self.event_id))

    # creators and merchants
    def creator(self, creator_id: str) -> Creator | None:
        row = self.conn.execute(select(creators_table).where(creators_table.c.creator_id == creator_id)
                                ).mappings().first()
        if row is None:
            return None
        creator = Creator(row["creator_id"], row["credit"], _utc(row["clock"]), _utc(row["created_at"]),
                          _penalty(row["penalty"]))
        self._loaded[("creator", creator_id)] = copy.deepcopy(creator)
        return creator

    def put_creator(self, creator: Creator) -> None:
        if self._loaded.get(("creator", creator.creator_id)) == creator:
            return  # unchanged: nothing to write
        self._loaded[("creator", creator.creator_id)] = copy.deepcopy(creator)
        self.touched["creator"].add(creator.creator_id)
        values = {"credit": creator.credit, "clock": creator.clock, "created_at": creator.created_at,
                  "penalty": _penalty_json(creator.penalty), "next_due_at": self.enforcer.next_creator_due(creator)}
        t = creators_table
        if self.conn.execute(update(t).where(t.c.creator_id == creator.creator_id).values(**values)).rowcount == 0:
            self.conn.execute(insert(t).values(creator_id=creator.creator_id, **values))

    def merchant(self, merchant_id: str) -> Merchant | None:
        t = merchant_standing_table
        row = self.conn.execute(select(t).where(t.c.merchant_id == merchant_id)).mappings().first()
        if row is None:
            return None
        hold = row["model_hold"]
        merchant = Merchant(row["merchant_id"], row["points"], _utc(row["created_at"]), _penalty(row["penalty"]),
                            ModelHold(datetime.fromisoformat(hold["since"]), hold["detail"]) if hold else None,
                            _utc(row["next_due_at"]) or NEVER_DUE)
        self._loaded[("merchant", merchant_id)] = copy.deepcopy(merchant)
        return merchant

    def put_merchant(self, merchant: Merchant) -> None:
        if self._loaded.get(("merchant", merchant.merchant_id)) == merchant:
            return  # unchanged: nothing to write
        self._loaded[("merchant", merchant.merchant_id)] = copy.deepcopy(merchant)
        self.touched["merchant"].add(merchant.merchant_id)
        hold = merchant.model_hold
        values = {"points": merchant.points, "created_at": merchant.created_at,
                  "penalty": _penalty_json(merchant.penalty),
                  "model_hold": {"since": hold.since.isoformat(), "detail": hold.detail} if hold else None,
                  "next_due_at": self.enforcer.next_merchant_due(self, merchant)}
        t = merchant_standing_table
        if self.conn.execute(update(t).where(t.c.merchant_id == merchant.merchant_id).values(**values)).rowcount == 0:
            self.conn.execute(insert(t).values(merchant_id=merchant.merchant_id, **values))

    # the ledger
    def entry(self, entry_id: int) -> Entry | None:
        row = self.conn.execute(select(ledger_table).where(ledger_table.c.id == entry_id)).mappings().first()
        return entry_from_row(row) if row else None

    def entries(self, entity_type: str, entity_id: str) -> list[Entry]:
        key = (entity_type, entity_id)
        if key not in self._entries:
            t = ledger_table
            rows = self.conn.execute(select(t).where(t.c.entity_type == entity_type, t.c.entity_id == entity_id)
                                     .order_by(t.c.id)).mappings()
            self._entries[key] = [entry_from_row(r) for r in rows]
        return list(self._entries[key])

    def add_entry(self, entry: Entry) -> Entry:
        values = {k: v for k, v in entry.__dict__.items() if k != "id"}
        values["event_id"] = self.event_id
        new_id = self.conn.execute(insert(ledger_table).values(**values)).inserted_primary_key[0]
        written = Entry(**{**values, "id": new_id})
        if (entry.entity_type, entry.entity_id) in self._entries:
            self._entries[(entry.entity_type, entry.entity_id)].append(written)
        return written

    def add_action(self, action: Action) -> Action:
        if not self._feed_locked and self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})
            self._feed_locked = True
        values = {k: v for k, v in action.__dict__.items() if k != "id"}
        values["event_id"] = self.event_id
        new_id = self.conn.execute(insert(actions_table).values(**values)).inserted_primary_key[0]
        return Action(**{**values, "id": new_id})

    # appeals
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


@dataclass
class ChunkAnswer:
    """A call applied (``outcome`` and the ``answer`` built from it), or the first answer to
    the same chunk (``repeated``)."""

    outcome: Outcome | None = None
    repeated: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None


@dataclass
class Clock:
    """The server clock (injectable: tests pass their own)."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now()


class EnforcementStore:
    """The live enforcement: events applied in transactions, and the reads of the API and console."""

    def __init__(self, engine: Engine, policy: PolicyDocument, clock: Callable[[], datetime] | None = None,
                 read_engine: Engine | None = None) -> None:
        """``engine`` writes (on SQLite an ``immediate`` one: ``model_registry.database.make_engine``);
        ``read_engine`` reads without taking the write lock (default: ``engine``)."""
        self.engine = engine
        self.reads = read_engine or engine
        self.policy = policy
        self.enforcer = Enforcer(policy)
        self.clock = clock or Clock()

    # -- writing -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self, keys: list[str]) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                for key in sorted(set(keys)):
                    conn.execute(text("INSERT INTO enforcement_locks (key) VALUES (:key) ON CONFLICT DO NOTHING"),
                                 {"key": key})
                    conn.execute(text("SELECT key FROM enforcement_locks WHERE key = :key FOR UPDATE"), {"key": key})
            yield conn

    def _log(self, conn: Connection, event: Event, source_key: str | None = None,
             request_id: str | None = None) -> int:
        return conn.execute(insert(events_table).values(
            at=event.at, type=event_type(event), request_id=request_id, source_key=source_key,
            policy_version=self.enforcer.version, payload=event_payload(event))).inserted_primary_key[0]

    def _apply(self, conn: Connection, event: Event, source_key: str | None = None,
               request_id: str | None = None) -> tuple[Outcome, SqlState]:
        state = SqlState(conn, self.enforcer)
        state.event_id = self._log(conn, event, source_key, request_id)
        return self.enforcer.apply(event, state), state

    def existing_chunk(self, stream_id: str, chunk: int | None, creator_id: str | None,
                       segments_sha256: str) -> dict[str, Any] | None:
        """Before scoring: the first answer to this chunk when it is a repeat, else None;
        ``EnforcementConflict`` when the chunk came with other segments or the room has
        another creator."""
        with self.reads.connect() as conn:
            return self._check_chunk(conn, stream_id, chunk, creator_id, segments_sha256)

    @staticmethod
    def _check_chunk(conn: Connection, stream_id: str, chunk: int | None, creator_id: str | None,
                     segments_sha256: str) -> dict[str, Any] | None:
        if chunk is not None:
            t = calls_table
            row = conn.execute(select(t.c.segments_sha256, t.c.answer).where(
                t.c.entity_type == "stream", t.c.entity_id == stream_id, t.c.chunk == chunk)).first()
            if row is not None:
                if row.segments_sha256 != segments_sha256:
                    raise EnforcementConflict(f"chunk {chunk} of stream {stream_id!r} was already scored with other "
                                              "segments; send each chunk once, or the same segments again",
                                              "chunk")
                return dict(row.answer)
        if creator_id is not None:
            room_creator = conn.execute(select(rooms_table.c.creator_id).where(
                rooms_table.c.stream_id == stream_id)).scalar()
            if room_creator is not None and room_creator != creator_id:
                raise EnforcementConflict(f"stream {stream_id!r} is hosted by creator {room_creator!r}; a stream's "
                                          "creator_id cannot change", "creator_id")
        return None

    def record(self, event: Event, segments_sha256: str | None,
               finish: Callable[[Outcome], dict[str, Any]]) -> ChunkAnswer:
        """Apply a scoring call's event; ``finish(outcome)`` builds its answer (stored with a
        chunk, so that a repeat of the chunk gets it again)."""
        if isinstance(event, ChunkScored):
            return self.record_chunk(event, segments_sha256 or "", finish)
        if isinstance(event, ListingsScored):
            outcome = self.record_listings(event)
        elif isinstance(event, MerchantsScored):
            outcome = self.record_merchants(event)
        else:
            raise TypeError(f"a scoring call does not send {type(event).__name__}")
        return ChunkAnswer(outcome=outcome, answer=finish(outcome))

    def record_chunk(self, event: ChunkScored, segments_sha256: str,
                     finish: Callable[[Outcome], dict[str, Any]]) -> ChunkAnswer:
        """Apply a stream call and store its answer (``finish(outcome)``) in one transaction."""
        keys = [f"room:{event.stream_id}"] + ([f"creator:{event.creator_id}"] if event.creator_id else []) + (
            [f"merchant:{event.merchant_id}"] if event.merchant_id else [])
        try:
            with self._transaction(keys) as conn:
                repeated = self._check_chunk(conn, event.stream_id, event.chunk, event.creator_id, segments_sha256)
                if repeated is not None:
                    return ChunkAnswer(repeated=repeated)
                outcome, state = self._apply(conn, event, request_id=event.request_id)
                answer = jsonable(finish(outcome))
                conn.execute(update(calls_table).where(calls_table.c.request_id == event.request_id,
                                                       calls_table.c.entity_id == event.stream_id)
                             .values(answer=answer, segments_sha256=segments_sha256))
                return ChunkAnswer(outcome=outcome, answer=answer)
        except IntegrityError:  # the same chunk committed by another worker meanwhile
            repeated = self.existing_chunk(event.stream_id, event.chunk, event.creator_id, segments_sha256)
            if repeated is None:
                raise
            return ChunkAnswer(repeated=repeated)

    def record_listings(self, event: ListingsScored) -> Outcome:
        """Apply a listing call's listings at review or block."""
        keys = [f"merchant:{i.merchant_id}" for i in event.items]
        with self._transaction(keys) as conn:
            return self._apply(conn, event, request_id=event.request_id)[0]

    def record_merchants(self, event: MerchantsScored) -> Outcome:
        """Apply a merchant call's decisions (a ``block`` puts the merchant on a hold)."""
        keys = [f"merchant:{i.merchant_id}" for i in event.items]
        with self._transaction(keys) as conn:
            return self._apply(conn, event, request_id=event.request_id)[0]

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
                return self._apply(conn, event, key, event.request_id)[0]
        except IntegrityError:
            return None

    def applied_feedback_ids(self, since_id: int = 0) -> set[int]:
        """The feedback ids whose verdicts are applied (from ``since_id`` on)."""
        with self.reads.connect() as conn:
            keys = conn.execute(select(events_table.c.source_key).where(
                events_table.c.type == "verdict", events_table.c.source_key.is_not(None))).scalars()
            return {int(k.split(":", 1)[1]) for k in keys if int(k.split(":", 1)[1]) >= since_id}

    def file_appeal(self, ledger_entry_id: int, appellant: str, reason: str) -> Appeal:
        """File an appeal of a charge; ``EnforcementNotFound`` / ``EnforcementConflict`` naming
        ``ledger_entry_id`` when there is no such entry, it is not an appealable charge, it was
        appealed already or its deadline has passed."""
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
                appellant=appellant, reason=reason, filed_at=now, status="pending", note="")).inserted_primary_key[0]
            self._apply(conn, AppealFiled(now, appeal_id, ledger_entry_id, appellant, reason),
                        f"appeal:{ledger_entry_id}")
            return Appeal(appeal_id, ledger_entry_id, entry.entity_type, entry.entity_id, appellant, reason, now)

    @staticmethod
    def _appeals_by_entry(conn: Connection, entity_type: str, entity_id: str) -> dict[int, Appeal]:
        t = appeals_table
        rows = conn.execute(select(t).where(t.c.entity_type == entity_type, t.c.entity_id == entity_id)).mappings()
        return {r["ledger_entry_id"]: appeal_from_row(r) for r in rows}

    def decide_appeal(self, appeal_id: int, outcome: str, reviewer: str, note: str = "") -> Outcome:
        """Uphold or overturn a pending appeal."""
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
            event = AppealDecided(self.clock(), appeal_id, outcome, reviewer, note)
            return self._apply(conn, event, f"appeal_decision:{appeal_id}")[0]

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
            chunks = conn.execute(select(func.count(func.distinct(calls_table.c.chunk))).where(
                calls_table.c.entity_type == "stream", calls_table.c.entity_id == stream_id)).scalar()
            return {"stream_id": stream_id, "creator_id": room.creator_id, "action": room.action,
                    "chunks": int(chunks or 0), "calls": room.chunks, "segments": room.segments,
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
                        "room_action": (row["answer"] or {}).get("room", {}).get("action"),
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

    def appeal(self, appeal_id: int) -> dict[str, Any]:
        """One appeal with the entry it is about."""
        with self.reads.connect() as conn:
            state = SqlState(conn, self.enforcer)
            appeal = state.appeal(appeal_id)
            if appeal is None:
                raise EnforcementNotFound(f"no appeal {appeal_id}", "appeal_id")
            return {**appeal_view(appeal), "entry": state.entry(appeal.ledger_entry_id)}

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
            "decided_at": appeal.decided_at, "note": appeal.note}
