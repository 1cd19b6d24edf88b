"""The ``listing-quality`` runtime: LightGBM text model + feature state from a bundle."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from safetensors.numpy import load_file, save_file

from common.decisions import DEFAULT_THRESHOLD_KEY, Thresholds, decide
from features.marketing import LexiconMatch, listing_rule_matches
from features.reasons import Reason, top_reasons
from features.text import normalize_many
from features.text_scorer import CharNgramScorer
from kinds.listing_quality.features import (
    LISTING_FEATURE_SET,
    ListingFeatures,
    ListingFeatureState,
    build_listing_features,
)
from kinds.listing_quality.record import LISTING_FIELDS
from kinds.runtime import (
    Explain,
    Records,
    RuntimeBase,
    Scores,
    as_columns,
    explain_cut,
)
from kinds.tree_paths import PathAttribution
from policy.calls import wording_rule
from registry.store import LoadedBundle

MODEL_FILE = "model.lgb.txt"
FEATURE_STATE_FILE = "feature_state.json"
TEXT_SCORER_FILE = "text_scorer.safetensors"


class ListingQualityModel(RuntimeBase):
    """Scores listings with the feature set it was trained on and explains each score."""

    def __init__(
        self,
        booster: lgb.Booster,
        state: ListingFeatureState,
        feature_medians: Sequence[float],
        thresholds: Thresholds,
        tag: str = "listing-quality:unsaved",
    ) -> None:
        if list(booster.feature_name()) != list(LISTING_FEATURE_SET.features):
            raise ValueError("booster features do not match feature set listing_quality_v1")
        self.booster = booster
        self.state = state
        self.feature_medians = np.asarray(feature_medians, dtype=np.float64)
        self.thresholds = thresholds
        self.tag = tag
        self.attribution = PathAttribution(booster)
        self.threads = 0  # LightGBM's num_threads (0: OpenMP's default)

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the model files (LightGBM text, JSON, safetensors) into ``folder``."""
        self.booster.save_model(str(folder / MODEL_FILE))
        state_json: dict[str, Any] = {
            **self.state.to_json(),
            "feature_medians": [None if np.isnan(v) else float(v) for v in self.feature_medians],
        }
        (folder / FEATURE_STATE_FILE).write_text(json.dumps(state_json, indent=2), encoding="utf-8")
        if self.state.text_scorer is not None:
            save_file(self.state.text_scorer.to_arrays(), str(folder / TEXT_SCORER_FILE))

    @classmethod
    def from_bundle(cls, bundle: LoadedBundle, *, device: str = "cpu", threads: int = 0) -> ListingQualityModel:
        """Load from a verified bundle (LightGBM runs on CPU whatever ``device`` says, on
        ``threads`` threads; 0: OpenMP's default)."""
        model = cls.from_folder(bundle.path, bundle.manifest.thresholds[DEFAULT_THRESHOLD_KEY], bundle.tag)
        model.threads = threads
        return model

    @classmethod
    def from_folder(cls, folder: Path, thresholds: Thresholds, tag: str) -> ListingQualityModel:
        """Load from files written by ``save`` (call ``from_bundle`` for registered models,
        which verifies hashes first)."""
        state_json = json.loads((folder / FEATURE_STATE_FILE).read_text(encoding="utf-8"))
        scorer_path = folder / TEXT_SCORER_FILE
        scorer = CharNgramScorer.from_arrays(load_file(str(scorer_path))) if scorer_path.exists() else None
        state = ListingFeatureState(state_json["category_median_price"], scorer)
        medians = [np.nan if v is None else v for v in state_json["feature_medians"]]
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        return cls(booster, state, medians, thresholds, tag)

    # -- scoring ---------------------------------------------------------------------------
    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probability of ``is_inferior`` for a feature matrix."""
        return np.asarray(self.booster.predict(matrix, num_threads=self.threads), dtype=np.float64)

    def score(self, records: Records, explain: Explain = "flagged") -> Scores:
        """Score listings (API records or a table with their columns). Reasons (up to 3, from
        the decision paths: ``tree_paths.py``) for review and block results by default."""
        return self.score_columns(as_columns(records, LISTING_FIELDS), explain_cut(explain, self.thresholds))

    def score_columns(self, columns: dict[str, Sequence[Any]], explain_from: float | None) -> Scores:
        """Score listings given as columns; reasons for scores >= ``explain_from`` (None: none)."""
        features = build_listing_features(columns, self.state)
        scores = self.predict_matrix(features.matrix)
        reasons: list[list[Reason]] = [[] for _ in range(len(scores))]
        explained = np.flatnonzero(scores >= explain_from) if explain_from is not None else np.array([], dtype=int)
        if len(explained):
            contributions = self.attribution.contributions(self.booster, features.matrix[explained], self.threads)
            names = LISTING_FEATURE_SET.features
            for row, i in enumerate(explained):
                reasons[i] = top_reasons(names, features.matrix[i], contributions[row, :-1],
                                         features.cue_hits[i], self.feature_medians)
        decisions = [decide(float(s), self.thresholds) for s in scores]
        for i, matches in enumerate(wording_matches(columns)):
            if matches:
                decisions[i], reasons[i] = wording_rule(decisions[i], reasons[i], matches,
                                                        brand_at_implausible_price(features, i))
        return Scores(scores=scores, decisions=decisions, reasons=reasons)


# A brand's goods under this share of the category's median price (or of the listing's own
# list price, where one is given, under half of this) are not believable as the brand's.
IMPLAUSIBLE_PRICE_SHARE = 0.3


def brand_at_implausible_price(features: ListingFeatures, row: int) -> str | None:
    """``"BRAND at PRICE (N% of ...)"`` when listing ``row`` names a well-known brand at an
    implausible price, else None."""
    brands = [hit.term for hit in features.cue_hits[row] if hit.group == "brand"]
    if not brands:
        return None
    names = LISTING_FEATURE_SET.features
    values = features.matrix[row]
    price = float(values[names.index("price")])
    median_share = float(np.exp(values[names.index("price_vs_category_median")]))  # ~ (1+price)/(1+median)
    list_share = float(values[names.index("discount_ratio")])
    if np.isfinite(list_share) and list_share <= IMPLAUSIBLE_PRICE_SHARE / 2:
        return f"brand {brands[0]} at {price:g}, {list_share:.0%} of its list price"
    if np.isfinite(median_share) and median_share <= IMPLAUSIBLE_PRICE_SHARE:
        return f"brand {brands[0]} at {price:g}, {median_share:.0%} of the category's median price"
    return None


def wording_matches(columns: dict[str, Sequence[Any]]) -> list[list[LexiconMatch]]:
    """Counterfeit-wording and contact-handle rule matches in each listing's title and description."""
    descriptions = columns.get("description") or [""] * len(columns["title"])
    texts = [f"{title} {description or ''}".strip() for title, description in
             zip(columns["title"], descriptions, strict=True)]
    return listing_rule_matches(texts, normalize_many(texts))
