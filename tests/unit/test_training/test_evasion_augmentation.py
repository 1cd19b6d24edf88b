"""Generated evasions teach the false-marketing models that a disguised claim is still the claim."""

import random

import numpy as np
import pytest

from features.marketing import MARKETING_CATEGORIES
from features.text import normalize_many
from kinds.false_marketing.pipeline import (
    FalseMarketingConfig,
    FalseMarketingTrainer,
    MarketingData,
)
from training.data.evasions import (
    KINDS,
    disguise,
    evasion_rows,
    generate,
    sample_evasions,
    target_span,
)

CLAIMS = ["这个产品能治疗高血压，吃一个月就好", "增强免疫力，老人小孩都能吃", "最后3单马上下架了"]


def test_every_kind_disguises_a_sensitive_word_and_keeps_the_rest() -> None:
    evasions = generate(CLAIMS, seed=1)
    assert {e.kind for e in evasions} == set(KINDS)
    for evasion in evasions:
        original = CLAIMS[evasion.row]
        assert evasion.text != original
        common = sum(1 for a, b in zip(original, evasion.text, strict=False) if a == b)
        assert common >= len(original) // 3, (original, evasion.text)  # one word changed, not the sentence
    assert generate(CLAIMS, seed=1) == evasions  # seeded


@pytest.mark.parametrize("kind", KINDS)
def test_a_disguise_differs_from_the_word(kind: str) -> None:
    import random

    disguised = disguise("治疗", kind, random.Random(0))
    assert disguised is not None and disguised != "治疗"


def test_evasion_rows_copy_only_violating_rows_with_their_labels() -> None:
    texts = [*CLAIMS, "今天天气不错，大家好"]
    labels = np.zeros((4, len(MARKETING_CATEGORIES)), dtype=np.float32)
    labels[0, MARKETING_CATEGORIES.index("efficacy_claim")] = 1
    labels[1, MARKETING_CATEGORIES.index("efficacy_claim")] = 1
    labels[2, MARKETING_CATEGORIES.index("false_scarcity")] = 1
    copies, copy_labels = evasion_rows(texts, labels, copies=2, seed=0)
    assert len(copies) == len(copy_labels) == 6  # two per violating row, none of the clean one
    assert copy_labels.any(axis=1).all()
    assert len(sample_evasions(CLAIMS, 1, seed=0)) == 3


def test_the_trainer_adds_evaded_copies_of_real_violating_rows_only() -> None:
    texts = [*CLAIMS, "今天天气不错，大家好", "生成的一句话"]
    labels = np.zeros((5, len(MARKETING_CATEGORIES)), dtype=np.float32)
    labels[:3, MARKETING_CATEGORIES.index("efficacy_claim")] = 1
    labels[4, MARKETING_CATEGORIES.index("efficacy_claim")] = 1  # generated: never copied
    data = MarketingData(texts, labels, groups=np.array(["a", "a", "b", "b", None], dtype=object))
    normalized = normalize_many(texts)
    rows = np.arange(5)
    base = FalseMarketingTrainer(FalseMarketingConfig(evasion_copies=0))._training_rows(data, rows, normalized)
    augmented = FalseMarketingTrainer(FalseMarketingConfig(evasion_copies=1))._training_rows(data, rows, normalized)
    assert len(base[0]) == 5
    added = len(augmented[0]) - 5
    assert 1 <= added <= 3  # one per real violating row, less any that normalization undoes
    assert augmented[4][5:].all() and augmented[1][5:].any(axis=1).all()  # real, violating
    assert np.all(augmented[2][5:] == FalseMarketingConfig().real_weight)
    assert not set(augmented[0][5:]) & set(normalized)  # disguised, not the originals again


def test_a_word_the_host_already_masked_is_not_the_one_disguised_again() -> None:
    """关某节 matches the masked-word rule (EFF-013); the generator disguises a word said plainly
    (降血压), so a sentence's copies are the same whether or not that rule exists."""
    text = "吃了以后关某节不疼了 还能降血压"
    spans = {target_span(text, random.Random(seed))[:2] for seed in range(30)}
    assert spans and all(text[start:end] in "还能降血压" for start, end in spans)
    assert target_span("关某节不疼了", random.Random(0))[2] != "lexicon"
