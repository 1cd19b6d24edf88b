"""Build the listing-quality model card from the run's own metrics objects; its prose is
``card_template.md`` beside this module."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kinds.listing_quality.features import LISTING_FEATURE_SET
from registry.bundle import Manifest
from registry.cards import CardTable, ModelCard
from training.card_parts import (
    balance_table,
    changes_against,
    data_files_table,
    evaluation_section,
    lineage_section,
    real_world_section,
    thresholds_section,
)
from training.card_template import CardTemplate
from training.real_checks import decision_checks

if TYPE_CHECKING:
    from kinds.listing_quality.pipeline import ListingTrainingResult
    from training.splits import Splits


def build_listing_card(result: ListingTrainingResult, labels: np.ndarray, splits: Splits,
                       folder: Path, owner: str, previous: Manifest | None) -> ModelCard:
    """Write the card's plots into ``folder`` and return the card (its prose: ``card_template.md``)."""
    manifest, test, choice = result.manifest, result.test_metrics, result.threshold_choice
    gains = result.model.booster.feature_importance("gain")
    total_gain = float(gains.sum()) or 1.0
    features = [[name, LISTING_FEATURE_SET.descriptions.get(name, ""), float(g / total_gain)]
                for name, g in zip(LISTING_FEATURE_SET.features, gains, strict=True)]
    features.sort(key=lambda row: -row[2])
    template = CardTemplate.beside(__file__)
    values = {"manifest": manifest, "owner": owner, "changes": changes_against(previous, manifest)}
    sections = [
        template.section("model_details", values),
        template.section("intended_use", values),
        template.section("training_data", values, tables=[data_files_table(manifest), balance_table(labels, splits)]),
        template.section("features", values, tables=[
            CardTable(columns=["feature", "meaning", "share of total gain"], rows=features)]),
        evaluation_section(test, result.per_category, "category", labels[splits.test],
                           result.test_scores, choice, folder),
        thresholds_section(choice, test),
        real_world_section(result.real_world, decision_checks(labels[splits.test].astype(bool),
                                                              result.test_scores, choice.thresholds)),
        template.section("limitations", values),
        lineage_section(manifest),
    ]
    return ModelCard(model_name=manifest.model_name, version=manifest.version, sections=sections)
