"""How a model kind answers: a runtime's scores, the records and the standing merchant
decisions in; the API's results, the decision-log items and the batch rows out.

Each kind's ``KindAnswers`` (``listing.py``, ``merchant.py``, ``stream.py``, or a plug-in's
own) sits in its line of the kinds table (``kinds/__init__.py``). The HTTP service and
batch jobs (``batch/``) call only this interface, so both decide exactly alike (policy order
in ``policy/calls.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from common.decisions import Decision
from common.errors import error_body
from common.words import counted
from features.ids import merchant_key
from features.reasons import Reason
from kinds.runtime import ModelRuntime, Scores
from policy.calls import MerchantHold, merchant_rule
from policy.document import CallRules
from policy.state import Event

if TYPE_CHECKING:
    import pandas as pd

MAX_REASONS = 3
MAX_BATCH = 1000  # records (streams: segments) per call
# The holds in force among normalized merchant ids (features/ids.py: merchant_key), by that id.
HoldLookup = Callable[[set[str]], dict[str, MerchantHold]]
LINK_COLUMNS = ["src", "dst", "link_type"]  # an edge list between entities (files, exports)
# Result columns every kind's batch output file starts with (a kind adds its own: ``batch_columns``).
BATCH_COLUMNS = ["id", "decision", "score", "reasons", "model"]


class ReasonOut(BaseModel):
    """Why a decision was taken: a stable code and a readable detail."""

    code: str
    detail: str


def no_holds(_merchant_ids: set[str]) -> dict[str, MerchantHold]:
    """The lookup of a job run without merchant standing."""
    return {}


def reasons_out(rule_reasons: Sequence[Reason], model_reasons: Sequence[Reason]) -> list[ReasonOut]:
    """Rule reasons first, then the model's, at most ``MAX_REASONS``."""
    return [ReasonOut(code=r.code, detail=r.detail) for r in [*rule_reasons, *model_reasons]][:MAX_REASONS]


def apply_merchant_rule(merchant_ids: Sequence[str | None], decisions: Sequence[Decision],
                        holds: HoldLookup) -> tuple[list[Decision], list[list[Reason]]]:
    """Policy step 3 for each item: raised decisions and the rule's reasons. Merchant ids are
    compared normalized (``features/ids.py``); a reason names the id as the item gave it."""
    keys = [merchant_key(m) if isinstance(m, str) else "" for m in merchant_ids]
    standing = holds({k for k in keys if k})
    raised, reasons = [], []
    for merchant_id, key, decision in zip(merchant_ids, keys, decisions, strict=True):
        found = standing.get(key) if key else None
        if found is not None:
            found = dataclasses.replace(found, merchant_id=merchant_id)
        new_decision, reason = merchant_rule(decision, found)
        raised.append(new_decision)
        reasons.append([reason] if reason else [])
    return raised, reasons


@dataclass(frozen=True)
class LogItem:
    """One decision-log record of an answer (the service adds the request id)."""

    entity_id: str
    decision: Decision
    score: float
    model: str
    reasons: list[ReasonOut]
    inputs: dict[str, Any]


@dataclass(frozen=True)
class CallKey:
    """What makes a call repeatable: a repeat of the same key and segments gets the first answer."""

    stream_id: str
    chunk: int | None
    creator_id: str | None
    segments_sha256: str


@dataclass
class Answer:
    """One call's answer: the response's fields (besides ``request_id``), what the decision
    log records, and the batch rows of the same answer."""

    fields: dict[str, Any]
    log: list[LogItem]
    batch_rows: list[dict[str, Any]]
    rule_blocked: tuple[int, ...] = ()  # records a call rule blocked on (the stream burst): charged as blocks
    model_decisions: tuple[str, ...] = ()  # per record, before the merchant rule raised it (what costs points)


@dataclass(frozen=True)
class Endpoint:
    """A kind's scoring endpoint as the service generates it from the kinds table: its API
    name, the typed request body (``request``: one field, ``records_field``, holds the records;
    the others are the call's request fields, given to the answer), the typed response and its
    description. The OpenAPI document shows these types as they are."""

    name: str
    request: type[BaseModel]
    records_field: str
    response: type[BaseModel]
    description: str

    @property
    def request_fields(self) -> tuple[str, ...]:
        """The body's fields besides the records."""
        return tuple(f for f in self.request.model_fields if f != self.records_field)


