import numpy as np
import pytest

from features.lexicons import BRANDS, LISTING_CUES, find_cues, find_cues_many
from features.text_scorer import CharNgramScorer, NgramHashing, smooth_idf
from kinds.listing_quality.features import (
    LISTING_FEATURE_SET,
    ListingFeatureState,
    build_listing_features,
    fit_category_medians,
)


def _column(features, name):
    return features.matrix[:, LISTING_FEATURE_SET.features.index(name)]


@pytest.fixture()
def state() -> ListingFeatureState:
    return ListingFeatureState(fit_category_medians(["beauty", "beauty", "food"], [100.0, 200.0, 40.0]), None)


def test_category_medians_include_a_global_fallback(state) -> None:
    assert state.category_median_price == {"*": 100.0, "beauty": 150.0, "food": 40.0}


def test_price_against_category_median_and_discount(state) -> None:
    columns = {"title": ["口红", "坚果"], "category": ["beauty", "food"], "price": [15.0, 40.0],
               "list_price": [150.0, None]}
    features = build_listing_features(columns, state)
    assert features.matrix.shape == (2, len(LISTING_FEATURE_SET.features))
    below = _column(features, "price_vs_category_median")
    assert below[0] == pytest.approx(np.log1p(15) - np.log1p(150))
    assert below[1] == pytest.approx(0.0)
    discount = _column(features, "discount_ratio")
    assert discount[0] == pytest.approx(0.1)
    assert np.isnan(discount[1])


def test_missing_optional_columns_become_nan(state) -> None:
    features = build_listing_features({"title": ["口红"], "category": ["beauty"], "price": [10.0]}, state)
    for name in ("rating", "return_rate", "image_count", "text_score"):
        assert np.isnan(_column(features, name)[0])


def test_cue_counts_see_through_evasion(state) -> None:
    columns = {"title": ["香奈兒 高 仿 口紅 1:1"], "description": ["三無產品"], "category": ["beauty"],
               "price": [9.9]}
    features = build_listing_features(columns, state)
    assert _column(features, "counterfeit_cues")[0] == 2  # 高仿, 1:1
    assert _column(features, "unsafe_cues")[0] == 1  # 三无
    assert _column(features, "brand_mentions")[0] == 1
    assert _column(features, "brand_price_gap")[0] > 0


def test_unknown_category_maps_to_other(state) -> None:
    features = build_listing_features({"title": ["x"], "category": ["garden"], "price": [1.0]}, state)
    assert _column(features, "category")[0] == 8  # index of "other"


def test_cue_matching_prefers_longest_term() -> None:
    hits = find_cues("大牌平替同厂", LISTING_CUES)
    assert [h.term for h in hits] == ["大牌平替同厂"]


def test_text_scorer_round_trips_through_arrays() -> None:
    hashing = NgramHashing(n_features=2**10)
    texts = ["高仿包包", "正品口红", "原单a货"]
    idf = smooth_idf(hashing.counts(texts))
    scorer = CharNgramScorer(hashing, idf, np.linspace(-1, 1, 2**10).astype(np.float32), 0.1)
    restored = CharNgramScorer.from_arrays(scorer.to_arrays())
    np.testing.assert_allclose(restored.score(texts), scorer.score(texts))
    assert ((scorer.score(texts) > 0) & (scorer.score(texts) < 1)).all()


def test_text_scorers_saved_before_the_hash_scheme_was_recorded_use_murmur() -> None:
    hashing = NgramHashing(n_features=2**10, scheme="murmur")
    scorer = CharNgramScorer(hashing, np.ones(2**10, np.float32), np.zeros(2**10, np.float32), 0.0)
    arrays = scorer.to_arrays()
    arrays["hashing"] = arrays["hashing"][:3]  # the layout of bundles made before 2026-11-30
    assert CharNgramScorer.from_arrays(arrays).hashing.scheme == "murmur"
    assert CharNgramScorer.from_arrays(scorer.to_arrays()).hashing == hashing


def test_codepoint_hashing_counts_the_same_ngrams_as_murmur() -> None:
    texts = ["高仿包包 1:1", "", "a", "ab", "正品口红正品", "x\ny\u00e9\U0001F600"]
    for n_features in (2**16, 1000):
        codepoint = NgramHashing(n_features=n_features, ngram_min=1, ngram_max=3).counts(texts)
        murmur = NgramHashing(n_features=n_features, scheme="murmur").counts(texts)
        np.testing.assert_array_equal(codepoint.sum(axis=1), murmur.sum(axis=1))
        assert codepoint.has_sorted_indices and codepoint.nnz == murmur.nnz  # no collisions at this size
        # "正品" occurs twice in one text: one column holding 2.
        assert codepoint[4].max() == 2


def test_batch_cue_matching_equals_one_text_at_a_time() -> None:
    texts = ["高仿原单1:1 nike", "", "全网最低价 顶级", "三无产品速效", "普通文字"]
    groups = {**LISTING_CUES, "brand": BRANDS}
    assert find_cues_many(texts, groups) == [find_cues(t, groups) for t in texts]
