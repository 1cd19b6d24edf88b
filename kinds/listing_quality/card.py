"""Build the listing-quality model card from the run's own metrics objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kinds.listing_quality.features import LISTING_FEATURE_SET
from registry.bundle import Manifest
from registry.cards import CardSection, CardTable, ModelCard
from training.card_parts import (
    balance_table,
    changes_against,
    data_files_table,
    evaluation_section,
    lineage_section,
    real_world_section,
    thresholds_section,
)
from training.real_checks import decision_checks

if TYPE_CHECKING:
    from kinds.listing_quality.pipeline import ListingTrainingResult
    from training.splits import Splits


def build_listing_card(result: ListingTrainingResult, labels: np.ndarray, splits: Splits,
                       folder: Path, owner: str, previous: Manifest | None) -> ModelCard:
    """Write the card's plots into ``folder`` and return the card."""
    manifest, test, choice = result.manifest, result.test_metrics, result.threshold_choice
    gains = result.model.booster.feature_importance("gain")
    total_gain = float(gains.sum()) or 1.0
    features = [[name, LISTING_FEATURE_SET.descriptions.get(name, ""), float(g / total_gain)]
                for name, g in zip(LISTING_FEATURE_SET.features, gains, strict=True)]
    features.sort(key=lambda row: -row[2])
    sections = [
        CardSection(key="model_details", title="Model details", bullets=[
            f"name: {manifest.model_name}; version: {manifest.version}; created: {manifest.created_at}",
            f"owner: {owner}",
            "type: LightGBM gradient-boosted trees over numeric, categorical and text features",
            f"task: {manifest.task}; labels: {manifest.label_map}",
            f"feature set: {manifest.feature_set.name} (version {manifest.feature_set.version})",
            f"what changed: {changes_against(previous, manifest)}",
        ]),
        CardSection(key="intended_use", title="Intended use", paragraphs=[
            "Scores product listings of a livestream e-commerce platform for inferior goods "
            "(counterfeit, misdescribed, unsafe, junk) so that the review pipeline can block the "
            "clearest cases, send uncertain ones to human review and let the rest through.",
        ], bullets=[
            "Out of scope: deciding legal liability, judging a merchant as a whole (use "
            "merchant-risk), scoring livestream speech (use false-marketing), languages other "
            "than Chinese, and categories not seen in training (they fall back to 'other').",
            "A block decision should remain appealable; the reasons are there to make review fast.",
        ]),
        CardSection(key="training_data", title="Training and evaluation data", paragraphs=[
            "Stratified, seeded split of the training file into train / validation / test. "
            "Category price medians and the text scorer are fit on train only; the text score "
            "of training rows is out-of-fold. Thresholds are chosen on validation; every metric "
            "below is measured on test, which no step saw.",
        ], tables=[data_files_table(manifest), balance_table(labels, splits)]),
        CardSection(key="features", title="Features", tables=[
            CardTable(columns=["feature", "meaning", "share of total gain"], rows=features),
        ]),
        evaluation_section(test, result.per_category, "category", labels[splits.test],
                           result.test_scores, choice, folder),
        thresholds_section(choice, test),
        real_world_section(result.real_world, decision_checks(labels[splits.test].astype(bool),
                                                              result.test_scores, choice.thresholds)),
        CardSection(key="limitations", title="Limitations, risks and mitigations", bullets=[
            "Trained on the data named above; on the built-in synthetic catalogue the figures show "
            "that the pipeline works, not how it will do on real traffic.",
            "Text cues are Chinese lexicons; wording outside them relies on the n-gram text score.",
            "Behaviour statistics (returns, complaints, ratings) are missing for new listings; the "
            "model then leans on price and text, and is less certain.",
            "Risk: honest clearance sales and authorised resellers resemble counterfeits by price. "
            "Mitigation: the block threshold is set for 95% precision and reasons are shown.",
        ]),
        lineage_section(manifest),
    ]
    return ModelCard(model_name=manifest.model_name, version=manifest.version, sections=sections)
