"""The decision policy: the model decision, then rules, in one fixed, documented order.

Order (each step can only raise a decision, never lower it):

1. ``decide(score, thresholds)`` - the model's own decision from the bundle's thresholds;
2. lexicon rules (streams): a matched span of a blocking category raises to ``block``;
3. merchant rule: a merchant whose latest merchant-risk decision is ``block`` raises a
   listing or stream result to at least ``review``.

When the service cannot score at all, callers get HTTP 503 with ``fallback_decision`` =
``review``: the documented fallback is never ``allow``.
"""

from __future__ import annotations

from features.decision import Decision, Thresholds, decide

FALLBACK_DECISION: Decision = "review"


def model_decision(score: float, thresholds: Thresholds) -> Decision:
    """Step 1 of the policy."""
    return decide(score, thresholds)
