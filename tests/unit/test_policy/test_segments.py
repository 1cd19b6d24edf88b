"""The segment policy: a block rule that real speech proved imprecise no longer blocks alone."""

import numpy as np

from common.decisions import Thresholds
from features.marketing import MARKETING_CATEGORIES, match_lexicon
from policy.segments import RULE_EVIDENCE_PRIOR, SegmentPolicy, blocks_alone, measured_rule_evidence

QUIET = dict.fromkeys(MARKETING_CATEGORIES, Thresholds(block=0.99, review=0.9))
CALM_SCORES = np.full(len(MARKETING_CATEGORIES), 0.01)


def _policy(rule_evidence: dict[str, float]) -> SegmentPolicy:
    return SegmentPolicy(QUIET, MARKETING_CATEGORIES, rule_evidence=rule_evidence)


def test_a_block_rule_blocks_while_unmeasured_or_precise() -> None:
    matches = match_lexicon("这个能根治高血压")
    assert any(m.rule_id == "EFF-001" and m.severity == "block" for m in matches)
    assert _policy({}).decide(CALM_SCORES, matches, 0.0).decision == "block"
    assert _policy({"EFF-001": 0.97}).decide(CALM_SCORES, matches, 0.0).decision == "block"


def test_a_block_rule_that_real_rows_proved_wrong_only_reviews() -> None:
    matches = [m for m in match_lexicon("预防大于治疗") if m.rule_id == "EFF-001"]
    assert matches
    labels = np.zeros((4, len(MARKETING_CATEGORIES)))  # four real sentences, none a claim
    evidence = measured_rule_evidence([matches] * 4, labels, MARKETING_CATEGORIES)["EFF-001"]["evidence"]
    assert evidence < RULE_EVIDENCE_PRIOR["block"]
    verdict = _policy({"EFF-001": evidence}).decide(CALM_SCORES, matches, 0.0)
    assert verdict.decision == "review"
    assert verdict.labels == ["efficacy_claim"]
    assert verdict.scores["efficacy_claim"] == round(evidence, 6)


def test_review_rules_never_block_whatever_their_evidence() -> None:
    assert not blocks_alone("review", 1.0)
    assert blocks_alone("block", RULE_EVIDENCE_PRIOR["block"])
    assert not blocks_alone("block", RULE_EVIDENCE_PRIOR["block"] - 0.01)
