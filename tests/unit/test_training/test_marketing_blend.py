"""The served blend of the encoder and the TF-IDF scorers (``kinds/false_marketing/blend.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from kinds.false_marketing.blend import LOGIT_CLIP, blend, blend_floor


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def test_logit_blend_is_the_weighted_mean_of_log_odds() -> None:
    transformer = np.array([[0.9, 0.2], [0.5, 0.99]])
    tfidf = np.array([[0.3, 0.2], [0.5, 0.01]])
    served = blend(transformer, tfidf, 0.25, "logit")
    expected = 1 / (1 + np.exp(-(0.25 * _logit(transformer) + 0.75 * _logit(tfidf))))
    np.testing.assert_allclose(served, expected)
    # A confident scorer outweighs an unsure one in log-odds, not in probabilities: the
    # encoder's 0.99 against TF-IDF's 0.01 at weight 0.25 stays low.
    assert served[1, 1] < 0.1 < blend(transformer, tfidf, 0.25, "probability")[1, 1]


@pytest.mark.parametrize("space", ["probability", "logit"])
def test_blend_falls_back_to_the_transformer_without_a_tfidf_column(space) -> None:
    transformer = np.array([[0.7, 0.4]])
    tfidf = np.array([[np.nan, 0.9]])
    served = blend(transformer, tfidf, 0.5, space)
    assert served[0, 0] == 0.7 and served[0, 1] > 0.4
    assert blend(transformer, tfidf, 1.0, space) is transformer
    assert blend(transformer, None, 0.5, space) is transformer


@pytest.mark.parametrize("space", ["probability", "logit"])
@pytest.mark.parametrize("weight", [0.0, 0.25, 0.75, 1.0])
def test_blend_floor_bounds_every_transformer_score(space, weight) -> None:
    rng = np.random.default_rng(0)
    tfidf = rng.random((200, 4))
    tfidf[::7, 1] = np.nan
    floor = blend_floor(tfidf, weight, space)
    for transformer in (rng.random((200, 4)), rng.random((200, 4)) * LOGIT_CLIP, np.zeros((200, 4))):
        assert (blend(transformer, tfidf, weight, space) >= floor - 1e-12).all()
    # The floor written out: the encoder at 0 (probability) or at its clip (log-odds); 0 where
    # the TF-IDF scorer has no column, since the transformer alone decides there.
    t = np.clip(np.nan_to_num(tfidf, nan=0.5), LOGIT_CLIP, 1 - LOGIT_CLIP)
    expected = ((1 - weight) * tfidf if space == "probability" else
                1 / (1 + np.exp(-(weight * _logit(np.full_like(t, LOGIT_CLIP)) + (1 - weight) * _logit(t)))))
    expected = np.zeros_like(tfidf) if weight >= 1 else np.where(np.isnan(tfidf), 0.0, expected)
    np.testing.assert_allclose(floor, expected, rtol=1e-9, atol=1e-12)
    assert (floor[::7, 1] == 0).all()
