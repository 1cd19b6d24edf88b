"""The service's answers as functions of a runtime, the records and the standing merchant
decisions. The HTTP service and batch jobs (``serving/batch.py``) build their results with
these, so both decide exactly alike (policy order in ``serving/policy.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from features.decision import Decision
from features.ids import merchant_key
from features.reasons import Reason
from features.schemas import ListingRecord, MerchantRecord, TranscriptSegment
from model_registry.runtimes.base import Scores
from serving.merchant_decisions import MerchantDecision
from serving.policy import capped_reason, merchant_rule, stream_decision
from serving.schemas import ListingResult, MerchantResult, ReasonOut, SegmentResult, SpanOut

MAX_REASONS = 3
# Standing blocks among normalized merchant ids (features/ids.py: merchant_key), by that id.
BlockedLookup = Callable[[set[str]], dict[str, MerchantDecision]]


def no_blocks(_merchant_ids: set[str]) -> dict[str, MerchantDecision]:
    """The lookup of a job run without merchant decisions."""
    return {}


def reasons_out(rule_reasons: Sequence[Reason], model_reasons: Sequence[Reason]) -> list[ReasonOut]:
    """Rule reasons first, then the model's, at most ``MAX_REASONS``."""
    return [ReasonOut(code=r.code, detail=r.detail) for r in [*rule_reasons, *model_reasons]][:MAX_REASONS]


def apply_merchant_rule(merchant_ids: Sequence[str | None], decisions: Sequence[Decision],
                        blocked: BlockedLookup) -> tuple[list[Decision], list[list[Reason]]]:
    """Policy step 3 for each item: raised decisions and the rule's reasons. Merchant ids are
    compared normalized (``features/ids.py``); a reason names the id as the item gave it."""
    keys = [merchant_key(m) if isinstance(m, str) else "" for m in merchant_ids]
    standing = blocked({k for k in keys if k})
    raised, reasons = [], []
    for merchant_id, key, decision in zip(merchant_ids, keys, decisions, strict=True):
        found = standing.get(key) if key else None
        if found is not None:
            found = dataclasses.replace(found, merchant_id=merchant_id)
        new_decision, reason = merchant_rule(decision, found)
        raised.append(new_decision)
        reasons.append([reason] if reason else [])
    return raised, reasons


def listing_results(model: Any, listings: Sequence[ListingRecord], blocked: BlockedLookup) -> list[ListingResult]:
    """One result per listing, in order."""
    scored = model.score(listings)
    decisions, rule_reasons = apply_merchant_rule([r.merchant_id for r in listings], scored.decisions, blocked)
    return [ListingResult(listing_id=record.listing_id, decision=decision, score=round(float(score), 6),
                          reasons=reasons_out(rules, reasons), model=model.tag)
            for record, score, decision, rules, reasons in zip(
                listings, scored.scores, decisions, rule_reasons, scored.reasons, strict=True)]


def merchant_results(model: Any, merchants: Sequence[MerchantRecord],
                     scored: Scores | None = None) -> list[MerchantResult]:
    """One result per merchant, in order (``scored``: the model's scores when already
    computed, as batch jobs do from catalogue-wide graph features)."""
    scored = scored if scored is not None else model.score(merchants)
    return [MerchantResult(merchant_id=m.merchant_id, decision=decision, score=round(float(s), 6),
                           reasons=reasons_out([], reasons), model=model.tag)
            for m, s, decision, reasons in zip(merchants, scored.scores, scored.decisions, scored.reasons, strict=True)]


@dataclass
class StreamAnswer:
    """A stream's decision and its segments' results."""

    decision: Decision
    score: float
    segments: list[SegmentResult]
    reasons: list[ReasonOut]
    model: str
    spans_cut_short: bool


def stream_answer(model: Any, segments: Sequence[TranscriptSegment], merchant_id: str | None,
                  blocked: BlockedLookup, scores: Scores | None = None) -> StreamAnswer:
    """Segment scores, labels, spans and decisions, then the stream's decision. ``scores``:
    the model's scores of ``segments`` when already computed (the service's micro-batcher)."""
    analyses = (scores if scores is not None else model.score(segments)).segments
    decision, reasons = stream_decision([a.decision for a in analyses], [s.start_ms for s in segments])
    capped = capped_reason([a.capped for a in analyses], [a.decision for a in analyses])
    reasons = reasons + ([capped] if capped else [])
    [decision], [rule_reasons] = apply_merchant_rule([merchant_id], [decision], blocked)
    results = [
        SegmentResult(index=i, score=a.score, decision=a.decision, labels=a.labels, categories=a.scores,
                      spans=[SpanOut(start=sp.start, end=sp.end, text=sp.text, category=sp.category,
                                     source=sp.source, rule_id=sp.rule_id) for sp in a.spans],
                      novelty=a.novelty, spans_complete=a.spans_complete)
        for i, a in enumerate(analyses)
    ]
    return StreamAnswer(decision, max(a.score for a in analyses), results, reasons_out(rule_reasons, reasons),
                        model.tag, not all(a.spans_complete for a in analyses))
