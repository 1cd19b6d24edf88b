"""Build the listing-quality model card from the run's own metrics objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from features.listing import LISTING_FEATURE_SET
from model_registry.bundle import Manifest
from model_registry.cards import CardImage, CardSection, CardTable, ModelCard
from training.evaluation import BinaryMetrics
from training.plots import calibration_plot, confusion_plot, roc_pr_plot

if TYPE_CHECKING:
    from training.listing_quality import ListingTrainingResult, Splits


def _ci(metrics: BinaryMetrics, name: str) -> str:
    interval = getattr(metrics, f"{name}_ci")
    return "–" if interval is None else f"[{interval.low:.4f}, {interval.high:.4f}]"


def metrics_row(label: str, m: BinaryMetrics) -> list:
    """One table row of headline metrics."""
    return [label, m.rows, m.positives, m.roc_auc, m.pr_auc, m.block.precision, m.block.recall,
            m.block.f1, m.review.precision, m.review.recall, m.review.f1]


METRIC_COLUMNS = ["slice", "rows", "positives", "ROC-AUC", "PR-AUC", "block precision",
                  "block recall", "block F1", "review precision", "review recall", "review F1"]


def _changes(manifest: Manifest, test: BinaryMetrics, previous: Manifest | None) -> str:
    if previous is None:
        return "First production candidate: there is no production version to compare with."
    before = previous.metrics.get("test", {})
    deltas = []
    for key in ("roc_auc", "pr_auc"):
        if before.get(key) is not None and getattr(test, key) is not None:
            deltas.append(f"{key} {getattr(test, key) - before[key]:+.4f}")
    return (f"Compared with production {previous.tag} (trained {previous.created_at}) on each "
            f"version's own test split: {', '.join(deltas) or 'no comparable metrics'}. "
            "Use `shopguard models compare` for a comparison on the same file.")


def build_listing_card(result: ListingTrainingResult, labels: np.ndarray, splits: Splits,
                       folder: Path, owner: str, previous: Manifest | None) -> ModelCard:
    """Write the card's plots into ``folder`` and return the card."""
    manifest, test, choice = result.manifest, result.test_metrics, result.threshold_choice
    test_y = labels[splits.test]
    roc_pr_plot(test_y, result.test_scores, choice.thresholds, folder / "roc_pr.png")
    calibration_plot(test_y, result.test_scores, folder / "calibration.png")
    confusion_plot(test_y, result.test_scores, choice.thresholds, folder / "confusion.png")
    lineage = manifest.lineage
    data_rows = [[f.path, f.sha256, f.rows] for f in lineage.training_files]
    balance = [[name, len(idx), int(labels[idx].sum()), float(labels[idx].mean())]
               for name, idx in (("train", splits.train), ("validation", splits.validation),
                                 ("test", splits.test))]
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
            f"what changed: {_changes(manifest, test, previous)}",
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
        ], tables=[
            CardTable(columns=["file", "sha256", "rows"], rows=data_rows, caption="Source files"),
            CardTable(columns=["split", "rows", "positives", "positive share"], rows=balance,
                      caption="Class balance"),
        ]),
        CardSection(key="features", title="Features", tables=[
            CardTable(columns=["feature", "meaning", "share of total gain"], rows=features),
        ]),
        CardSection(key="evaluation", title="Evaluation on test", paragraphs=[
            f"ROC-AUC {test.roc_auc:.4f} (95% bootstrap CI {_ci(test, 'roc_auc')}), PR-AUC "
            f"{test.pr_auc:.4f} (95% CI {_ci(test, 'pr_auc')}).",
        ], tables=[
            CardTable(columns=METRIC_COLUMNS, rows=[metrics_row("all", test)], caption="Overall"),
            CardTable(columns=METRIC_COLUMNS,
                      rows=[metrics_row(k, v) for k, v in result.per_category.items()],
                      caption="Per category"),
        ], images=[
            CardImage(file="roc_pr.png", caption="ROC and precision-recall curves on test"),
            CardImage(file="calibration.png", caption="Reliability diagram on test"),
            CardImage(file="confusion.png", caption="Confusion matrices at both thresholds (test)"),
        ]),
        CardSection(key="thresholds", title="Thresholds", paragraphs=[choice.objective], tables=[
            CardTable(columns=["decision", "threshold", "validation precision", "validation recall",
                               "test precision", "test recall"],
                      rows=[["block", choice.thresholds.block, choice.block_precision,
                             choice.block_recall, test.block.precision, test.block.recall],
                            ["review", choice.thresholds.review, choice.review_precision,
                             choice.review_recall, test.review.precision, test.review.recall]]),
        ], bullets=([] if choice.block_reachable else [
            f"The precision target {choice.precision_target} was not reachable on validation: "
            "this version never blocks on its own, it only sends to review."])),
        CardSection(key="limitations", title="Limitations, risks and mitigations", bullets=[
            "Trained on the data named above; on the built-in synthetic catalogue the figures show "
            "that the pipeline works, not how it will do on real traffic.",
            "Text cues are Chinese lexicons; wording outside them relies on the n-gram text score.",
            "Behaviour statistics (returns, complaints, ratings) are missing for new listings; the "
            "model then leans on price and text, and is less certain.",
            "Risk: honest clearance sales and authorised resellers resemble counterfeits by price. "
            "Mitigation: the block threshold is set for 95% precision and reasons are shown.",
        ]),
        CardSection(key="lineage", title="Lineage", bullets=[
            f"git commit: {lineage.git_commit or 'unknown'}",
            f"seed: {lineage.seed}",
            f"best iteration: {manifest.metrics.get('best_iteration')}",
        ], tables=[
            CardTable(columns=["parameter", "value"],
                      rows=[[k, str(v)] for k, v in sorted(lineage.parameters.items())]),
            CardTable(columns=["library", "version"],
                      rows=[[k, v] for k, v in sorted(lineage.library_versions.items())]),
        ]),
    ]
    return ModelCard(model_name=manifest.model_name, version=manifest.version, sections=sections)