class Refused(Exception):
    """The call cannot be answered as sent: ``status`` and the JSON body naming the field."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def result_row(item_id: str, result: Any) -> dict[str, Any]:
    """A batch row of a per-record result (decision, score, reasons, model)."""
    import json

    return {"id": item_id, "decision": result.decision, "score": result.score,
            "reasons": json.dumps([r.model_dump() for r in result.reasons], ensure_ascii=False),
            "model": result.model}


Record = TypeVar("Record", bound=BaseModel)


class KindAnswers(Generic[Record]):
    """A kind's answer code. The defaults fit a kind that scores independent records, each
    named by ``id_field``, and answers one result per record; a kind overrides ``answer``.

    - ``request_fields``: fields of a call besides its records (a stream's ``stream_id``);
      a batch file carries them as columns.
    - ``group_column``: a batch file's column that groups records into one call (streams).
    - ``micro_batched``: concurrent calls share the runtime's batches (``score_groups``).

    What only some kinds have is a hook each declares, never a flag shared code tests:

    - ``file_columns``: columns a batch file may carry besides the records' fields and the
      request fields (streams: ``segment_index``);
    - ``order_column``: the file column that orders a group's records in its call (streams:
      ``segment_index``; a group that gives a place twice is rejected), else file order;
    - ``result_columns``: columns a batch output row has besides ``BATCH_COLUMNS`` (streams:
      each segment's labels, spans and decision);
    - ``links_field``: the record's field that links it to other entities (merchants: ``links``);
      files and feedback exports carry those links as an edge list (``LINK_COLUMNS``), turned
      into the field by ``links_by_entity`` and out of it by ``link_edges``.

    Enforcement over time (``policy/``) is reached through hooks, each a no-op by default:
    ``call_key`` (a call that may be repeated: its first answer is given again),
    ``enforcement_event`` (what the call tells enforcement; what enforcement adds to the
    answer is the engine's: a chunk's room and creator) and ``repeated_log`` (a repeated
    call's decision-log items).
    """

    request_fields: tuple[str, ...] = ()
    group_column: str | None = None
    grouped_as: tuple[str, str] = ("record", "group")  # what a grouped record and its group are called
    micro_batched: bool = False
    file_columns: tuple[str, ...] = ()
    order_column: str | None = None
    result_columns: tuple[str, ...] = ()
    links_field: str | None = None

    def __init__(self, id_field: str, id_key: Callable[[str], str] = str) -> None:
        self.id_field, self.id_key = id_field, id_key

    @property
    def batch_columns(self) -> list[str]:
        """The columns of this kind's batch output file."""
        return [*BATCH_COLUMNS, *self.result_columns]

    def refusal(self, records: Sequence[Record], field_name: str) -> Refused | None:
        """400 naming every index of an id given more than once in one call (compared as
        ``id_key`` sees them): one call scores each entity once."""
        ids = [getattr(r, self.id_field, None) for r in records]
        positions: dict[str, list[int]] = {}
        for index, value in enumerate(ids):
            if value is not None:
                positions.setdefault(self.id_key(value), []).append(index)
        repeated = [indexes for indexes in positions.values() if len(indexes) > 1]
        if not repeated:
            return None
        detail = [{"loc": [field_name, i, self.id_field], "type": "duplicate",
                   "msg": f"{self.id_field} {ids[i]!r} is given at indexes {indexes}: send each "
                          f"{self.id_field[:-3]} once per call"}
                  for indexes in repeated for i in indexes]
        message = f"{counted(len(repeated), self.id_field)} given more than once"
        return Refused(400, {**error_body(400, [field_name], message, "duplicate"), "detail": detail})

    def work_refusal(self, records: Sequence[Record]) -> Refused | None:
        """A call too large to work on (checked once the model is loaded); None: none here."""
        return None

    def answer(self, model: ModelRuntime, records: Sequence[Record], request: dict[str, Any],
               holds: HoldLookup, scores: Scores | None = None, rules: CallRules | None = None) -> Answer:
        """The answer to one call (``scores``: the model's scores of ``records`` when already
        computed, by a micro-batcher or a catalogue-wide batch job, else scored here;
        ``rules``: the policy's per-call rules, the shipped defaults when None). A kind
        implements ``answer_scores`` (or overrides this)."""
        return self.answer_scores(model, records, request, holds, scores if scores is not None else model.score(records),
                                  rules if rules is not None else CallRules())

    def answer_scores(self, model: ModelRuntime, records: Sequence[Record], request: dict[str, Any],
                      holds: HoldLookup, scores: Scores, rules: CallRules) -> Answer:
        """The answer to one call from the model's scores of its records."""
        raise NotImplementedError

    def link_edges(self, record: dict[str, Any]) -> list[dict[str, str]]:
        """The edges (``LINK_COLUMNS``) of a record's ``links_field`` (none by default)."""
        return []

    def links_by_entity(self, edges: pd.DataFrame | None) -> dict[str, list[dict[str, str]]]:
        """Each entity's ``links_field`` value from an edge list (none by default)."""
        return {}

    def call_key(self, records: Sequence[Record], request: dict[str, Any]) -> CallKey | None:
        """The key under which a call may be repeated (None: every call counts on its own)."""
        return None

    def enforcement_event(self, answer: Answer, records: Sequence[Record], request: dict[str, Any],
                          request_id: str, at: datetime) -> Event | None:
        """What this call tells enforcement (None: nothing)."""
        return None

    def repeated_log(self, records: Sequence[Record], request: dict[str, Any], first: dict[str, Any]
                     ) -> list[LogItem]:
        """The decision-log items of a repeated call's first answer ``first`` (logged again
        under the first request id: a record already stored is not stored twice)."""
        return []


def per_record_answer(results: Sequence[Any], records: Sequence[BaseModel], id_field: str,
                      log_id: Callable[[str], str] = str) -> Answer:
    """The answer of a kind with one result per record: ``results`` in the response, one log
    item and one batch row per record."""
    log = [LogItem(log_id(getattr(r, id_field)), r.decision, r.score, r.model, r.reasons,
                   record.model_dump(exclude_none=True)) for r, record in zip(results, records, strict=True)]
    rows = [result_row(getattr(r, id_field), r) for r in results]
    return Answer({"results": list(results)}, log, rows)
