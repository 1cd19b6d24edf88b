"""How a false-marketing run chooses its review thresholds on held-out real rooms."""

import numpy as np

from features.marketing import MARKETING_CATEGORIES
from kinds.false_marketing.config import FalseMarketingConfig
from kinds.false_marketing.decisions import DecisionChooser
from training.thresholds import shared_review_threshold

EFFICACY = MARKETING_CATEGORIES.index("efficacy_claim")
SCARCITY = MARKETING_CATEGORIES.index("false_scarcity")
COUNTERFEIT = MARKETING_CATEGORIES.index("counterfeit")


def _rows(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Held-out rows where efficacy is scored lower than scarcity, as on real rooms."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((3000, len(MARKETING_CATEGORIES)), dtype=int)
    labels[:300, EFFICACY] = 1
    labels[300:500, SCARCITY] = 1
    labels[500:505, COUNTERFEIT] = 1  # too few real positives: validation decides it
    scores = rng.random(labels.shape) * 0.2
    scores[:300, EFFICACY] = rng.uniform(0.1, 0.5, 300)
    scores[300:500, SCARCITY] = rng.uniform(0.3, 0.9, 200)
    scores[500:, EFFICACY] += rng.uniform(0, 0.25, 2500)
    return labels, scores


def _validation() -> tuple[np.ndarray, np.ndarray]:
    labels, scores = _rows(1)
    return labels, scores


def test_shared_review_gives_the_real_categories_one_threshold_at_the_segment_f1() -> None:
    labels, scores = _rows()
    rules = np.zeros(len(labels), dtype=bool)
    rules[:20] = True
    chooser = DecisionChooser(FalseMarketingConfig(review_rule="shared"))
    thresholds, choices = chooser.thresholds(*_validation(), labels, scores, rules)
    real = [c for j, c in enumerate(MARKETING_CATEGORIES) if labels[:, j].sum() >= 20]
    assert real == ["efficacy_claim", "false_scarcity"]
    validation_only = DecisionChooser(FalseMarketingConfig()).choose(*_validation())[0]
    assert thresholds["counterfeit"] == validation_only["counterfeit"]
    others = rules | (scores[:, [j for j, c in enumerate(MARKETING_CATEGORIES) if c not in real]]
                      >= [thresholds[c].review for c in MARKETING_CATEGORIES if c not in real]).any(axis=1)
    expected = shared_review_threshold(labels.any(axis=1), scores[:, [EFFICACY, SCARCITY]], others)
    for category in real:  # one cut, capped at each category's block threshold
        assert thresholds[category].review == min(expected, thresholds[category].block)
    assert thresholds["efficacy_claim"].review == expected < thresholds["efficacy_claim"].block
    assert "shared" in choices["efficacy_claim"].objective


def test_shared_review_beats_each_category_at_its_own_best_f1_on_the_segment_decision() -> None:
    """Per-category F1 counts a violating row flagged under another category against the
    category; the segment's F1 (what acts) is higher with the shared cut."""
    labels, scores = _rows()
    no_rules = np.zeros(len(labels), dtype=bool)

    def segment_f1(rule: str) -> float:
        thresholds, _ = DecisionChooser(FalseMarketingConfig(review_rule=rule)).thresholds(
            *_validation(), labels, scores, no_rules)
        flagged = (scores >= [thresholds[c].review for c in MARKETING_CATEGORIES]).any(axis=1)
        violating = labels.any(axis=1)
        return 2 * (flagged & violating).sum() / (flagged.sum() + violating.sum())

    assert segment_f1("shared") > segment_f1("per_category")
