"""The segment policy: a block rule that real speech proved imprecise no longer blocks alone."""

import numpy as np

from common.decisions import Thresholds
from features.marketing import MARKETING_CATEGORIES, match_lexicon
from kinds.false_marketing.decisions import review_only_rules
from policy.segments import SegmentPolicy, measured_rule_evidence

QUIET = dict.fromkeys(MARKETING_CATEGORIES, Thresholds(block=0.99, review=0.9))
CALM_SCORES = np.full(len(MARKETING_CATEGORIES), 0.01)


def _evidence(text: str, violating: list[bool], rule_id: str) -> dict:
    """``rule_id``'s measured evidence over copies of ``text``, violating (as efficacy) where said."""
    matches = [m for m in match_lexicon(text) if m.rule_id == rule_id]
    assert matches, text
    labels = np.zeros((len(violating), len(MARKETING_CATEGORIES)))
    labels[violating, MARKETING_CATEGORIES.index("efficacy_claim")] = 1
    return measured_rule_evidence([matches] * len(violating), labels, MARKETING_CATEGORIES)


def test_a_block_rule_blocks_unless_listed_review_only() -> None:
    matches = match_lexicon("这个能根治高血压")
    assert any(m.rule_id == "EFF-001" and m.severity == "block" for m in matches)
    assert SegmentPolicy(QUIET, MARKETING_CATEGORIES).decide(CALM_SCORES, matches, 0.0).decision == "block"
    listed = SegmentPolicy(QUIET, MARKETING_CATEGORIES, review_only_rules=frozenset({"EFF-001"}))
    verdict = listed.decide(CALM_SCORES, matches, 0.0)
    assert verdict.decision == "review" and "efficacy_claim" in verdict.labels


def test_rules_whose_real_matches_rarely_violate_are_review_only() -> None:
    never = _evidence("预防大于治疗", [False] * 4, "EFF-001")
    assert never["EFF-001"]["violating"] == 0 and never["EFF-001"]["severity"] == "block"
    assert review_only_rules(never, z=2.0) == frozenset({"EFF-001"})


def test_one_miss_in_few_matches_or_a_review_rule_is_not_demoted() -> None:
    one_of_two = _evidence("这个能根治高血压", [True, False], "EFF-001")
    assert review_only_rules(one_of_two, z=2.0) == frozenset()  # too few rows to judge
    mostly_right = _evidence("这个能根治高血压", [True] * 18 + [False] * 2, "EFF-001")
    assert review_only_rules(mostly_right, z=2.0) == frozenset()
    review_rule = _evidence("全网最低价", [False] * 10, "ABS-001")
    assert review_rule["ABS-001"]["severity"] == "review"
    assert review_only_rules(review_rule, z=2.0) == frozenset()


def test_a_block_counts_as_right_when_the_segment_violates_in_another_category() -> None:
    """GUA-002 (二十八天白) on real efficacy claims: wrong for its category, right to block."""
    evidence = _evidence("坚持二十八天白头减少", [True] * 3, "GUA-002")
    assert evidence["GUA-002"]["correct"] == 0 and evidence["GUA-002"]["violating"] == 3
    assert review_only_rules(evidence, z=2.0) == frozenset()
