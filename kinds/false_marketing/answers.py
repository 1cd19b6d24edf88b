"""false-marketing's answer: a stream's segments scored together, the segment results and
the stream's decision (stream rule, capped-evidence reason, merchant rule); with enforcement,
the call is a chunk of its live room (``policy/engine.py``): its answer adds the room's action
and the creator's credit, and a repeated chunk gets its first answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.decisions import Decision
from common.errors import error_body
from features.ids import ScoredId, merchant_key
from features.schemas import normalized_length
from kinds.answers import (
    MAX_BATCH,
    Answer,
    CallKey,
    Endpoint,
    HoldLookup,
    KindAnswers,
    LogItem,
    ReasonOut,
    Refused,
    apply_merchant_rule,
    reasons_out,
)
from kinds.false_marketing.record import TranscriptSegment
from kinds.runtime import ModelRuntime, Scores
from policy.calls import burst_segments, capped_reason, stream_decision
from policy.document import CallRules
from policy.state import ChunkScored, FlaggedInput

# Characters of segment text per stream request, counted after Unicode normalization (NFKC),
# as the model works on them (a segment is about 46 characters; 1,000 segments of 100
# characters fit): bounds the work of one request.
MAX_STREAM_CHARS = 100_000


class SpanOut(BaseModel):
    """Evidence: characters [start, end) of the segment's original text."""

    start: int
    end: int
    text: str
    category: str
    source: str = Field(description="lexicon or model")
    rule_id: str | None = None


class SegmentResult(BaseModel):
    """Scores and decision of one segment."""

    index: int
    score: float
    decision: Decision
    labels: list[str]
    categories: dict[str, float]
    spans: list[SpanOut]
    novelty: float = Field(0.0, description="share of the segment's character bigrams unseen in training")
    spans_complete: bool = Field(True, description=(
        "false when the request's span budget ran out before this segment: its lexicon spans are "
        "all there, model spans are missing"))


def too_large(field: str, message: str) -> Refused:
    """413 naming the field whose size is over the limit (``error_body``'s shape)."""
    return Refused(413, error_body(413, field, message, "too_large"))


