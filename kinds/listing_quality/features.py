"""Feature set ``listing_quality_v1``: the one definition of listing features, used by the
training pipeline and by the scoring service alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.lexicons import BRANDS, LISTING_CUES, CueHit, find_cues_many
from features.text import normalize_many
from features.text_scorer import CharNgramScorer
from kinds.listing_quality.record import LISTING_CATEGORIES


@dataclass(frozen=True)
class FeatureSetSpec:
    """A declarative, versioned feature set: its name, version and ordered feature names."""

    name: str
    version: int
    features: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    descriptions: Mapping[str, str] = field(default_factory=dict)


LISTING_FEATURE_DESCRIPTIONS: dict[str, str] = {
    "price": "listing price",
    "log_price": "log(1 + price)",
    "discount_ratio": "price / list price (missing when no list price)",
    "price_vs_category_median": "log(price / training-time median price of the category)",
    "image_count": "number of images",
    "log_sales": "log(1 + units sold)",
    "rating": "average rating 0-5",
    "log_review_count": "log(1 + number of reviews)",
    "negative_review_rate": "share of negative reviews",
    "return_rate": "share of orders returned",
    "complaint_rate": "share of orders with a complaint",
    "title_length": "characters in the title",
    "description_length": "characters in the description",
    "counterfeit_cues": "counterfeit wording hits (高仿, 原单, 1:1 ...)",
    "unsafe_cues": "unsafe or unapproved-efficacy wording hits (三无, 速效, 根治 ...)",
    "exaggeration_cues": "superlative wording hits (全网最低, 顶级 ...)",
    "brand_mentions": "well-known brand names mentioned",
    "brand_price_gap": "brand mentioned x how far the price is below the category median",
    "text_score": "char 1-3-gram TF-IDF logistic score of title + description (fit on train only)",
    "category": "listing category (categorical)",
}

LISTING_FEATURE_SET = FeatureSetSpec(
    name="listing_quality_v1",
    version=1,
    features=tuple(LISTING_FEATURE_DESCRIPTIONS),
    categorical=("category",),
    descriptions=LISTING_FEATURE_DESCRIPTIONS,
)


@dataclass(frozen=True)
class ListingFeatureState:
    """What the feature set learns from training data: category price medians and the text
    scorer. Fit on the training split only."""

    category_median_price: dict[str, float]
    text_scorer: CharNgramScorer | None

    def to_json(self) -> dict[str, Any]:
        """JSON part of the state (the scorer's arrays are stored separately)."""
        return {
            "feature_set": LISTING_FEATURE_SET.name,
            "category_median_price": self.category_median_price,
        }


@dataclass(frozen=True)
class ListingFeatures:
    """A feature matrix (rows = listings, columns = ``LISTING_FEATURE_SET.features``) and the
    lexicon hits behind the cue features, for reasons."""

    matrix: np.ndarray
    cue_hits: list[list[CueHit]]
    texts: list[str]


def category_codes(categories: Sequence[str]) -> np.ndarray:
    """Stable integer codes of categories; unknown ones map to ``other``."""
    index = {c: i for i, c in enumerate(LISTING_CATEGORIES)}
    other = index["other"]
    return np.array([index.get(str(c), other) for c in categories], dtype=np.float64)


def fit_category_medians(categories: Sequence[str], prices: Sequence[float]) -> dict[str, float]:
    """Median price per category (and ``*`` over all) on training rows."""
    prices_arr = np.asarray(prices, dtype=np.float64)
    cats = np.asarray([str(c) for c in categories])
    medians = {"*": float(np.nanmedian(prices_arr))}
    for category in np.unique(cats):
        medians[str(category)] = float(np.nanmedian(prices_arr[cats == category]))
    return medians


def listing_text(title: str, description: str) -> str:
    """The normalized text the cue lexicons and the text scorer read."""
    return listing_texts([title], [description])[0]


def listing_texts(titles: Sequence[str], descriptions: Sequence[str | None]) -> list[str]:
    """``listing_text`` of many listings at once (one normalization pass over the batch)."""
    normalized = normalize_many([*titles, *(d or "" for d in descriptions)])
    return [t + "\n" + d for t, d in zip(normalized[:len(titles)], normalized[len(titles):], strict=True)]


def _numeric(columns: Mapping[str, Any], name: str, n_rows: int) -> np.ndarray:
    if name not in columns:
        return np.full(n_rows, np.nan)
    values = [np.nan if v is None else v for v in columns[name]]
    return np.asarray(values, dtype=np.float64)


def build_listing_features(
    columns: Mapping[str, Sequence[Any]], state: ListingFeatureState
) -> ListingFeatures:
    """Compute ``listing_quality_v1`` for a batch given as columns (a DataFrame or a dict of
    lists with the ``ListingRecord`` field names)."""
    titles = [str(t) for t in columns["title"]]
    n_rows = len(titles)
    descriptions = [("" if d is None else str(d)) for d in columns.get("description", [""] * n_rows)]
    if len(descriptions) != n_rows:
        descriptions = [""] * n_rows
    categories = [str(c) for c in columns["category"]]
    texts = listing_texts(titles, descriptions)
    groups = {**LISTING_CUES, "brand": BRANDS}
    hits = find_cues_many(texts, groups)

    def count(group: str) -> np.ndarray:
        return np.array([sum(h.group == group for h in row) for row in hits], dtype=np.float64)

    price = _numeric(columns, "price", n_rows)
    list_price = _numeric(columns, "list_price", n_rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        discount = np.where(list_price > 0, price / list_price, np.nan)
    medians = np.array(
        [state.category_median_price.get(c, state.category_median_price["*"]) for c in categories]
    )
    price_vs_median = np.log1p(price) - np.log1p(medians)
    brands = count("brand")
    text_score = (
        state.text_scorer.score(texts) if state.text_scorer is not None else np.full(n_rows, np.nan)
    )
    feature_columns = {
        "price": price,
        "log_price": np.log1p(price),
        "discount_ratio": discount,
        "price_vs_category_median": price_vs_median,
        "image_count": _numeric(columns, "image_count", n_rows),
        "log_sales": np.log1p(_numeric(columns, "sales", n_rows)),
        "rating": _numeric(columns, "rating", n_rows),
        "log_review_count": np.log1p(_numeric(columns, "review_count", n_rows)),
        "negative_review_rate": _numeric(columns, "negative_review_rate", n_rows),
        "return_rate": _numeric(columns, "return_rate", n_rows),
        "complaint_rate": _numeric(columns, "complaint_rate", n_rows),
        "title_length": np.array([len(t) for t in titles], dtype=np.float64),
        "description_length": np.array([len(d) for d in descriptions], dtype=np.float64),
        "counterfeit_cues": count("counterfeit"),
        "unsafe_cues": count("unsafe"),
        "exaggeration_cues": count("exaggeration"),
        "brand_mentions": brands,
        "brand_price_gap": brands * np.clip(-price_vs_median, 0, None),
        "text_score": text_score,
        "category": category_codes(categories),
    }
    matrix = np.column_stack([feature_columns[name] for name in LISTING_FEATURE_SET.features])
    return ListingFeatures(matrix=matrix, cue_hits=hits, texts=texts)
