"""What a decision's page shows, computed from the logged row: the record's fields, or for
multi-label kinds the segments on a timeline with each evidence span cut out of the
original text (so the template only escapes and marks pieces, never parses HTML)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from sqlalchemy import Engine

from kinds import ModelKind, kind_of_entity
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
    scores = inputs.get("segment_scores") if isinstance(inputs.get("segment_scores"), list) else []
    flagged = set(flagged_indexes(inputs))
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
            "decision": decisions[index] if index < len(decisions) else "", "in_question": index in flagged,
            "score": float(scores[index]) if index < len(scores) else None,
            "x": round(start_ms / end * TIMELINE_WIDTH), "width": max(2, round((end_ms - start_ms) / end * TIMELINE_WIDTH)),
        })
    return {"segments": rows, "spans_logged": spans is not None, "category_index":
            {c: i for i, c in enumerate(kind.categories)}}


FLAGGED = ("review", "block")
SEGMENT_REASONS = ("review_segment", "blocking_segment", "review_burst", "model_only_capped")


def segment_categories(inputs: dict[str, Any], index: int) -> list[str]:
    """The categories the model flagged on segment ``index``: its labels, then the categories
    of its evidence spans."""
    labels = _at(inputs.get("segment_labels"), index) or []
    spans = _at(inputs.get("segment_spans"), index) or []
    return list(dict.fromkeys([*map(str, labels), *(str(s.get("category")) for s in spans if s.get("category"))]))


def _at(values: Any, index: int) -> Any:
    return values[index] if isinstance(values, list) and 0 <= index < len(values) else None


def flagged_indexes(inputs: dict[str, Any]) -> list[int]:
    """The segments the decision rests on: at review or block (records logged without
    segment decisions: those with labels or evidence)."""
    segments = inputs.get("segments") or []
    decisions = inputs.get("segment_decisions")
    if isinstance(decisions, list) and len(decisions) == len(segments):
        return [i for i, d in enumerate(decisions) if d in FLAGGED]
    return [i for i in range(len(segments)) if segment_categories(inputs, i)]


def deciding_score(decision: dict[str, Any]) -> tuple[float, str | None]:
    """The score that made the decision and, when it is not the logged score, a note saying
    what the logged one is. A stream's logged score is the highest over all its segments,
    allowed ones included; the deciding score is the highest among the segments at the
    stream's decision (at review for a block by the burst rule)."""
    inputs, logged = decision["inputs"], float(decision["score"])
    if not kind_of_entity(decision["entity_type"]).multi_label:
        return logged, None
    scores, decisions = inputs.get("segment_scores"), inputs.get("segment_decisions")
    if not (isinstance(scores, list) and isinstance(decisions, list) and len(scores) == len(decisions)):
        return logged, "the highest over all segments: this record was logged without segment scores"
    at = [float(s) for s, d in zip(scores, decisions, strict=True) if d == decision["decision"]]
    at = at or [float(s) for s, d in zip(scores, decisions, strict=True) if d in FLAGGED]
    if not at:
        return logged, "no segment was flagged: a rule raised the decision; shown: the highest over all segments"
    score = max(at)
    if abs(score - logged) < 1e-9:
        return score, None
    top = max(range(len(scores)), key=lambda i: float(scores[i]))
    return score, f"segment {top}, at {decisions[top]}, scored higher ({logged:.3f}) without deciding"


def reason_notes(decision: dict[str, Any]) -> list[str]:
    """Per reason of a stream, the categories of the segments it names (``review_segment``
    alone says which segments, not what they were flagged for); "" for other reasons."""
    if not kind_of_entity(decision["entity_type"]).multi_label:
        return ["" for _ in decision["reasons"]]
    return [_segment_note(decision["inputs"], r) for r in decision["reasons"]]


