"""Reviewer feedback: outcomes stored against logged decisions, and their export as training
files that ``shopguard train`` accepts.

A feedback row points at a logged decision of one entity type (``listing``, ``merchant`` or
``stream``: a listing, a merchant and a stream may share an id, so the verdict must say which
it is about), by ``request_id`` or as the entity's latest decision of that type, optionally of
one model version; its ``label`` is what the reviewer found:

- listings: ``inferior`` or ``ok``; merchants: ``suspicious`` or ``ok``;
- streams: ``ok`` (every segment clean, or the segment given by ``segment_index``) or the
  ``|``-joined categories a segment truly has (``segment_index`` required).

The export joins each entity's latest feedback with the input that was scored, as logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)

from common.errors import ShopGuardError
from common.words import counted
from kinds import (
    CLEAN_FEEDBACK_LABEL,
    MODEL_KINDS,
    ModelKind,
    kind_of_entity,
    model_kind,
)
from kinds.answers import LINK_COLUMNS
from serving.decision_queries import query_decisions

metadata = MetaData()

feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("entity_type", String(16), nullable=False, index=True),
    Column("entity_id", String(128), nullable=False, index=True),
    Column("request_id", String(64), nullable=False),
    Column("segment_index", Integer, nullable=True),
    Column("model", String(160), nullable=False),
    Column("label", String(400), nullable=False),
    Column("reviewer", String(128), nullable=False),
    Column("note", Text, nullable=False),
    Index("ix_feedback_type_entity_request", "entity_type", "entity_id", "request_id"),  # migration 0007
)

CLEAN_LABEL = CLEAN_FEEDBACK_LABEL


class FeedbackError(ShopGuardError):
    """Feedback that cannot be stored: ``field`` names the input at fault, ``status`` the
    HTTP status it maps to."""

    def __init__(self, message: str, field: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


ENTITY_TYPES: tuple[str, ...] = tuple(kind.entity_type for kind in MODEL_KINDS.values())


@dataclass(frozen=True)
class Feedback:
    """One reviewer outcome, as received: about ``entity_type``'s entity ``entity_id``
    (and, when ``model_version`` is given, that version's decision)."""

    entity_id: str
    label: str
    reviewer: str
    entity_type: str
    note: str = ""
    request_id: str | None = None
    segment_index: int | None = None
    model_version: str | None = None


def feedback_target(entity_type: str | None, model: str | None) -> tuple[str, str | None]:
    """The entity type a verdict is about and the model version it names (if any), from the
    request's ``entity_type`` and ``model`` (``NAME`` or ``NAME:VERSION``); ``FeedbackError``
    (400) naming the field when neither is given, the model is unknown or the two disagree."""
    if model is None:
        if entity_type is None:
            raise FeedbackError(
                f"name what the verdict is about: entity_type {' / '.join(ENTITY_TYPES)} (or model: "
                f"{' / '.join(MODEL_KINDS)}). An entity_id alone is ambiguous: a listing, a merchant and a stream "
                "may share an id.", field="entity_type", status=400)
        return entity_type, None
    name, _, version = model.partition(":")
    if name not in MODEL_KINDS or (":" in model and not version):
        raise FeedbackError(f"model {model!r} is not NAME or NAME:VERSION of one of {', '.join(MODEL_KINDS)}.",
                            field="model", status=400)
    kind = MODEL_KINDS[name]
    if entity_type is not None and entity_type != kind.entity_type:
        raise FeedbackError(f"model {name} decides {kind.entity_type}s, not {entity_type}s: the verdict is "
                            "ambiguous; give one of the two, or both agreeing.", field="model", status=400)
    return kind.entity_type, model if version else None


def _candidate_ids(feedback: Feedback) -> list[str]:
    """The logged ids the feedback's id may stand for: a kind that logs its ids normalized
    (merchants) may hold older rows as received."""
    normalized = kind_of_entity(feedback.entity_type).answers.id_key(feedback.entity_id)
    return list(dict.fromkeys([feedback.entity_id, normalized]))


def _labelled_decision(engine: Engine, feedback: Feedback) -> dict[str, Any]:
    """The logged decision the feedback is about: of its entity type, its request (or the
    latest) and its model version when one is named."""
    ids, kind = _candidate_ids(feedback), feedback.entity_type
    logged = query_decisions(engine, entity_ids=ids, entity_type=kind, request_id=feedback.request_id,
                             model=feedback.model_version)
    if logged:
        return logged[-1]
    if feedback.model_version:
        other = query_decisions(engine, entity_ids=ids, entity_type=kind, request_id=feedback.request_id)
        if other:
            raise FeedbackError(f"the {kind} {feedback.entity_id!r} was decided by {other[-1]['model']}, not by "
                                f"{feedback.model_version}; name the version that decided it, or only the model.",
                                field="model", status=422)
    if feedback.request_id and query_decisions(engine, entity_ids=ids, entity_type=kind, limit=1):
        raise FeedbackError(f"request {feedback.request_id!r} did not score {kind} {feedback.entity_id!r}; "
                            "give the request_id of a response that contains it, or leave it out.",
                            field="request_id", status=404)
    others = sorted({r["entity_type"] for r in query_decisions(engine, entity=feedback.entity_id, limit=20)})
    hint = f" (a {' and a '.join(others)} with that id was scored: check entity_type)" if others else ""
    raise FeedbackError(f"no logged decision for {kind} {feedback.entity_id!r}{hint}; feedback must follow a "
                        f"scoring call of that {kind}.", field="entity_id", status=404)


def canonical_label(entity_type: str, label: str, segment_index: int | None, segments: int) -> str:
    """The label in its stored form, or ``FeedbackError`` saying what is allowed (the labels
    come from the model kind: positive label or ``ok``; for multi-label kinds ``ok`` or
    categories joined by ``|``, which need the segment they apply to)."""
    kind = kind_of_entity(entity_type)
    label = label.strip()
    if not kind.segmented:
        allowed = kind.feedback_labels
        if label not in allowed or segment_index is not None:
            field = "segment_index" if label in allowed else "label"
            raise FeedbackError(f"a {entity_type} label is one of {allowed} and takes no segment_index.", field)
        return label
    if segment_index is not None and not 0 <= segment_index < segments:
        raise FeedbackError(f"segment_index {segment_index} is outside the stream's {counted(segments, 'segment')}.",
                            "segment_index")
    if label == CLEAN_LABEL:
        return label
    categories = [c.strip() for c in label.split("|") if c.strip()]
    unknown = [c for c in categories if c not in kind.categories]
    if not categories or unknown:
        raise FeedbackError(f"unknown categor{'ies' if len(unknown) > 1 else 'y'} {unknown}; a stream label is "
                            f"'ok' or categories joined by '|' from {list(kind.categories)}.", "label")
    if segment_index is None:
        raise FeedbackError("a stream label naming categories needs the segment_index it applies to.",
                            "segment_index")
    return "|".join(c for c in kind.categories if c in categories)


class FeedbackStore:
    """Stores reviewer outcomes and reads them back."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The database the verdicts are stored in."""
        return self._engine

    def add(self, feedback: Feedback) -> dict[str, Any]:
        """Validate against the decision log and store; returns the stored row."""
        decision = _labelled_decision(self._engine, feedback)
        segments = len(decision["inputs"].get("segments", []))
        row = {
            "at": datetime.now(UTC), "entity_type": decision["entity_type"], "entity_id": decision["entity_id"],
            "request_id": decision["request_id"], "segment_index": feedback.segment_index,
            "model": decision["model"], "reviewer": feedback.reviewer, "note": feedback.note,
            "label": canonical_label(decision["entity_type"], feedback.label, feedback.segment_index, segments),
        }
        with self._engine.begin() as conn:
            row["id"] = conn.execute(insert(feedback_table), row).inserted_primary_key[0]
        return row

    def rows(self, entity_type: str | None = None) -> list[dict[str, Any]]:
        """Every feedback row (of one entity type), oldest first."""
        statement = select(feedback_table).order_by(feedback_table.c.id)
        if entity_type:
            statement = statement.where(feedback_table.c.entity_type == entity_type)
        with self._engine.connect() as conn:
            return [dict(r) for r in conn.execute(statement).mappings()]


def record_verdict(store: FeedbackStore, feedback: Feedback, enforce: Callable[[dict[str, Any]], Any]
                   ) -> dict[str, Any]:
    """Store a reviewer's verdict (``POST /v1/feedback`` and the console alike), then hand the
    stored row to enforcement (``enforce``: an ``ok`` gives back the points a decision cost and
    lifts what no longer stands; a merchant's ``ok`` lifts its hold)."""
    row = store.add(feedback)
    enforce(row)
    return row


@dataclass
class FeedbackExport:
    """A training table built from feedback (plus, for merchants, their links)."""

    table: pd.DataFrame
    links: pd.DataFrame | None = None


class LoggedInputs:
    """The logged input of each (request, entity), read once per request."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._by_request: dict[str, dict[str, dict[str, Any]]] = {}

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        request_id = row["request_id"]
        if request_id not in self._by_request:
            records = query_decisions(self._engine, request_id=request_id)
            self._by_request[request_id] = {r["entity_id"]: r["inputs"] for r in records}  # latest wins
        return self._by_request[request_id][row["entity_id"]]


def _provenance(row: dict[str, Any]) -> dict[str, Any]:
    return {"feedback_id": row["id"], "feedback_reviewer": row["reviewer"],
            "feedback_request_id": row["request_id"], "scored_by": row["model"]}


def _binary_rows(kind: ModelKind, logged: LoggedInputs, feedback: list[dict[str, Any]]) -> FeedbackExport:
    """One row per entity (its latest feedback) with the kind's label column; records with
    links (merchants) give their links as a separate edge list."""
    latest = {r["entity_id"]: r for r in feedback}
    with_links = kind.answers.links_field is not None
    rows, links = [], []
    for r in latest.values():
        try:  # the logged input must still be a valid record: values a training file cannot hold are refused
            record = kind.record.model_validate(logged(r)).model_dump(exclude_none=not with_links)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise FeedbackError(f"feedback {r['id']} ({kind.id_field} {r['entity_id']!r}): the logged input's "
                                f"{'.'.join(str(p) for p in error['loc'])} cannot be exported ({error['msg']}); "
                                "correct or drop that row.", "NAME") from None
        if with_links:
            links += kind.answers.link_edges(record)
            record.pop(kind.answers.links_field)
        rows.append({**record, kind.label_column: int(r["label"] == kind.positive_label), **_provenance(r)})
    return FeedbackExport(pd.DataFrame(rows),
                          pd.DataFrame(links, columns=LINK_COLUMNS) if with_links else None)


def _segment_rows(kind: ModelKind, logged: LoggedInputs, feedback: list[dict[str, Any]]) -> FeedbackExport:
    labels: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
    for r in feedback:  # oldest first: a later verdict on the same segment wins
        segments = logged(r)["segments"]
        indices = range(len(segments)) if r["segment_index"] is None else [r["segment_index"]]
        for index in indices:
            label = "" if r["label"] == CLEAN_LABEL else r["label"]
            labels[(r["entity_id"], index)] = (label, {**_provenance(r), "text": segments[index]["text"]})
    rows = [{kind.id_field: stream, "segment_index": index, "text": info["text"], kind.label_column: label,
             **{k: v for k, v in info.items() if k != "text"}}
            for (stream, index), (label, info) in labels.items()]
    return FeedbackExport(pd.DataFrame(rows))


def export_feedback(engine: Engine, model_name: str) -> FeedbackExport:
    """The training table for ``model_name`` built from its feedback."""
    try:
        kind = model_kind(model_name)
    except ShopGuardError as exc:
        raise FeedbackError(str(exc), "NAME") from None
    feedback = FeedbackStore(engine).rows(kind.entity_type)
    if not feedback:
        raise FeedbackError(f"no feedback on {kind.entity_type}s yet; reviewers send it with POST /v1/feedback.",
                            "NAME", status=404)
    build = _segment_rows if kind.segmented else _binary_rows
    return build(kind, LoggedInputs(engine), feedback)
