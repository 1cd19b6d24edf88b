"""A reviewer's verdict from the console's form, as feedback rows (``serving/feedback.py``).

Every row names the decision's ``request_id``; a stream's rows also name their
``segment_index``: one row per segment in question (each flagged segment, each segment the
reviewer marked, each segment an earlier verdict found violating), with its categories or
``ok`` (a flagged segment whose boxes are all unchecked is ``ok``).

**Changing a verdict.** Verdicts are append-only, like the ledger they drive. A new verdict
on the same item supersedes the earlier one (the latest verdict on a segment is what the
training export and enforcement act on); where the new verdict drops categories an earlier
one confirmed, an ``ok`` row on that segment is stored first, so that the enforcement's
overturn (``policy/engine.py``) reverses every charge the earlier verdict caused before the
new categories are confirmed. There is no deletion of a verdict: "undo" in the console is
this change of verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kinds import CLEAN_FEEDBACK_LABEL, ModelKind, kind_of_entity
from serving.console.forms import BadInput
from serving.console.views import flagged_indexes
from serving.feedback import Feedback, FeedbackError, FeedbackStore, canonical_label, record_verdict

MAX_NOTE = 4000
_CATEGORY_FIELD = re.compile(r"categories-(.*)")


def form_note(form: Any) -> str:
    """The form's ``note`` (CRLF line ends, as a textarea sends them, made LF); ``BadInput``
    naming it when longer than ``MAX_NOTE``, as the API refuses it (never cut short)."""
    note = str(form.get("note", "")).replace("\r\n", "\n")
    if len(note) > MAX_NOTE:
        raise BadInput("note", f"is {len(note):,} characters; at most {MAX_NOTE:,} are kept")
    return note


def _checked_categories(form: Any, segments: int) -> dict[int, list[str]]:
    """The categories checked per segment (``categories-<index>``); ``BadInput`` naming a box
    of a segment the item does not have (a listing or merchant has none)."""
    checked: dict[int, list[str]] = {}
    for key in form:
        found = _CATEGORY_FIELD.fullmatch(key)
        if found is None:
            continue
        index = found.group(1)
        if not (index.isascii() and index.isdigit() and str(int(index)) == index and int(index) < segments):
            raise BadInput(key, f"names no segment of this item (it has {segments})")
        if values := [str(c) for c in form.getlist(key)]:
            checked[int(index)] = values
    return checked


def standing_labels(rows: list[dict[str, Any]], segments: int) -> dict[int | None, tuple[str, int]]:
    """The label in force per segment (None: the whole item) after verdict ``rows`` (oldest
    first): (label, id of the row that gave it); a row without a segment covers them all."""
    standing: dict[int | None, tuple[str, int]] = {}
    for row in rows:
        covered = range(segments) if row["segment_index"] is None and segments else [row["segment_index"]]
        for index in covered:
            standing[index] = (row["label"], row["id"])
    return standing


def verdict_labels(kind: ModelKind, inputs: dict[str, Any], answer: str, checked: dict[int, list[str]],
                   standing: dict[int | None, tuple[str, int]]) -> dict[int | None, str]:
    """The label per segment (None: the whole item) of the form's verdict; ``FeedbackError``
    (400) for a violation that names no category."""
    if answer not in ("violation", "ok"):
        raise FeedbackError("verdict must be 'violation' or 'ok'", "verdict", 400)
    if not kind.segmented:
        return {None: (kind.positive_label or "") if answer == "violation" else CLEAN_FEEDBACK_LABEL}
    violated = {i for i, (label, _) in standing.items() if i is not None and label != CLEAN_FEEDBACK_LABEL}
    in_question = sorted({*flagged_indexes(inputs), *violated, *(checked if answer == "violation" else ())})
    if answer == "ok":
        return {i: CLEAN_FEEDBACK_LABEL for i in in_question} or {None: CLEAN_FEEDBACK_LABEL}
    labels = {i: "|".join(checked.get(i, [])) or CLEAN_FEEDBACK_LABEL for i in in_question}
    if all(label == CLEAN_FEEDBACK_LABEL for label in labels.values()):
        raise FeedbackError("a violation names at least one category of one segment", "categories", 400)
    return labels


def _reversals(labels: dict[int | None, str], standing: dict[int | None, tuple[str, int]]
               ) -> dict[int | None, int]:
    """Segments whose standing violation names categories the new label drops: segment ->
    the id of the verdict whose charges must be reversed first."""
    out = {}
    for index, label in labels.items():
        old, row_id = standing.get(index, (CLEAN_FEEDBACK_LABEL, 0))
        dropped = set(old.split("|")) - set(label.split("|"))
        if old != CLEAN_FEEDBACK_LABEL and label != CLEAN_FEEDBACK_LABEL and dropped:
            out[index] = row_id
    return out


def store_verdict(store: FeedbackStore, decision: dict[str, Any], reviewer: str, form: Any,
                  earlier: list[dict[str, Any]], enforce: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Store the form's verdict on ``decision`` (``earlier``: the verdicts on it so far,
    oldest first) through ``record_verdict``; returns the stored rows."""
    kind = kind_of_entity(decision["entity_type"])
    segments = len(decision["inputs"].get("segments") or []) if kind.segmented else 0
    checked = _checked_categories(form, segments)
    note = form_note(form)
    standing = standing_labels(earlier, segments)
    labels = verdict_labels(kind, decision["inputs"], str(form.get("verdict", "")), checked, standing)
    plan = [(index, CLEAN_FEEDBACK_LABEL, f"verdict changed: the categories of verdict {row_id} are withdrawn")
            for index, row_id in _reversals(labels, standing).items()]
    plan += [(index, label, note) for index, label in labels.items()]
    for index, label, _ in plan:  # every row valid before the first is stored
        canonical_label(decision["entity_type"], label, index, segments)
    return [record_verdict(store, Feedback(decision["entity_id"], label, reviewer, decision["entity_type"], text,
                                           decision["request_id"], index, decision["model"]), enforce)
            for index, label, text in plan]


def describe(rows: list[dict[str, Any]]) -> str:
    """What a verdict stored, in words: "violation: segment 2 absolute_claim; segment 3 ok"."""
    if not rows:
        return "nothing"
    shown = [r for r in rows if not str(r["note"]).startswith("verdict changed:")] or rows
    if all(r["segment_index"] is None for r in shown):
        return shown[-1]["label"]
    latest = {r["segment_index"]: r["label"] for r in shown}
    verdict = "ok" if all(label == CLEAN_FEEDBACK_LABEL for label in latest.values()) else "violation"
    parts = [f"segment {'all' if i is None else i} {label}" for i, label in latest.items()]
    return f"{verdict}: {'; '.join(parts)}"
