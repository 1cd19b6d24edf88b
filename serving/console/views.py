"""What a decision's page shows, computed from the logged row: the record's fields, or for
multi-label kinds the segments on a timeline with each evidence span cut out of the
original text (so the template only escapes and marks pieces, never parses HTML)."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import Engine

from model_registry.kinds import ModelKind, kind_of_entity
from serving.console import queries

TIMELINE_WIDTH = 1000
logger = logging.getLogger("shopguard.console")


def highlighted(text: str, spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``text`` cut into pieces, each ``{"text", "span"}`` (``span`` None outside evidence;
    evidence pieces also give the ``start`` and ``end`` they show); overlapping or
    out-of-range spans are clipped so every character shows exactly once."""
    pieces, position = [], 0
    for span in sorted(spans, key=lambda s: (int(s.get("start", 0)), -int(s.get("end", 0)))):
        start, end = max(int(span.get("start", 0)), position), min(int(span.get("end", 0)), len(text))
        if start >= end:
            continue
        if start > position:
            pieces.append({"text": text[position:start], "span": None})
        pieces.append({"text": text[start:end], "span": span, "start": start, "end": end})
        position = end
    if position < len(text):
        pieces.append({"text": text[position:], "span": None})
    return pieces


def _segments(kind: ModelKind, inputs: dict[str, Any]) -> dict[str, Any]:
    segments = inputs.get("segments") or []
    spans = inputs.get("segment_spans")
    labels = inputs.get("segment_labels") or [[] for _ in segments]
    decisions = inputs.get("segment_decisions") or ["" for _ in segments]
    end = max([int(s.get("end_ms") or 0) for s in segments] + [1])
    rows = []
    for index, segment in enumerate(segments):
        start_ms, end_ms = int(segment.get("start_ms") or 0), int(segment.get("end_ms") or 0)
        segment_spans = spans[index] if spans and index < len(spans) else []
        segment_labels = labels[index] if index < len(labels) else []
        rows.append({
            "flagged": {*segment_labels, *(sp.get("category") for sp in segment_spans)},
            "index": index, "start_ms": start_ms, "end_ms": end_ms, "text": segment.get("text", ""),
            "pieces": highlighted(str(segment.get("text", "")), segment_spans), "labels": segment_labels,
            "decision": decisions[index] if index < len(decisions) else "",
            "x": round(start_ms / end * TIMELINE_WIDTH), "width": max(2, round((end_ms - start_ms) / end * TIMELINE_WIDTH)),
        })
    return {"segments": rows, "spans_logged": spans is not None, "category_index":
            {c: i for i, c in enumerate(kind.categories)}}


def item_summary(entity_type: str, inputs: dict[str, Any], limit: int = 90) -> str:
    """A line saying what the item is: the first segment's text (multi-label kinds), else
    the first text field of the record that is not an id (a listing's title). A record that
    cannot be read (an unknown entity type, a malformed input) says so: one bad record must
    not take the queue page down for everyone."""
    try:
        return _summary(entity_type, inputs, limit)
    except Exception as exc:  # noqa: BLE001 - any malformed stored record
        logger.warning("console: decision record of type %r cannot be summarized: %s", entity_type[:40], exc)
        return "(this record cannot be read: open it for details)"


def _summary(entity_type: str, inputs: dict[str, Any], limit: int) -> str:
    kind = kind_of_entity(entity_type)
    if kind.multi_label:
        segments = inputs.get("segments") or [{}]
        text = str(segments[0].get("text", ""))
    else:
        text = next((inputs[name] for name in kind.record.model_fields
                     if not name.endswith("_id") and isinstance(inputs.get(name), str) and inputs[name]), "")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _value(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else json.dumps(
        value, ensure_ascii=False)


def _fields(kind: ModelKind, inputs: dict[str, Any]) -> dict[str, Any]:
    """The record's fields in the record's order; list-of-record fields (a merchant's links)
    apart, each row's ids linking to their decisions."""
    ordered = [name for name in kind.record.model_fields if name in inputs]
    ordered += [name for name in inputs if name not in ordered]
    fields = [(name, _value(inputs[name])) for name in ordered if not _is_table(inputs[name])]
    tables = {name: inputs[name] for name in ordered if _is_table(inputs[name])}
    return {"fields": fields, "tables": tables}


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


class UnreadableRecord(ValueError):
    """A stored decision whose record cannot be shown (an operator's repair gone wrong)."""


def decision_view(engine: Engine, decision_id: int) -> dict[str, Any] | None:
    """Everything ``decision.html`` shows about one logged decision, or None;
    ``UnreadableRecord`` naming what is wrong when its stored record cannot be shown."""
    decision = queries.decision_by_id(engine, decision_id)
    if decision is None:
        return None
    try:
        return _view(engine, decision)
    except Exception as exc:  # noqa: BLE001 - any malformed stored record
        logger.warning("console: decision %d cannot be shown: %s: %s", decision_id, type(exc).__name__, exc)
        raise UnreadableRecord(f"decision {decision_id}'s stored record cannot be shown ({type(exc).__name__}: "
                               f"{str(exc)[:200]}); the audit export has it as stored.") from None


def _view(engine: Engine, decision: dict[str, Any]) -> dict[str, Any]:
    kind = kind_of_entity(decision["entity_type"])
    name, _, version = decision["model"].partition(":")
    view = {"decision": decision, "kind": kind, "model_name": name, "model_version": version,
            "verdicts": queries.verdicts(engine, decision),
            "raw_inputs": json.dumps(decision["inputs"], ensure_ascii=False, indent=2)}
    inputs = decision["inputs"]
    view.update(_fields(kind, {k: v for k, v in inputs.items() if not (kind.multi_label and k.startswith("segment"))}))
    if kind.multi_label:
        view.update(_segments(kind, inputs))
    return view
