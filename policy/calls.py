"""The per-call rules: after the model, in one fixed, documented order.

Each rule has one owner: step 1 is the runtime's (``decide`` with the bundle's thresholds);
the stream segment rules are ``policy/segments.py``'s; the stream burst rule, the listing
wording rule and the merchant rule are this module's, applied by the kinds' answers
(``kinds/``) for the service and batch jobs alike, with the parameters of
the policy file (``policy/document.py``: ``calls``).

Order (after step 1, each step can only raise a decision, never lower it):

1. ``decide(score, thresholds)`` - the model's own decision from the bundle's thresholds,
   taken by the runtime's ``score()`` (``Scores.decisions``), so that the service and batch
   jobs decide alike.
   Thresholds are chosen at training time: block for the precision target, review for the
   recall target, then raised to respect the **review budget** (at most 5% of ordinary
   validation traffic, real clean text included, may reach review).
   Streams: the segment rules (model-only block caps, lexicon raises, rule evidence in the
   category scores) live in one place, ``policy/segments.py``, which the runtime applies for
   the service and batch jobs alike and training measures on held-out real rooms. A segment
   left at review because its model-only block was capped is named by the stream reason
   ``model_only_capped``;
2. lexicon rules (streams, and the counterfeit / contact-handle rules of listings): a matched
   span of a blocking rule raises a segment to ``block`` (of one the bundle lists among
   ``review_only_rules``, and of a review rule, to at least ``review``); replica wording or a contact handle in a listing raises it to at least review;
   the stream burst rule blocks a stream with ``calls.stream_review_burst.segments`` segments
   at review within ``window_seconds``;
3. merchant rule: a merchant on a hold (the merchant-risk model's block, or a points
   milestone: ``policy/engine.py``) raises a listing or stream result to at least
   ``calls.merchant_penalty_raises_to`` (a suspension: to block).

When the service cannot score at all, callers get HTTP 503 with ``fallback_decision`` =
``review``: the documented fallback is never ``allow``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from common.decisions import Decision, stricter
from features.marketing import LexiconMatch
from features.reasons import Reason
from policy.document import ReviewBurst

FALLBACK_DECISION: Decision = "review"
MODEL_HOLD = "model"


@dataclass(frozen=True)
class MerchantHold:
    """A merchant's penalty in force: what it raises the merchant's results to and why."""

    merchant_id: str
    kind: str  # review_hold | suspension
    cause: str  # MODEL_HOLD (the merchant-risk model's block) or "points"
    detail: str
    raises_to: Decision
    until: datetime | None


def merchant_rule(decision: Decision, hold: MerchantHold | None) -> tuple[Decision, Reason | None]:
    """Step 3: a merchant on a hold raises a listing or stream result to at least ``raises_to``."""
    if hold is None:
        return decision, None
    until = f" until {hold.until:%Y-%m-%d %H:%M} UTC" if hold.until is not None else ""
    code = "merchant_blocked" if hold.cause == MODEL_HOLD else "merchant_penalty"
    reason = Reason(code=code, detail=f"merchant {hold.merchant_id} is on {hold.kind}{until}: {hold.detail}")
    return stricter(decision, hold.raises_to), reason


def stream_decision(decisions: list[Decision], start_ms: list[int], burst: ReviewBurst | None = None
                    ) -> tuple[Decision, list[Reason]]:
    """The stream's decision from its segments (documented rule):

    - ``block`` if any segment is at block, or if ``burst.segments`` or more segments at
      review start within ``burst.window_seconds`` of each other (a host repeating claims
      that are each only doubtful);
    - else ``review`` if any segment is at review;
    - else ``allow``."""
    burst = burst or ReviewBurst()
    blocking = [i for i, d in enumerate(decisions) if d == "block"]
    if blocking:
        return "block", [Reason("blocking_segment", f"segment(s) {blocking[:10]} at block")]
    windows = _burst_windows(decisions, start_ms, burst)
    if windows:
        first = windows[0]
        return "block", [Reason("review_burst", f"{len(first)} segments at review within "
                                f"{burst.window_seconds:g}s: {first[:10]}")]
    review = sorted((start_ms[i], i) for i, d in enumerate(decisions) if d == "review")
    if review:
        return "review", [Reason("review_segment", f"segment(s) {[i for _, i in review][:10]} at review")]
    return "allow", []


def _burst_windows(decisions: list[Decision], start_ms: list[int], burst: ReviewBurst) -> list[list[int]]:
    """Each run of ``burst.segments`` or more segments at review starting within
    ``burst.window_seconds`` of its first one, in order of that first segment's start."""
    window_ms = burst.window_seconds * 1000
    review = sorted((start_ms[i], i) for i, d in enumerate(decisions) if d == "review")
    windows = []
    for first in range(len(review)):
        window = [i for t, i in review[first:] if t - review[first][0] <= window_ms]
        if len(window) >= burst.segments:
            windows.append(window)
    return windows


def burst_segments(decisions: list[Decision], start_ms: list[int], burst: ReviewBurst | None = None) -> list[int]:
    """The segments the burst rule blocked on: those at review inside a burst window, when no
    segment is at block (a call with a block is blocked on that); [] when the rule did not fire.
    A segment at review outside every window is not among them."""
    if any(d == "block" for d in decisions):
        return []
    return sorted({i for window in _burst_windows(decisions, start_ms, burst or ReviewBurst()) for i in window})


def capped_reason(capped: list[list[str]], decisions: list[Decision]) -> Reason | None:
    """The reason naming segments left at review because their model-only block was capped
    (step 1); a segment blocked on other evidence is not named."""
    segments = [i for i, (categories, decision) in enumerate(zip(capped, decisions, strict=True))
                if categories and decision != "block"]
    if not segments:
        return None
    return Reason("model_only_capped", f"segment(s) {segments[:10]}: evidence from the model alone (below "
                  "the block floor, or on text unlike the training data) is capped at review")


MAX_RULE_REASONS = 3  # a result names at most this many reasons, the rule's first

WORDING_REASONS = {"counterfeit": "counterfeit_wording", "off_platform": "contact_handle"}
BRAND_PRICE_REASON = "replica_brand_price"


def wording_rule(decision: Decision, reasons: list[Reason], matches: list[LexiconMatch],
                 brand_price: str | None = None) -> tuple[Decision, list[Reason]]:
    """Replica wording or a contact handle in a listing is evidence on its own: the decision is
    raised to at least review, whatever the price and images, with a reason naming the words
    and the rule (the lexicon of ``features/marketing.py``). Replica wording beside a
    well-known brand at an implausible price (``brand_price``: what was found, said in the
    reason) is strong evidence: the listing is blocked."""
    found: dict[str, list[str]] = {}
    for match in matches:
        found.setdefault(match.category, [])
        if f"{match.text} ({match.rule_id})" not in found[match.category]:
            found[match.category].append(f"{match.text} ({match.rule_id})")
    added = [Reason(WORDING_REASONS[category], f"wording in the title or description: {', '.join(words[:5])}")
             for category, words in found.items()]
    kept = [r for r in reasons if r.code not in WORDING_REASONS.values()]
    if brand_price and "counterfeit" in found:
        added.insert(0, Reason(BRAND_PRICE_REASON, f"replica wording and {brand_price}"))
        return stricter(decision, "block"), (added + kept)[:MAX_RULE_REASONS]
    return stricter(decision, "review"), (added + kept)[:MAX_RULE_REASONS]