def _segment_note(inputs: dict[str, Any], reason: dict[str, Any]) -> str:
    if reason.get("code") not in SEGMENT_REASONS:
        return ""
    found = re.search(r"\[([0-9, ]*)\]", str(reason.get("detail", "")))
    indexes = [int(i) for i in found.group(1).replace(" ", "").split(",") if i] if found else flagged_indexes(inputs)
    return "; ".join(f"segment {i}: {', '.join(segment_categories(inputs, i)) or 'no category over its threshold'}"
                     for i in indexes[:10])


def queue_facts(row: dict[str, Any]) -> dict[str, Any]:
    """What the queue shows of an item: ``summary`` (a stream: its first flagged segment's
    text; else the record's first text field), ``segment`` and ``categories`` of that
    segment, ``more`` flagged segments, the deciding ``score`` and its ``score_note``. A
    record that cannot be read (an unknown entity type, a malformed input) says so: one bad
    record must not take the queue page down for everyone."""
    try:
        return _facts(row)
    except Exception as exc:  # noqa: BLE001 - any malformed stored record
        logger.warning("console: decision record of type %r cannot be summarized: %s", str(row["entity_type"])[:40],
                       exc)
        return {"summary": "(this record cannot be read: open it for details)", "segment": None, "categories": [],
                "more": 0, "score": row["score"], "score_note": None}


def _facts(row: dict[str, Any]) -> dict[str, Any]:
    inputs = row["inputs"]
    score, note = deciding_score(row)
    facts: dict[str, Any] = {"segment": None, "categories": [], "more": 0, "score": score, "score_note": note}
    if kind_of_entity(row["entity_type"]).multi_label:
        flagged = flagged_indexes(inputs)
        segment = flagged[0] if flagged else 0
        facts.update(segment=segment if flagged else None, categories=segment_categories(inputs, segment),
                     more=max(len(flagged) - 1, 0),
                     summary=_cut(str((_at(inputs.get("segments"), segment) or {}).get("text", ""))))
    else:
        facts["summary"] = item_summary(row["entity_type"], inputs)
    return facts


def item_summary(entity_type: str, inputs: dict[str, Any], limit: int = 90) -> str:
    """A line saying what the item is: the first flagged segment's text (multi-label kinds),
    else the first text field of the record that is not an id (a listing's title). A record
    that cannot be read says so."""
    try:
        return _summary(entity_type, inputs, limit)
    except Exception as exc:  # noqa: BLE001 - any malformed stored record
        logger.warning("console: decision record of type %r cannot be summarized: %s", entity_type[:40], exc)
        return "(this record cannot be read: open it for details)"


def _cut(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _summary(entity_type: str, inputs: dict[str, Any], limit: int) -> str:
    kind = kind_of_entity(entity_type)
    if kind.multi_label:
        segments = inputs.get("segments") or [{}]
        flagged = flagged_indexes(inputs)
        text = str(segments[flagged[0] if flagged else 0].get("text", ""))
    else:
        text = next((inputs[name] for name in kind.record.model_fields
                     if not name.endswith("_id") and isinstance(inputs.get(name), str) and inputs[name]), "")
    return _cut(text, limit)


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


def cites_links(decision: dict[str, Any]) -> bool:
    """Whether a reason of the decision rests on the entity's links (a merchant's ring
    evidence: linked merchants, flagged neighbours, link counts)."""
    return any("link" in str(r.get("code", "")) for r in decision["reasons"])


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
    score, score_note = deciding_score(decision)
    view = {"decision": decision, "kind": kind, "model_name": name, "model_version": version,
            "verdicts": queries.verdicts(engine, decision), "appeals": queries.appeals(engine, decision),
            "score": score, "score_note": score_note,
            "reason_notes": reason_notes(decision), "cites_links": cites_links(decision),
            "raw_inputs": json.dumps(decision["inputs"], ensure_ascii=False, indent=2)}
    inputs = decision["inputs"]
    view.update(_fields(kind, {k: v for k, v in inputs.items() if not (kind.multi_label and k.startswith("segment"))}))
    if kind.multi_label:
        view.update(_segments(kind, inputs))
    return view
