"""What the audit view's review charts count, per item (one logged decision), never per
stored verdict row.

A verdict on a stream is stored as one row per segment it names (or one ``ok`` row for the
whole stream); a reviewer may give several verdicts on one item. So each reviewer's rows on
an item are replayed oldest first into one **item verdict**: a row on the whole item
replaces what came before it, a row on one segment replaces that segment's label. The item
verdict is a violation when any label it holds names a violation.

The rules the charts state in their captions:

- **Agreement** (per reviewer): only items the model decided itself. Agreement = the
  reviewer's latest verdict is a violation where the model said ``block``, or ``ok`` where it
  said ``allow``.
- **Sent to review** (per reviewer, apart): a ``review`` decision means "the model was not
  sure", so it neither agrees nor disagrees; what is shown is the share of those items the
  reviewer confirmed as a violation.
- **Confirmed per category**: items the model sent to review, each judged by its latest
  verdict (the reviewer who acted last); for streams per segment: a segment the model
  flagged with a category counts once for that category, confirmed when the verdict's
  label of that segment names it (a flagged segment the verdict leaves out is not
  confirmed: the console's form pre-checks the model's labels, a reviewer unchecks what is
  not a violation).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from common.errors import ShopGuardError
from kinds import CLEAN_FEEDBACK_LABEL, ModelKind, kind_of_entity

WHOLE_ITEM = None  # the segment index of a verdict on the whole item


@dataclass
class ItemVerdict:
    """One reviewer's verdict on one item (a logged decision), all their rows replayed."""

    decision_id: int
    entity_type: str
    decision: str
    inputs: dict[str, Any]
    reviewer: str
    labels: dict[int | None, str] = field(default_factory=dict)
    last_row: int = 0

    @property
    def violation(self) -> bool:
        """Whether the verdict names a violation anywhere in the item."""
        return any(label != CLEAN_FEEDBACK_LABEL for label in self.labels.values())

    def label_of(self, segment: int) -> str:
        """The verdict's label of one segment (a whole-item label where none names it; empty
        when the verdict leaves the segment out)."""
        return self.labels.get(segment, self.labels.get(WHOLE_ITEM, ""))

    def add(self, row: dict[str, Any]) -> None:
        """Replay one more (newer) verdict row."""
        if row["segment_index"] is WHOLE_ITEM:
            self.labels = {}
        self.labels[row["segment_index"]] = row["label"]
        self.last_row = row["verdict_id"]


@dataclass(frozen=True)
class Agreement:
    """One reviewer's items: those the model blocked or allowed (``decided``) and how many
    the reviewer agreed with; those it sent to review (``reviews``) and how many the reviewer
    confirmed as a violation."""

    decided: int
    agreed: int
    reviews: int
    confirmed: int


def item_verdicts(rows: list[dict[str, Any]]) -> list[ItemVerdict]:
    """One verdict per (item, reviewer) from verdict rows joined with their decision (rows
    with ``verdict_id``, ``decision_id``, ``reviewer``, ``label``, ``segment_index``,
    ``entity_type``, ``decision``, ``inputs``; any order)."""
    verdicts: dict[tuple[int, str], ItemVerdict] = {}
    for row in sorted(rows, key=lambda r: r["verdict_id"]):
        key = (row["decision_id"], row["reviewer"])
        if key not in verdicts:
            verdicts[key] = ItemVerdict(row["decision_id"], row["entity_type"], row["decision"], row["inputs"],
                                        row["reviewer"])
        verdicts[key].add(row)
    return list(verdicts.values())


def latest_per_item(verdicts: list[ItemVerdict]) -> list[ItemVerdict]:
    """Each item's verdict by the reviewer who acted on it last."""
    latest: dict[int, ItemVerdict] = {}
    for verdict in verdicts:
        if verdict.decision_id not in latest or verdict.last_row > latest[verdict.decision_id].last_row:
            latest[verdict.decision_id] = verdict
    return list(latest.values())


def reviewer_agreement(rows: list[dict[str, Any]]) -> dict[str, Agreement]:
    """Per reviewer, on their latest verdict per item: agreement on the items the model
    blocked or allowed, and the share of review items confirmed (the module's rules)."""
    counts: dict[str, Counter[str]] = {}
    for verdict in item_verdicts(rows):
        tally = counts.setdefault(verdict.reviewer, Counter())
        if verdict.decision == "review":
            tally["reviews"] += 1
            tally["confirmed"] += verdict.violation
        elif verdict.decision in ("block", "allow"):
            tally["decided"] += 1
            tally["agreed"] += verdict.violation == (verdict.decision == "block")
    return {name: Agreement(t["decided"], t["agreed"], t["reviews"], t["confirmed"])
            for name, t in sorted(counts.items())}


def _segment_labels(inputs: dict[str, Any]) -> list[list[str]]:
    """The model's labels per segment as logged (nothing from a record that cannot be read)."""
    labels = inputs.get("segment_labels") if isinstance(inputs, dict) else None
    if not isinstance(labels, list):
        return []
    return [[c for c in entry if isinstance(c, str)] if isinstance(entry, list) else [] for entry in labels]


def _confirmed(kind: ModelKind, label: str) -> set[str]:
    if label in (CLEAN_FEEDBACK_LABEL, ""):
        return set()
    return set(label.split("|")) if kind.multi_label else {label}


def _kind(entity_type: str) -> ModelKind | None:
    try:
        return kind_of_entity(entity_type)
    except ShopGuardError:  # a record whose type no model scores: not counted
        return None


def confirmation_by_category(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Per category (``kind: category``): (flagged units the model sent to review, of those
    confirmed by the item's latest verdict). A unit is a stream segment flagged with the
    category, or a whole listing or merchant (its kind's positive label)."""
    flagged, confirmed = Counter(), Counter()
    for verdict in latest_per_item(item_verdicts(rows)):
        kind = _kind(verdict.entity_type)
        if not kind or verdict.decision != "review":  # a type no model scores, or not a review
            continue
        if kind.segmented:
            units = [(category, verdict.label_of(i)) for i, labels in enumerate(_segment_labels(verdict.inputs))
                     for category in labels]
        else:
            units = [(kind.positive_label or "", verdict.labels.get(WHOLE_ITEM, ""))]
        for category, label in units:
            key = f"{kind.entity_type}: {category}"
            flagged[key] += 1
            confirmed[key] += category in _confirmed(kind, label)
    return {key: (flagged[key], confirmed[key]) for key in sorted(flagged)}
