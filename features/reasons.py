"""Turn feature contributions into readable reason codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from features.lexicons import CueHit


@dataclass(frozen=True)
class Reason:
    """A readable reason: a stable machine code and a sentence for people."""

    code: str
    detail: str


# feature -> (code when the value is low / negative, code when high / positive)
LISTING_REASON_CODES: dict[str, tuple[str, str]] = {
    "price": ("price_level", "price_level"),
    "log_price": ("price_level", "price_level"),
    "discount_ratio": ("implausible_discount", "price_close_to_list_price"),
    "price_vs_category_median": ("price_far_below_category", "price_far_above_category"),
    "image_count": ("few_images", "many_images"),
    "log_sales": ("little_sales_history", "sales_volume"),
    "rating": ("low_rating", "rating"),
    "log_review_count": ("few_reviews", "review_volume"),
    "negative_review_rate": ("negative_reviews", "high_negative_review_rate"),
    "return_rate": ("return_rate", "high_return_rate"),
    "complaint_rate": ("complaint_rate", "high_complaint_rate"),
    "title_length": ("thin_title", "long_title"),
    "description_length": ("thin_description", "long_description"),
    "counterfeit_cues": ("counterfeit_wording", "counterfeit_wording"),
    "unsafe_cues": ("unsafe_claim_wording", "unsafe_claim_wording"),
    "exaggeration_cues": ("exaggerated_wording", "exaggerated_wording"),
    "brand_mentions": ("brand_mention", "brand_mention"),
    "brand_price_gap": ("brand_at_implausible_price", "brand_at_implausible_price"),
    "text_score": ("suspicious_wording", "suspicious_wording"),
    "category": ("category_risk", "category_risk"),
}
CUE_FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "counterfeit_cues": ("counterfeit",),
    "unsafe_cues": ("unsafe",),
    "exaggeration_cues": ("exaggeration",),
    "brand_mentions": ("brand",),
    "brand_price_gap": ("brand",),
    "text_score": ("counterfeit", "unsafe", "exaggeration"),
}


def _detail(feature: str, value: float, contribution: float, hits: Sequence[CueHit]) -> str:
    groups = CUE_FEATURE_GROUPS.get(feature, ())
    words = sorted({h.term for h in hits if h.group in groups})
    if value != value:
        return f"{feature} was not given; its absence raised the log-odds by {contribution:.2f}"
    text = f"{feature}={value:.3g} raised the log-odds by {contribution:.2f}"
    if words:
        text += "; matched: " + ", ".join(words)
    return text


def top_reasons(
    feature_names: Sequence[str],
    values: Sequence[float],
    contributions: Sequence[float],
    hits: Sequence[CueHit],
    reference_values: Sequence[float],
    limit: int = 3,
    reason_codes: dict[str, tuple[str, str]] = LISTING_REASON_CODES,
    describe: Callable[[str, float, float], str | None] | None = None,
) -> list[Reason]:
    """Up to ``limit`` reasons from the features that raised the score most.

    ``contributions`` are per-feature additive contributions (e.g. LightGBM ``pred_contrib``)
    without the bias term. Codes come from ``reason_codes``: the first code when the value
    is below the feature's training-time median (``reference_values``), the second when at
    or above it, and ``missing_<feature>`` when the value was not given. ``describe(feature, value, contribution)`` may supply a
    sentence for the detail instead of the generic one."""
    ranked = sorted(
        (i for i, c in enumerate(contributions) if c > 0), key=lambda i: contributions[i], reverse=True
    )
    reasons: list[Reason] = []
    seen: set[str] = set()
    for i in ranked:
        feature = feature_names[i]
        low_code, high_code = reason_codes.get(feature, (feature, feature))
        value = float(values[i])
        if value != value:
            code = f"missing_{feature}"
        else:
            code = low_code if value < reference_values[i] else high_code
        if code in seen:
            continue
        seen.add(code)
        custom = describe(feature, value, float(contributions[i])) if describe else None
        reasons.append(Reason(code, custom or _detail(feature, value, float(contributions[i]), hits)))
        if len(reasons) == limit:
            break
    return reasons
