"""Real-world checks: how a trained text model decides on real text held out from training.

Every training run of ``listing-quality`` and ``false-marketing`` runs these on the check
part of ``../shared/data`` (``training.data.real_text``), through the same runtime and
decision code the service uses, and the card shows them next to the synthetic test figures.
``shopguard evaluate`` runs them on a registered version, and the file checks on any file.
Rates carry Wilson 95% intervals; AUCs a bootstrap 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from common.decisions import Thresholds, decide
from features.marketing import MARKETING_CATEGORIES
from registry.bundle import sha256_file
from registry.metrics import Direction, RealCheck, RealWorldChecks
from training.classification_metrics import precision_recall
from training.data import real_text
from training.thresholds import wilson_interval

if TYPE_CHECKING:
    from kinds.false_marketing.runtime import FalseMarketingModel
    from kinds.listing_quality.runtime import ListingQualityModel

NEUTRAL_PRICES = (19.9, 49.0, 99.0, 199.0, 399.0)
MAX_ROWS = {"reviews": 1500, "titles": 800, "ingame": 3000}
# The least evidence an interval needs before a target can be shown met: resampling fewer groups
# than this (2 rooms resample to 3 distinct sets) or a statistic of fewer positive (for a ROC-AUC,
# also negative) rows gives an interval that looks tight and means nothing, so none is given and
# the verdict is ``not shown``.
MIN_GROUPS = 10
MIN_CLASS_ROWS = 10


def missing(reason: str) -> RealWorldChecks:
    """The record of a run without real data: says plainly that the checks are missing."""
    return RealWorldChecks(available=False, note=f"Real-world checks are MISSING: {reason}. The figures "
                           "in this card are synthetic only and say nothing about real text.")


def wilson(count: int, rows: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion."""
    if rows == 0:
        return None, None
    low, high = wilson_interval(np.array([count / rows]), np.array([rows]), z)
    return float(max(0.0, low[0])), float(min(1.0, high[0]))


def rate_check(key: str, description: str, hits: Sequence[bool], target: float | None = None,
               direction: Direction | None = None) -> RealCheck:
    """A proportion with its Wilson interval."""
    count, rows = int(np.sum(hits)), len(hits)
    low, high = wilson(count, rows)
    return RealCheck(key=key, description=description, metric="rate", rows=rows, count=count,
                     value=count / rows if rows else None, low=low, high=high, target=target,
                     direction=direction)


def auc_check(key: str, description: str, labels: np.ndarray, scores: np.ndarray, n_boot: int = 200,
              seed: int = 0, target: float | None = None) -> RealCheck:
    """ROC-AUC with a bootstrap interval; none (its target ``not shown``) with fewer than
    ``MIN_CLASS_ROWS`` positive or negative rows."""
    rng = np.random.default_rng(seed)
    value = float(roc_auc_score(labels, scores))
    boots = []
    positives = int(np.sum(labels))
    for _ in range(n_boot if min(positives, len(labels) - positives) >= MIN_CLASS_ROWS else 0):
        index = rng.integers(0, len(labels), len(labels))
        if labels[index].min() != labels[index].max():
            boots.append(roc_auc_score(labels[index], scores[index]))
    low, high = (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))) if boots else (None, None)
    return RealCheck(key=key, description=description, metric="roc_auc", rows=len(labels),
                     count=int(labels.sum()), value=value, low=low, high=high, target=target,
                     direction="at_least" if target is not None else None)


def _sample(items: Sequence[str], limit: int, seed: int = 0) -> list[str]:
    if len(items) <= limit:
        return list(items)
    index = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[i] for i in index]


def _held_out(items: Sequence[str], exclude: set[str]) -> list[str]:
    return [t for t in items if real_text.is_check_text(t) and t not in exclude]


# -- false-marketing ------------------------------------------------------------------------

def segment_decisions(model: FalseMarketingModel, texts: Sequence[str]) -> np.ndarray:
    """The served decision of each segment (spans are not needed for a decision)."""
    return np.array([a.decision for a in model.analyze(list(texts), spans_from_model=False)], dtype=object)


def flagged_segments(model: FalseMarketingModel, texts: Sequence[str]) -> np.ndarray:
    """True where the served decision of a segment is review or block."""
    return segment_decisions(model, texts) != "allow"