class StreamAnswers(KindAnswers[TranscriptSegment]):
    """Streams: one call is one stream's segments (a batch file groups them by ``stream_id``);
    concurrent calls share encoder batches."""

    request_fields = ("stream_id", "merchant_id")
    group_column = "stream_id"
    grouped_as = ("segment", "stream")
    micro_batched = True
    file_columns = ("segment_index",)  # a segment's place in its stream, in generated and exported files
    order_column = "segment_index"
    result_columns = ("labels", "spans", "segment_decisions")  # per segment, as JSON lists

    def __init__(self) -> None:
        super().__init__("stream_id", merchant_key)  # a live room's id compares as a merchant id

    def refusal(self, records: Sequence[TranscriptSegment], field_name: str) -> Refused | None:
        """Segments carry no ids of their own: nothing to refuse before the model is there."""
        return None

    def work_refusal(self, records: Sequence[TranscriptSegment]) -> Refused | None:
        """413 when the text is over ``MAX_STREAM_CHARS`` after Unicode normalization."""
        total = sum(normalized_length(s.text) for s in records)
        if total <= MAX_STREAM_CHARS:
            return None
        return too_large("segments", f"the segments hold {total:,} characters after Unicode normalization (NFKC); "
                         f"a stream request may hold at most {MAX_STREAM_CHARS:,}: send the stream in several "
                         "requests")

    def answer_scores(self, model: ModelRuntime, records: Sequence[TranscriptSegment], request: dict[str, Any],
                      holds: HoldLookup, scores: Scores, rules: CallRules) -> Answer:
        """Segment scores, labels, spans and decisions, then the stream's decision."""
        analyses = scores.segments or []
        burst = rules.stream_review_burst
        decision, reasons = stream_decision([a.decision for a in analyses], [s.start_ms for s in records], burst)
        capped = capped_reason([a.capped for a in analyses], [a.decision for a in analyses])
        reasons = reasons + ([capped] if capped else [])
        [decision], [rule_reasons] = apply_merchant_rule([request.get("merchant_id")], [decision], holds)
        results = [
            SegmentResult(index=i, score=a.score, decision=a.decision, labels=a.labels, categories=a.scores,
                          spans=[SpanOut(start=sp.start, end=sp.end, text=sp.text, category=sp.category,
                                         source=sp.source, rule_id=sp.rule_id) for sp in a.spans],
                          novelty=a.novelty, spans_complete=a.spans_complete)
            for i, a in enumerate(analyses)
        ]
        score, out = max(a.score for a in analyses), reasons_out(rule_reasons, reasons)
        fields = {"decision": decision, "score": score, "segments": results, "reasons": out, "model": model.tag,
                  "spans_cut_short": not all(a.spans_complete for a in analyses)}
        burst_blocked = burst_segments([a.decision for a in analyses], [s.start_ms for s in records], burst)
        return Answer(fields, [self._log_item(records, request, fields)], [self._batch_row(request, fields)],
                      tuple(burst_blocked))

    def call_key(self, records: Sequence[TranscriptSegment], request: dict[str, Any]) -> CallKey:
        """The room (normalized stream id), the chunk, the creator and the segments' hash."""
        creator = request.get("creator_id")
        digest = hashlib.sha256()
        for segment in records:  # text and times: what makes two sends of a chunk the same
            digest.update(f"{len(segment.text)}:{segment.text}:{segment.start_ms}:{segment.end_ms};".encode())
        return CallKey(merchant_key(str(request["stream_id"])), request.get("chunk"),
                       merchant_key(creator) if creator else None, digest.hexdigest())

    def enforcement_event(self, answer: Answer, records: Sequence[TranscriptSegment], request: dict[str, Any],
                          request_id: str, at: datetime) -> ChunkScored:
        """The chunk as its room sees it: its segments at review or block, and the segments a
        stream rule blocked on."""
        key = self.call_key(records, request)
        segments = answer.fields["segments"]
        merchant = request.get("merchant_id")
        return ChunkScored(at, key.stream_id, request_id, len(segments),
                           tuple(FlaggedInput(s.index, s.decision, tuple(s.labels)) for s in segments
                                 if s.decision in ("review", "block")),
                           key.creator_id, merchant_key(merchant) if merchant else None, key.chunk,
                           answer.rule_blocked)

    def repeated_log(self, records: Sequence[TranscriptSegment], request: dict[str, Any], first: dict[str, Any]
                     ) -> list[LogItem]:
        """The first answer's log item (the same segments were sent again)."""
        fields = {**first, "segments": [SegmentResult(**s) for s in first["segments"]],
                  "reasons": [ReasonOut(**r) for r in first["reasons"]]}
        return [self._log_item(records, request, fields)]

    @staticmethod
    def _log_item(records: Sequence[TranscriptSegment], request: dict[str, Any], fields: dict[str, Any]) -> LogItem:
        inputs = {"stream_id": request.get("stream_id"), "merchant_id": request.get("merchant_id"),
                  "creator_id": request.get("creator_id"), "chunk": request.get("chunk"),
                  "segments": [s.model_dump() for s in records],
                  "segment_decisions": [r.decision for r in fields["segments"]],
                  "segment_scores": [r.score for r in fields["segments"]],  # the console's deciding score
                  "segment_labels": [r.labels for r in fields["segments"]],
                  "segment_spans": [[sp.model_dump() for sp in r.spans] for r in fields["segments"]]}
        return LogItem(merchant_key(str(request.get("stream_id"))), fields["decision"], fields["score"],
                       fields["model"], fields["reasons"], inputs)

    @staticmethod
    def _batch_row(request: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        segments = fields["segments"]
        return {"id": request.get("stream_id"), "decision": fields["decision"], "score": fields["score"],
                "reasons": json.dumps([r.model_dump() for r in fields["reasons"]], ensure_ascii=False),
                "model": fields["model"],
                "labels": json.dumps([s.labels for s in segments], ensure_ascii=False),
                "spans": json.dumps([[sp.model_dump() for sp in s.spans] for s in segments], ensure_ascii=False),
                "segment_decisions": json.dumps([s.decision for s in segments])}


class SegmentCounts(BaseModel):
    """Segments at block and at review."""

    block: int
    review: int


class RoomWindow(BaseModel):
    """The flagged segments among the room's last ``segments`` segments, as the ladder weighs them."""

    segments: int
    block: int
    review: int
    weight: float


class RoomOut(BaseModel):
    """A live room's state after this call (``policy/engine.py``)."""

    action: Literal["none", "warn", "restrict", "stop"] = Field(description=(
        "the room's action now: none < warn < restrict < stop, never lowered within a broadcast except by an "
        "overturn"))
    counts: SegmentCounts = Field(description="segments at block and at review so far in the broadcast")
    window: RoomWindow = Field(description="the ladder's window (policy rooms.window_segments)")
    chunks: int = Field(description="calls the room has received")
    reasons: list[ReasonOut] = Field(description="the rule and the decisions behind the action")


class PenaltyOut(BaseModel):
    """A penalty in force."""

    kind: str
    since: datetime
    until: datetime | None = Field(description="null: until lifted")
    reason: str


class CreatorOut(BaseModel):
    """The host's credit after this call."""

    creator_id: str = Field(description="normalized (NFKC, format characters removed, trimmed, case-folded)")
    credit: int
    penalty: PenaltyOut | None


class StreamRequest(BaseModel):
    """Body of ``POST /v1/streams/score``: one call is a chunk of its live room."""

    model_config = ConfigDict(extra="forbid", strict=True)  # as the service reads it (strict_bodies)

    stream_id: ScoredId = Field(..., description="the broadcast (live room); normalized as merchant ids are")
    segments: list[TranscriptSegment] = Field(..., min_length=1, max_length=MAX_BATCH)
    merchant_id: ScoredId | None = Field(None, description="the merchant whose goods the room sells")
    creator_id: ScoredId | None = Field(None, description=(
        "the host; fixed for a stream (another one later is 409 naming creator_id)"))
    chunk: int | None = Field(None, ge=0, le=1_000_000, description=(
        "this call's sequence number in the stream: a repeat with the same segments gets the first answer and "
        "counts once; with other segments it is 409 naming chunk"))


class StreamResponse(BaseModel):
    """Answer to ``POST /v1/streams/score``."""

    request_id: str
    stream_id: str
    chunk: int | None = Field(None, description="the caller's sequence number of this call in the stream")
    decision: Decision
    score: float
    segments: list[SegmentResult]
    reasons: list[ReasonOut]
    model: str
    spans_cut_short: bool = Field(False, description="some segments' model spans were left out (span budget)")
    room: RoomOut | None = Field(None, description="the live room's action (enforcement over time)")
    creator: CreatorOut | None = Field(None, description="with creator_id: the host's credit and penalty")


ENDPOINT = Endpoint(
    name="score_stream", request=StreamRequest, records_field="segments", response=StreamResponse,
    description="Per-segment category scores, labels and evidence spans, segment decisions and the stream decision "
                "(policy in ``policy/calls.py``); the call is a chunk of its live room, whose action (``room``) and "
                "host's credit (``creator``) come with the answer (``policy/engine.py``). Concurrent calls share "
                "encoder batches (``serving/microbatch.py``). The text is measured as the model works on it, after "
                "Unicode normalization (NFKC).")
