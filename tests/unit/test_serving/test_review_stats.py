"""The audit view's review charts count items, not stored verdict rows: one verdict per item
and reviewer (their latest), agreement only where the model decided itself, review items
apart as the share confirmed, and categories per flagged stream segment."""

from __future__ import annotations

from itertools import count

from serving.console.review_stats import (
    Agreement,
    confirmation_by_category,
    item_verdicts,
    reviewer_agreement,
)

STREAM = {"segments": [{"text": "a"}, {"text": "b"}, {"text": "c"}],
          "segment_labels": [["absolute_claim"], [], ["absolute_claim", "price_fraud"]]}
_ids = count(1)


def _row(decision_id: int, reviewer: str, label: str, decision: str = "review", segment: int | None = None,
         entity_type: str = "stream", inputs: dict | None = None) -> dict:
    return {"verdict_id": next(_ids), "decision_id": decision_id, "reviewer": reviewer, "label": label,
            "segment_index": segment, "entity_type": entity_type, "decision": decision,
            "inputs": STREAM if inputs is None and entity_type == "stream" else (inputs or {})}


def test_a_stream_verdict_of_many_segment_rows_is_one_item_verdict() -> None:
    rows = [_row(1, "rita", "absolute_claim", segment=0), _row(1, "rita", "absolute_claim|price_fraud", segment=2)]
    [verdict] = item_verdicts(rows)
    assert verdict.violation and verdict.labels == {0: "absolute_claim", 2: "absolute_claim|price_fraud"}
    assert reviewer_agreement(rows) == {"rita": Agreement(decided=0, agreed=0, reviews=1, confirmed=1)}


def test_the_latest_verdict_of_a_reviewer_replaces_their_earlier_ones() -> None:
    rows = [_row(1, "rita", "absolute_claim", segment=0), _row(1, "rita", "ok"),  # changed her mind: all clean
            _row(2, "rita", "ok", decision="allow", entity_type="listing"),
            _row(2, "rita", "inferior", decision="allow", entity_type="listing")]  # then: a violation after all
    assert reviewer_agreement(rows) == {"rita": Agreement(decided=1, agreed=0, reviews=1, confirmed=0)}
    assert reviewer_agreement(list(reversed(rows))) == reviewer_agreement(rows)  # the row order does not matter


def test_agreement_counts_only_items_the_model_decided_itself() -> None:
    rows = [_row(1, "otto", "inferior", decision="block", entity_type="listing"),  # agrees
            _row(2, "otto", "ok", decision="allow", entity_type="listing"),  # agrees
            _row(3, "otto", "ok", decision="block", entity_type="listing"),  # disagrees
            _row(4, "otto", "ok", decision="review", entity_type="listing"),  # not sure: counted apart
            _row(5, "otto", "suspicious", decision="review", entity_type="merchant")]
    assert reviewer_agreement(rows) == {"otto": Agreement(decided=3, agreed=2, reviews=2, confirmed=1)}


def test_categories_count_each_flagged_segment_of_review_items_once_by_the_latest_verdict() -> None:
    rows = [_row(1, "rita", "price_fraud", segment=2),  # superseded by otto's later verdict
            _row(1, "otto", "absolute_claim", segment=0), _row(1, "otto", "absolute_claim", segment=0),  # twice
            _row(2, "rita", "ok"),  # a whole-stream ok: every flagged segment not confirmed
            _row(3, "rita", "absolute_claim", decision="block", segment=0),  # not a review item: not counted
            _row(4, "rita", "inferior", entity_type="listing"), _row(5, "rita", "ok", entity_type="listing")]
    assert confirmation_by_category(rows) == {
        "listing: inferior": (2, 1),
        # item 1: segment 0 confirmed, segment 2 left out by the latest verdict; item 2: all ok
        "stream: absolute_claim": (4, 1), "stream: price_fraud": (2, 0)}


def test_a_record_that_cannot_be_read_is_skipped_not_fatal() -> None:
    rows = [_row(1, "rita", "ok", inputs={"segment_labels": 7}), _row(2, "rita", "ok", entity_type="Listing")]
    assert confirmation_by_category(rows) == {}
    assert reviewer_agreement(rows)["rita"].reviews == 2
