"""The decision policy: the model decision, then rules, in one fixed, documented order.

Each rule has one owner: step 1 is the runtime's (``decide`` with the bundle's thresholds);
the stream segment rules are ``model_registry/runtimes/segment_policy.py``'s; the stream
rule and the merchant rule are this module's, applied by the kinds' answers
(``model_registry/answers/``) for the service and batch jobs alike.

Order (after step 1, each step can only raise a decision, never lower it):

1. ``decide(score, thresholds)`` - the model's own decision from the bundle's thresholds,
   taken by the runtime's ``score()`` (``Scores.decisions``), so that the service and batch
   jobs decide alike.
   Thresholds are chosen at training time: block for the precision target, review for the
   recall target, then raised to respect the **review budget** (at most 5% of ordinary
   validation traffic, real clean text included, may reach review).
   Streams: the segment rules (model-only block caps, lexicon raises, rule evidence in the
   category scores) live in one place, ``model_registry/runtimes/segment_policy.py``, which
   the runtime applies for the service and batch jobs alike and training measures on
   held-out real rooms. A segment left at review because its model-only block was capped is
   named by the stream reason ``model_only_capped``;
2. lexicon rules (streams, and the counterfeit / contact-handle rules of listings): a matched
   span of a blocking category raises a segment to ``block``, of a review category to at least
   ``review``; replica wording or a contact handle in a listing raises it to at least review;
3. merchant rule: a merchant whose latest merchant-risk decision is ``block`` raises a
   listing or stream result to at least ``review``.

When the service cannot score at all, callers get HTTP 503 with ``fallback_decision`` =
``review``: the documented fallback is never ``allow``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from features.decision import Decision, stricter
from features.reasons import Reason

FALLBACK_DECISION: Decision = "review"


@dataclass(frozen=True)
class MerchantDecision:
    """One merchant's latest decision (kept by ``serving/merchant_decisions.py``)."""

    merchant_id: str
    decision: str
    score: float
    model: str
    decided_at: datetime


def merchant_rule(decision: Decision, blocked: MerchantDecision | None) -> tuple[Decision, Reason | None]:
    """Step 3: a merchant at ``block`` raises a listing or stream result to at least review."""
    if blocked is None:
        return decision, None
    reason = Reason(
        code="merchant_blocked",
        detail=(f"merchant {blocked.merchant_id} is at block by {blocked.model} "
                f"(score {blocked.score:.3f}, decided {blocked.decided_at:%Y-%m-%d %H:%M} UTC)"),
    )
    return stricter(decision, "review"), reason


REVIEW_BURST_SEGMENTS = 3
REVIEW_BURST_WINDOW_MS = 60_000


def stream_decision(decisions: list[Decision], start_ms: list[int]) -> tuple[Decision, list[Reason]]:
    """The stream's decision from its segments (documented rule):

    - ``block`` if any segment is at block, or if ``REVIEW_BURST_SEGMENTS`` or more segments
      at review start within ``REVIEW_BURST_WINDOW_MS`` of each other (a host repeating
      claims that are each only doubtful);
    - else ``review`` if any segment is at review;
    - else ``allow``."""
    blocking = [i for i, d in enumerate(decisions) if d == "block"]
    if blocking:
        return "block", [Reason("blocking_segment", f"segment(s) {blocking[:10]} at block")]
    review = sorted((start_ms[i], i) for i, d in enumerate(decisions) if d == "review")
    for first in range(len(review)):
        window = [i for t, i in review[first:] if t - review[first][0] <= REVIEW_BURST_WINDOW_MS]
        if len(window) >= REVIEW_BURST_SEGMENTS:
            return "block", [Reason("review_burst", f"{len(window)} segments at review within "
                                    f"{REVIEW_BURST_WINDOW_MS // 1000}s: {window[:10]}")]
    if review:
        return "review", [Reason("review_segment", f"segment(s) {[i for _, i in review][:10]} at review")]
    return "allow", []


def capped_reason(capped: list[list[str]], decisions: list[Decision]) -> Reason | None:
    """The reason naming segments left at review because their model-only block was capped
    (step 1); a segment blocked on other evidence is not named."""
    segments = [i for i, (categories, decision) in enumerate(zip(capped, decisions, strict=True))
                if categories and decision != "block"]
    if not segments:
        return None
    return Reason("model_only_capped", f"segment(s) {segments[:10]}: evidence from the model alone (below "
                  "the block floor, or on text unlike the training data) is capped at review")
