"""The decision of one transcript segment from its model scores, lexicon matches and novelty:
the one place this rule lives (the runtime serves it; training measures it on held-out rooms).

Order (``policy/calls.py`` documents the stream-level steps that follow):

1. per category, the model's decision from that category's thresholds; a ``block`` from the
   model alone (no lexicon rule of that category matched) is capped at ``review`` when the
   score is below ``model_only_block_floor`` or the text's novelty is above ``novelty_cutoff``;
2. lexicon rules raise it: a ``block`` rule to block, a ``review`` rule to at least review,
   except a ``block`` rule in ``review_only_rules``, which raises to review only: training
   puts there the block rules that real labelled rooms showed wrong too often to act alone
   (治疗 in 预防大于治疗);
3. the segment takes the strictest category.

A category's reported score is the model's probability, raised to the **evidence** of a
lexicon rule of that category that matched: the rule's precision measured on real labelled
speech at training time (``rule_evidence``; rules without enough real matches take a prior
by severity). So a segment that a precise rule flags also ranks high, and the score means
"probability of a violation given everything seen", not only the model's opinion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.decisions import Decision, Thresholds, decide, stricter
from features.marketing import LexiconMatch

# Evidence of a rule without enough real matches to measure it (smoothed toward these).
RULE_EVIDENCE_PRIOR = {"block": 0.9, "review": 0.6}
MODEL_ONLY_BLOCK_FLOOR = 0.5


@dataclass(frozen=True)
class SegmentVerdict:
    """A segment's reported category scores, decision, labels and capped categories."""

    scores: dict[str, float]
    decision: Decision
    labels: list[str]
    capped: list[str]

    @property
    def score(self) -> float:
        """The segment's score: its highest category score."""
        return max(self.scores.values())


@dataclass(frozen=True)
class SegmentPolicy:
    """Thresholds and caps of one model version (all from its bundle)."""

    thresholds: dict[str, Thresholds]
    categories: tuple[str, ...]
    novelty_cutoff: float = 1.0
    model_only_block_floor: float = MODEL_ONLY_BLOCK_FLOOR
    rule_evidence: dict[str, float] = field(default_factory=dict)
    review_only_rules: frozenset[str] = frozenset()

    def evidence(self, match: LexiconMatch) -> float:
        """How much a matched rule says about its category (its measured precision, or the prior)."""
        return self.rule_evidence.get(match.rule_id, RULE_EVIDENCE_PRIOR[match.severity])

    def rule_blocks(self, match: LexiconMatch) -> bool:
        """Whether ``match`` blocks on its own: a ``block`` rule not in ``review_only_rules``."""
        return match.severity == "block" and match.rule_id not in self.review_only_rules

    def decide(self, model_scores: Sequence[float], matches: Sequence[LexiconMatch], novelty: float
               ) -> SegmentVerdict:
        """Steps 1-3 of the module docstring for one segment."""
        matched = {m.category for m in matches}
        decision: Decision = "allow"
        labels, capped = [], []
        for category, score in zip(self.categories, model_scores, strict=True):
            category_decision = decide(float(score), self.thresholds[category])
            if category_decision == "block" and category not in matched and (
                    novelty > self.novelty_cutoff or score < self.model_only_block_floor):
                category_decision = "review"
                capped.append(category)
            if category_decision != "allow":
                labels.append(category)
            decision = stricter(decision, category_decision)
        reported = {c: round(float(s), 6) for c, s in zip(self.categories, model_scores, strict=True)}
        return self.with_rules(SegmentVerdict(reported, decision, labels, capped), matches)

    def with_rules(self, verdict: SegmentVerdict, matches: Sequence[LexiconMatch]) -> SegmentVerdict:
        """Step 3 of the module docstring: ``verdict`` raised by lexicon matches (a blocking
        rule to block, any other to at least review), each labelling its category and lifting
        its score to the rule's evidence."""
        reported, decision, labels = dict(verdict.scores), verdict.decision, list(verdict.labels)
        for match in matches:
            decision = stricter(decision, "block" if self.rule_blocks(match) else "review")
            if match.category not in labels:
                labels.append(match.category)
            reported[match.category] = max(reported[match.category], round(self.evidence(match), 6))
        return SegmentVerdict(reported, decision, [c for c in self.categories if c in labels], verdict.capped)

    def decide_many(self, model_scores: np.ndarray, matches: Sequence[Sequence[LexiconMatch]],
                    novelty: np.ndarray) -> list[SegmentVerdict]:
        """``decide`` for each row."""
        return [self.decide(row, found, float(novel))
                for row, found, novel in zip(model_scores, matches, novelty, strict=True)]


def measured_rule_evidence(matches: Sequence[Sequence[LexiconMatch]], labels: np.ndarray,
                           categories: Sequence[str], prior_weight: float = 4.0,
                           ) -> dict[str, dict[str, Any]]:
    """Each rule's precision for its own category on labelled real rows, smoothed toward the
    prior of its severity with ``prior_weight`` pseudo-matches: rule id -> evidence, matches,
    correct (rows labelled with the rule's category), violating (rows labelled with any
    category: what a block decides) and severity."""
    counts: dict[str, list] = {}
    for row, found in enumerate(matches):
        for rule_id, match in {m.rule_id: m for m in found}.items():
            entry = counts.setdefault(rule_id, [match.severity, 0, 0, 0])
            entry[1] += 1
            entry[2] += int(labels[row, list(categories).index(match.category)] > 0)
            entry[3] += int(labels[row].any())
    return {rule_id: {"evidence": (hits + prior_weight * RULE_EVIDENCE_PRIOR[severity]) / (n + prior_weight),
                      "matches": n, "correct": hits, "violating": violating, "severity": severity}
            for rule_id, (severity, n, hits, violating) in sorted(counts.items())}
