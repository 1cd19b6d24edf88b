"""How a false-marketing run chooses its review thresholds on held-out real rooms."""

import numpy as np

from common.decisions import Thresholds
from features.marketing import MARKETING_CATEGORIES
from kinds.false_marketing.config import FalseMarketingConfig
from kinds.false_marketing.decisions import DecisionChooser

EFFICACY = MARKETING_CATEGORIES.index("efficacy_claim")
SCARCITY = MARKETING_CATEGORIES.index("false_scarcity")
COUNTERFEIT = MARKETING_CATEGORIES.index("counterfeit")


def _rows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows where clean efficacy-like talk scores up to 0.5, a third of the scarcity claims also
    score as efficacy, scarcity's block threshold falls below the efficacy cut, and five
    counterfeit rows (too few real positives: validation decides that category) score apart."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((3000, len(MARKETING_CATEGORIES)), dtype=int)
    labels[:300, EFFICACY] = 1
    labels[300:700, SCARCITY] = 1
    labels[700:705, COUNTERFEIT] = 1
    scores = rng.random(labels.shape) * 0.2
    scores[:150, EFFICACY] = rng.uniform(0.25, 0.45, 150)  # claims said in ordinary words
    scores[150:300, EFFICACY] = rng.uniform(0.45, 0.8, 150)
    scores[300:700, SCARCITY] = rng.uniform(0.3, 0.9, 400)
    scores[300:450, EFFICACY] = rng.uniform(0.3, 0.7, 150)  # scarcity claims that sound like efficacy
    scores[700:, EFFICACY] += rng.uniform(0, 0.3, 2300)
    scores[:, COUNTERFEIT] *= 0.1
    scores[700:705, COUNTERFEIT] = 0.9
    return labels, scores


def _served_flags(thresholds: dict[str, Thresholds], scores: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """A row is flagged (review or block) by a rule or by any category at its review threshold."""
    return rules | (scores >= [thresholds[c].review for c in MARKETING_CATEGORIES]).any(axis=1)


def _f1(violating: np.ndarray, flagged: np.ndarray) -> float:
    return 2 * (violating & flagged).sum() / (violating.sum() + flagged.sum())


def test_shared_review_is_the_best_segment_decision_any_one_cut_can_serve() -> None:
    """Brute force over every cut, each served as it would be (capped at a category's block):
    none beats the chosen one on the segment's F1, though scarcity blocks below that cut."""
    labels, scores = _rows(0)
    rules = np.zeros(len(labels), dtype=bool)
    rules[:20] = True  # efficacy rows a lexicon rule flags anyway
    thresholds, choices = DecisionChooser(FalseMarketingConfig(review_rule="shared")).thresholds(
        *_rows(1), labels, scores, rules)
    real = ["efficacy_claim", "false_scarcity"]
    assert [c for j, c in enumerate(MARKETING_CATEGORIES) if labels[:, j].sum() >= 20] == real
    scarcity = thresholds["false_scarcity"]
    assert scarcity.review == scarcity.block < thresholds["efficacy_claim"].review
    violating, flagged = labels.any(axis=1), _served_flags(thresholds, scores, rules)
    assert 0.05 < flagged.mean() < 0.3  # a fixture where the cut matters
    chosen = _f1(violating, flagged)
    for cut in np.unique(scores[:, [EFFICACY, SCARCITY]]):
        other = {**thresholds, **{c: Thresholds(block=thresholds[c].block, review=min(cut, thresholds[c].block))
                                  for c in real}}
        assert _f1(violating, _served_flags(other, scores, rules)) <= chosen + 1e-12
    assert all(choices[c].review_shared for c in real) and not choices["counterfeit"].review_shared
    assert thresholds["counterfeit"] == DecisionChooser(FalseMarketingConfig()).choose(*_rows(1))[0]["counterfeit"]


def test_shared_review_leaves_to_a_rule_the_claims_it_catches_anyway() -> None:
    """Worked by hand. Efficacy: 100 claims at 0.8, 100 at 0.35 that a lexicon rule flags, 100
    clean sentences at 0.4; scarcity: 50 claims at 0.9, 10 clean sentences at 0.85. Efficacy's
    own best F1 reviews from 0.35 (F1 0.8 for its category) and flags the 100 clean sentences.
    Every claim is caught without any cut (blocks at 0.8 and 0.9, the rule), so the shared cut
    takes none: segment F1 1.0 against 500 / 600. A cut chosen as if blocks flagged nothing
    would review from 0.8 and flag the 10 clean scarcity sentences (500 / 510)."""
    labels = np.zeros((1000, len(MARKETING_CATEGORIES)), dtype=int)
    scores = np.full(labels.shape, 0.05)
    labels[:200, EFFICACY] = 1
    scores[:100, EFFICACY], scores[100:200, EFFICACY], scores[200:300, EFFICACY] = 0.8, 0.35, 0.4
    labels[300:350, SCARCITY] = 1
    scores[300:350, SCARCITY] = 0.9
    scores[350:360, SCARCITY] = 0.85
    rules = np.zeros(1000, dtype=bool)
    rules[100:200] = True
    nothing = (np.zeros((10, len(MARKETING_CATEGORIES)), dtype=int), np.zeros((10, len(MARKETING_CATEGORIES))))

    def served(rule: str) -> dict[str, Thresholds]:
        return DecisionChooser(FalseMarketingConfig(review_rule=rule)).thresholds(*nothing, labels, scores, rules)[0]

    per_category, shared = served("per_category"), served("shared")
    violating = labels.any(axis=1)
    assert _f1(violating, _served_flags(per_category, scores, rules)) == 500 / 600
    assert _f1(violating, _served_flags(shared, scores, rules)) == 1.0
    assert (per_category["efficacy_claim"].review, shared["efficacy_claim"].review) == (0.35, 0.8)
    assert shared["false_scarcity"].review == 0.9


def test_the_card_says_how_each_served_threshold_came_about() -> None:
    from kinds.false_marketing.card import _threshold_note
    from training.thresholds import UNREACHABLE, best_f1_thresholds

    y = np.r_[np.ones(100), np.zeros(100)].astype(int)
    choice = best_f1_thresholds(y, np.r_[np.full(100, 0.8), np.full(100, 0.2)], confidence_z=1.5)
    shared = choice.model_copy(update={"review_shared": True,
                                       "thresholds": Thresholds(block=choice.thresholds.block, review=0.3)})
    assert _threshold_note(shared, shared.thresholds) == (
        "review shared with the other categories chosen on held-out rooms")
    raised = _threshold_note(shared, Thresholds(block=choice.thresholds.block, review=0.5))
    assert raised.endswith("raised by the review budget")
    at_block = shared.model_copy(update={"thresholds": choice.thresholds})
    assert _threshold_note(at_block, choice.thresholds).startswith("review at its block threshold")
    never = Thresholds(block=UNREACHABLE, review=UNREACHABLE)
    assert _threshold_note(shared, never) == "the model alone never flags it"
    assert _threshold_note(None, never) == "no positives in validation: the model never flags it"