def marketing_checks(model: FalseMarketingModel, root: Path | None = None,
                     exclude: set[str] | None = None, review_budget: float = 0.05) -> RealWorldChecks:
    """The real-world checks of a false-marketing model on the check part of the shared data."""
    root = root or real_text.shared_data_dir()
    if root is None:
        return missing("../shared/data was not found when this ran")
    exclude = exclude or set()
    ads = _held_out([p for a in real_text.ad_copy(root) if real_text.is_check_text(a)
                     for p in real_text.pieces(a)], exclude)
    reviews = _sample(_held_out([p for r in real_text.reviews(root)["review"] if real_text.is_check_text(r)
                                 for p in real_text.pieces(r)[:1]], exclude), MAX_ROWS["reviews"])
    titles = _sample(_held_out(list(real_text.product_titles(root)), exclude), MAX_ROWS["titles"])
    cases = [c for c in real_text.regulator_cases(root) if real_text.is_check_text(c.key)
             and not set(c.segments()) & exclude]
    case_segments = [c.segments() for c in cases]
    flat = [s for segments in case_segments for s in segments]
    ends = np.cumsum([len(segments) for segments in case_segments])[:-1]
    caught = [bool(part.any()) for part in np.split(flagged_segments(model, flat), ends)]
    mixture = segment_decisions(model, ads + reviews + titles)  # one pass; every rate below reads it
    mixture_flags = mixture != "allow"
    n_ads, n_reviews = len(ads), len(reviews)
    checks = [
        rate_check("clean_ad_copy_flagged", "real seller ad copy (mostly lawful) sent to review or block",
                   mixture_flags[:n_ads], 0.10, "at_most"),
        rate_check("clean_ad_copy_blocked", "real seller ad copy blocked", mixture[:n_ads] == "block",
                   0.02, "at_most"),
        rate_check("clean_reviews_flagged", "real shopping reviews (buyers' words) sent to review or block",
                   mixture_flags[n_ads:n_ads + n_reviews], 0.10, "at_most"),
        rate_check("clean_titles_flagged", "real product titles read as speech, sent to review or block",
                   mixture_flags[n_ads + n_reviews:], 0.10, "at_most"),
        rate_check("clean_mixture_flagged", f"real clean mixture (all three) flagged; review budget "
                   f"{review_budget:.0%} for the model, lexicon rules on top", mixture_flags, 0.10, "at_most"),
        rate_check("regulator_cases_caught", "held-out regulator-penalised ads with any claim segment "
                   "flagged (review or block)", caught, 0.80, "at_least"),
    ]
    validation = real_text.ingame_ads(root, "validation")
    validation = validation[~validation["text"].isin(exclude)]
    sample = validation.sample(n=min(len(validation), MAX_ROWS["ingame"]), random_state=0)
    scores = model.predict(sample["text"].astype(str).tolist())[:, MARKETING_CATEGORIES.index("off_platform")]
    checks.append(auc_check("ingame_ads_off_platform_auc", "in-game ad spam (validation file): ROC-AUC "
                            "of the off_platform score (reference TF-IDF + LR: 0.892)",
                            sample["label"].to_numpy().astype(int), scores, target=0.85))
    return RealWorldChecks(available=True, note=_note(root, exclude, "thresholds, model-only block caps, lexicon rules"),
                           checks=checks,
                           sources=real_text.source_hashes(root))


def _note(root: Path, exclude: set[str], decisions: str) -> str:
    return (f"Held-out check part of {root} (salted-hash {real_text.CHECK_SHARE:.0%} of each real "
            f"source, never used by the generators); training texts that overlap a check set "
            f"({len(exclude):,} training texts compared) are left out of it. Decisions are the "
            f"service's ({decisions}).")


# -- listing-quality ------------------------------------------------------------------------

def neutral_listings(titles: Sequence[str]) -> dict[str, list]:
    """Listings with real titles and neutral attributes: category other, price equal to list
    price, 5 images, no description and no sales history."""
    prices = [NEUTRAL_PRICES[i % len(NEUTRAL_PRICES)] for i in range(len(titles))]
    return {"title": list(titles), "description": [""] * len(titles), "category": ["other"] * len(titles),
            "price": prices, "list_price": prices, "image_count": [5] * len(titles)}


def counterfeit_listings(titles: Sequence[str]) -> dict[str, list]:
    """The same real titles with a counterfeit defect injected: copy wording and a famous brand
    at a small fraction of its list price."""
    cues = ("高仿", "1:1复刻", "原单", "超a")
    return {"title": [f"香奈儿 {cues[i % len(cues)]} {t}" for i, t in enumerate(titles)],
            "description": [""] * len(titles), "category": ["beauty"] * len(titles),
            "price": [29.9] * len(titles), "list_price": [899.0] * len(titles), "image_count": [5] * len(titles)}


