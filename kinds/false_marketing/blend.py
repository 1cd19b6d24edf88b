"""The TF-IDF half of the served false-marketing score and its blend with the encoder's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from features.text_scorer import CharNgramScorer, NgramHashing, tfidf
from kinds.false_marketing.encoder import max_by_owner, split_windows

BlendSpace = Literal["probability", "logit"]
# Probabilities are clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP] before a logit blend: an int8
# encoder's 1e-7 is not surer than its 1e-4, and the clip bounds what the encoder can take away
# (``blend_floor``), which keeps the span search's bounds useful.
LOGIT_CLIP = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p / (1 - p))


def blend(transformer: np.ndarray, tfidf: np.ndarray | None, transformer_weight: float,
          space: BlendSpace = "probability") -> np.ndarray:
    """Per category, the two scorers' weighted mean of probabilities (``probability``: bundles
    without ``blend_space``) or of log-odds (``logit``: a confident scorer outweighs an unsure
    one); the transformer alone where the TF-IDF scorer has no column. Scores are float64 (the
    encoder's are), which ``blend_floor`` is exact for."""
    if tfidf is None or transformer_weight >= 1.0:
        return transformer
    if space == "logit":
        mixed = 1.0 / (1.0 + np.exp(-(transformer_weight * _logit(transformer)
                                      + (1 - transformer_weight) * _logit(np.nan_to_num(tfidf, nan=0.5)))))
    else:
        mixed = transformer_weight * transformer + (1 - transformer_weight) * tfidf
    return np.where(np.isnan(tfidf), transformer, mixed)


def windowed_blend(encoder: Callable[[list[str]], np.ndarray], tfidf_of: Callable[[list[str]], np.ndarray | None],
                   texts: Sequence[str], transformer_weight: float, space: BlendSpace) -> np.ndarray:
    """The served score (n, categories) of normalized texts: each window (``split_windows``)
    scored by the encoder and the TF-IDF scorers (``encoder``, ``tfidf_of``: their scores of
    pieces that fit a window), blended, and per text the strongest window."""
    owners, pieces = split_windows(texts)
    return max_by_owner(blend(encoder(pieces), tfidf_of(pieces), transformer_weight, space), owners, len(texts))


def blend_floor(tfidf: np.ndarray, transformer_weight: float, space: BlendSpace = "probability") -> np.ndarray:
    """The lowest blend any transformer score can give with these TF-IDF scores (0 where the
    TF-IDF scorer has no column): what bounds a score's drop in the span search."""
    return blend(np.zeros(tfidf.shape), tfidf, transformer_weight, space)


@dataclass(frozen=True)
class TfidfGroup:
    """Category scorers sharing one hashing and IDF (the trainer fits one per category on the
    same texts): one TF-IDF matrix and one sparse-dense product score them all."""

    hashing: NgramHashing
    idf: np.ndarray
    columns: list[int]
    coef: np.ndarray
    intercept: np.ndarray


def tfidf_groups(scorers: dict[str, CharNgramScorer], categories: Sequence[str]) -> list[TfidfGroup]:
    """The scorers of ``categories`` grouped by hashing and IDF."""
    members: dict[tuple[NgramHashing, bytes], list[int]] = {}
    for column, category in enumerate(categories):
        if category in scorers:
            scorer = scorers[category]
            members.setdefault((scorer.hashing, scorer.idf.tobytes()), []).append(column)
    return [TfidfGroup(hashing, scorers[categories[columns[0]]].idf, columns,
                       np.column_stack([scorers[categories[c]].coef for c in columns]),
                       np.array([scorers[categories[c]].intercept for c in columns]))
            for (hashing, _), columns in members.items()]


def tfidf_scores(scorers: dict[str, CharNgramScorer], texts: Sequence[str], categories: Sequence[str],
                 groups: list[TfidfGroup] | None = None) -> np.ndarray:
    """TF-IDF scores (rows x categories); NaN where a category has no scorer. Equal to each
    scorer's own ``score`` (one TF-IDF matrix per group instead of one per category)."""
    out = np.full((len(texts), len(categories)), np.nan)
    for group in groups if groups is not None else tfidf_groups(scorers, categories):
        logits = np.asarray(tfidf(group.hashing.counts(texts), group.idf) @ group.coef, dtype=np.float64)
        out[:, group.columns] = 1.0 / (1.0 + np.exp(-(logits + group.intercept)))
    return out
