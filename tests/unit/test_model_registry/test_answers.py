"""The kinds' answers (``kinds/``) from given scores: results, the policy's
rules, decision-log items and batch rows. The runtime is the test tree's review-spam one
(only its tag is read: the scores are given, as the micro-batcher and batch jobs give them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from common.decisions import Thresholds
from features.reasons import Reason
from kinds.answers import MAX_REASONS, no_holds
from kinds.false_marketing.answers import MAX_STREAM_CHARS, StreamAnswers
from kinds.false_marketing.record import TranscriptSegment
from kinds.false_marketing.spans import SegmentAnalysis, Span
from kinds.listing_quality.answers import ListingAnswers
from kinds.listing_quality.record import ListingRecord
from kinds.merchant_risk.answers import MerchantAnswers
from kinds.runtime import Scores
from policy.calls import MODEL_HOLD, MerchantHold
from policy.document import CallRules
from policy.state import ChunkScored, MerchantsScored
from tests.fourth_kind.runtime import ReviewSpamModel

MODEL = ReviewSpamModel({}, 0.0, Thresholds(block=0.9, review=0.5), "test-model:v1")
BLOCKED = MerchantHold("m1", "review_hold", MODEL_HOLD, "merchant-risk:v1 decided block (score 0.970)", "review",
                       datetime(2026, 1, 2, tzinfo=UTC))


def blocks(ids: set[str]) -> dict[str, MerchantHold]:
    return {m: BLOCKED for m in ids if m == "m1"}


def listing(listing_id: str, merchant_id: str | None) -> ListingRecord:
    return ListingRecord(listing_id=listing_id, merchant_id=merchant_id, title="保温杯", category="home", price=9.0)


def test_a_blocked_merchant_raises_a_listing_to_review_with_its_reason_first() -> None:
    records = [listing("a", " M1 "), listing("b", "m2")]
    model_reasons = [[Reason(f"r{i}", "model") for i in range(4)], []]
    scores = Scores(np.array([0.1234567, 0.2]), ["allow", "allow"], model_reasons)
    answer = ListingAnswers().answer(MODEL, records, {}, blocks, scores)
    first, second = answer.fields["results"]
    assert (first.decision, second.decision) == ("review", "allow")
    assert first.reasons[0].code == "merchant_blocked" and " M1 " in first.reasons[0].detail
    assert len(first.reasons) == MAX_REASONS and first.score == 0.123457
    assert [item.entity_id for item in answer.log] == ["a", "b"]
    assert answer.log[0].inputs == records[0].model_dump(exclude_none=True)
    assert [row["id"] for row in answer.batch_rows] == ["a", "b"]
    assert json.loads(answer.batch_rows[0]["reasons"])[0]["code"] == "merchant_blocked"
    event = ListingAnswers().enforcement_event(answer, records, {}, "req", datetime(2026, 1, 3, tzinfo=UTC))
    assert event is not None and [(i.listing_id, i.merchant_id, i.decision, i.model_decision)
                                  for i in event.items] == [
        ("a", "m1", "review", "allow")]  # at review or block, with the model's own decision (what costs points)


def test_a_null_description_is_no_description_and_other_types_are_refused() -> None:
    fields = {"listing_id": "L1", "title": "保温杯", "category": "home", "price": 9.0}
    assert ListingRecord.model_validate({**fields, "description": None}).description == ""
    with pytest.raises(ValidationError, match="description"):
        ListingRecord.model_validate({**fields, "description": 5})


def test_a_merchant_block_reaches_enforcement_and_is_logged_under_the_normalized_id() -> None:
    from kinds.merchant_risk.record import MerchantRecord

    fields = {f: None for f in MerchantRecord.model_fields if f not in ("merchant_id", "links")}
    records = [MerchantRecord(merchant_id="Ｍ１", **fields), MerchantRecord(merchant_id="m2", **fields)]
    answer = MerchantAnswers().answer(MODEL, records, {}, no_holds,
                                      Scores(np.array([0.95, 0.1]), ["block", "allow"], [[], []]))
    event = MerchantAnswers().enforcement_event(answer, records, {}, "req", datetime(2026, 1, 3, tzinfo=UTC))
    assert isinstance(event, MerchantsScored) and [(i.merchant_id, i.decision) for i in event.items] == [
        ("m1", "block")]
    assert answer.log[0].entity_id == "m1" and answer.batch_rows[0]["id"] == "Ｍ１"


def test_one_call_names_each_merchant_once_as_normalized() -> None:
    from kinds.merchant_risk.record import MerchantRecord

    fields = {f: None for f in MerchantRecord.model_fields if f not in ("merchant_id", "links")}
    records = [MerchantRecord(merchant_id=m, **fields) for m in ("M1", "x", " m1")]
    refused = MerchantAnswers().refusal(records, "merchants")
    assert refused is not None and refused.status == 400
    assert [d["loc"] for d in refused.body["detail"]] == [["merchants", 0, "merchant_id"], ["merchants", 2, "merchant_id"]]
    assert MerchantAnswers().refusal(records[:2], "merchants") is None


def test_listing_ids_are_compared_and_logged_normalized_with_their_case_kept() -> None:
    records = [listing(i, None) for i in ("DUP3", "DUP3\u200b", "ＤＵＰ4", "DUP4", " DUP5 ", "DUP5", "dup5")]
    refused = ListingAnswers().refusal(records, "listings")
    assert refused is not None and [d["loc"][1] for d in refused.body["detail"]] == [0, 1, 2, 3, 4, 5]
    assert ListingAnswers().refusal([records[0], records[2], records[6]], "listings") is None  # case kept
    scores = Scores(np.array([0.1, 0.2]), ["allow", "allow"], [[], []])
    answer = ListingAnswers().answer(MODEL, [records[1], records[4]], {}, no_holds, scores)
    assert [item.entity_id for item in answer.log] == ["DUP3", "DUP5"]
    assert [r.listing_id for r in answer.fields["results"]] == ["DUP3\u200b", " DUP5 "]  # answered as sent


def segment_analysis(decision: str, complete: bool = True) -> SegmentAnalysis:
    span = Span(0, 2, "原价", "price_fraud", "lexicon", "price-1")
    return SegmentAnalysis({"price_fraud": 0.8}, ["price_fraud"] if decision != "allow" else [], [span], decision,
                           0.8 if decision != "allow" else 0.1, spans_complete=complete)


def stream(n: int) -> list[TranscriptSegment]:
    return [TranscriptSegment(text="原价九十九", start_ms=i * 1000, end_ms=i * 1000 + 900) for i in range(n)]


def test_a_stream_whose_span_budget_ran_out_says_so() -> None:
    analyses = [segment_analysis("review", complete=True), segment_analysis("review", complete=False)]
    scores = Scores(np.array([0.8, 0.8]), ["review", "review"], [[], []], analyses)
    answer = StreamAnswers().answer(MODEL, stream(2), {"stream_id": "S1", "merchant_id": None}, no_holds, scores)
    assert answer.fields["spans_cut_short"] is True
    assert [s.spans_complete for s in answer.fields["segments"]] == [True, False]
    complete = StreamAnswers().answer(MODEL, stream(1), {"stream_id": "S2"}, no_holds,
                                      Scores(np.array([0.8]), ["review"], [[]], analyses[:1]))
    assert complete.fields["spans_cut_short"] is False


def test_three_segments_at_review_within_a_minute_block_the_stream_and_a_blocked_merchant_is_named() -> None:
    analyses = [segment_analysis("review") for _ in range(3)]
    scores = Scores(np.array([0.8] * 3), ["review"] * 3, [[]] * 3, analyses)
    answer = StreamAnswers().answer(MODEL, stream(3), {"stream_id": "S3", "merchant_id": "m1"}, blocks, scores)
    assert answer.fields["decision"] == "block"
    assert [r.code for r in answer.fields["reasons"]] == ["merchant_blocked", "review_burst"]
    [item] = answer.log
    assert item.entity_id == "s3" and item.inputs["segment_decisions"] == ["review"] * 3  # logged normalized
    [row] = answer.batch_rows
    assert row["id"] == "S3" and json.loads(row["labels"]) == [["price_fraud"]] * 3
    assert json.loads(row["spans"])[0][0]["rule_id"] == "price-1"


def test_a_stream_over_the_character_budget_is_refused_before_any_work() -> None:
    segments = [TranscriptSegment(text="字" * 2000, start_ms=i, end_ms=i + 1) for i in range(MAX_STREAM_CHARS // 2000 + 1)]
    refused = StreamAnswers().work_refusal(segments)
    assert refused is not None and refused.status == 413 and refused.body["detail"][0]["loc"] == ["segments"]
    assert StreamAnswers().work_refusal(segments[:1]) is None


def test_a_stream_call_is_a_chunk_of_its_room_and_its_burst_is_charged() -> None:
    analyses = [segment_analysis("review") for _ in range(3)] + [segment_analysis("allow")]
    scores = Scores(np.array([0.8] * 3 + [0.1]), ["review"] * 3 + ["allow"], [[]] * 4, analyses)
    request = {"stream_id": " Room-1\u200b", "merchant_id": "Ｍ２", "creator_id": "Host", "chunk": 4}
    answers = StreamAnswers()
    answer = answers.answer(MODEL, stream(4), request, no_holds, scores)
    event = answers.enforcement_event(answer, stream(4), request, "req-1", datetime(2026, 1, 3, tzinfo=UTC))
    assert isinstance(event, ChunkScored)
    assert (event.stream_id, event.creator_id, event.merchant_id, event.chunk) == ("room-1", "host", "m2", 4)
    assert [(f.index, f.decision, f.categories) for f in event.flagged] == [(i, "review", ("price_fraud",))
                                                                           for i in range(3)]
    assert event.rule_blocked == (0, 1, 2) and event.segments == 4
    key = answers.call_key(stream(4), request)
    assert key.stream_id == "room-1" and key == answers.call_key(stream(4), dict(request))
    assert key.segments_sha256 != answers.call_key(stream(3), request).segments_sha256
    # A review ten minutes after the burst is not one the rule blocked on: it is not charged.
    late = [*stream(3), TranscriptSegment(text="原价九十九", start_ms=600_000, end_ms=600_900)]
    all_review = Scores(np.array([0.8] * 4), ["review"] * 4, [[]] * 4, [segment_analysis("review")] * 4)
    answer = answers.answer(MODEL, late, request, no_holds, all_review)
    assert answer.fields["decision"] == "block"
    assert answers.enforcement_event(answer, late, request, "req-2", datetime(2026, 1, 3, tzinfo=UTC)).rule_blocked == (
        0, 1, 2)
    lenient = CallRules(stream_review_burst={"segments": 4, "window_seconds": 60})
    assert answers.answer(MODEL, stream(4), request, no_holds, scores, lenient).fields["decision"] == "review"
    first = {"request_id": "req-1", **answer.fields}
    from policy.store import jsonable

    [again] = answers.repeated_log(stream(4), request, jsonable(first))
    assert again.entity_id == "room-1" and again.inputs["chunk"] == 4 and again.decision == "block"