# Replica wording as counterfeit sellers write it (jargon, ratios, pinyin, brand initials),
# written for these checks; listing_checks adds one to each held-out real title.
COUNTERFEIT_WORDING = ("一比一", "1:1", "高仿", "精仿", "原单", "尾单", "顶级复刻", "莆田鞋", "纯原", "公司级",
                       "高版本", "GAO FANG", "L家新款", "a货", "原版皮", "大牌同厂", "超a", "1比1")


def jargon_listings(titles: Sequence[str]) -> dict[str, list]:
    """The real titles with replica wording added and neutral attributes (the price equal to the
    list price, 5 images): only the words say counterfeit."""
    columns = neutral_listings([f"{COUNTERFEIT_WORDING[i % len(COUNTERFEIT_WORDING)]} {t}"
                                for i, t in enumerate(titles)])
    return columns


def listing_decisions(model: ListingQualityModel, columns: dict[str, list]) -> list[str]:
    """The served decision of each listing (model thresholds only; no merchant rule)."""
    return model.score(pd.DataFrame(columns), explain="none").decisions


def listing_checks(model: ListingQualityModel, root: Path | None = None,
                   exclude: set[str] | None = None) -> RealWorldChecks:
    """The real-world checks of a listing-quality model on held-out real titles."""
    root = root or real_text.shared_data_dir()
    if root is None:
        return missing("../shared/data was not found when this ran")
    titles = _sample(_held_out(list(real_text.product_titles(root)), exclude or set()), 1200)
    neutral = listing_decisions(model, neutral_listings(titles))
    injected = listing_decisions(model, counterfeit_listings(titles))
    jargon = listing_decisions(model, jargon_listings(titles))
    checks = [
        rate_check("real_titles_blocked", "held-out real titles, neutral attributes: blocked",
                   [d == "block" for d in neutral], 0.02, "at_most"),
        rate_check("real_titles_review", "held-out real titles, neutral attributes: sent to review",
                   [d == "review" for d in neutral], 0.15, "at_most"),
        rate_check("injected_counterfeit_caught", "the same titles with copy wording and a brand at 3% of "
                   "its list price: review or block", [d != "allow" for d in injected], 0.90, "at_least"),
        rate_check("injected_counterfeit_blocked", "the same titles with copy wording and a brand at 3% of its "
                   "list price: blocked (replica wording and a brand at an implausible price)",
                   [d == "block" for d in injected], 0.90, "at_least"),
        rate_check("jargon_titles_caught", "the same titles with replica wording (一比一, 莆田, GAO FANG, L家 ...) "
                   "at a neutral price and 5 images: review or block", [d != "allow" for d in jargon], 0.80,
                   "at_least"),
    ]
    return RealWorldChecks(available=True, note=_note(root, exclude or set(), "the model's thresholds"), checks=checks,
                           sources={str(root / real_text.TITLES_FILE): sha256_file(root / real_text.TITLES_FILE)})


def decision_checks(positive: np.ndarray, scores: np.ndarray, thresholds: Thresholds) -> RealWorldChecks:
    """Block and review rates of acceptable rows and the share of positives caught, from
    scores and thresholds (the synthetic counterparts of the listing checks)."""
    decisions = np.array([decide(float(s), thresholds) for s in scores])
    return RealWorldChecks(available=True, note="test split", checks=[
        rate_check("clean_blocked", "acceptable rows blocked", decisions[~positive] == "block"),
        rate_check("clean_review", "acceptable rows sent to review", decisions[~positive] == "review"),
        rate_check("positives_caught", "positives sent to review or block", decisions[positive] != "allow")])


# -- any file (shopguard evaluate) -----------------------------------------------------------

def file_checks(flags: np.ndarray, positive: np.ndarray | None, name: str) -> RealWorldChecks:
    """Decision rates on an analyst's file: flag rate on clean rows (or all rows when the file
    has no labels) and recall on labelled positives."""
    if positive is None:
        return RealWorldChecks(available=True, note=f"{name}: unlabelled; every row taken as ordinary traffic",
                               checks=[rate_check("flagged", "rows sent to review or block", flags)])
    checks = [rate_check("clean_flagged", "clean rows sent to review or block", flags[~positive]),
              rate_check("positives_caught", "labelled positives sent to review or block", flags[positive])]
    _, _, f1 = precision_recall(positive, flags)
    checks.append(RealCheck(key="binary_f1", description="F1 of flagged vs labelled", metric="rate",
                            rows=len(flags), value=f1, low=None, high=None))
    return RealWorldChecks(available=True, note=f"{name}: decisions as served", checks=checks)

