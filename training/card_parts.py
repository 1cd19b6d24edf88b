"""Card sections every pipeline shares: metrics tables, thresholds, plots, lineage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from registry.bundle import Manifest
from registry.cards import CardImage, CardSection, CardTable
from training.classification_metrics import BinaryMetrics
from training.plots import calibration_plot, confusion_plot, roc_pr_plot
from training.real_checks import RealWorldChecks
from training.thresholds import ThresholdChoice

if TYPE_CHECKING:
    from registry.store import ModelRegistry
    from training.splits import Splits

PreviousVersion = Manifest  # the production version a new card compares itself with

METRIC_COLUMNS = ["slice", "rows", "positives", "ROC-AUC", "ROC-AUC 95% CI", "PR-AUC", "PR-AUC 95% CI",
                  "block precision", "block recall", "block F1", "review precision", "review recall",
                  "review F1"]


def confidence(metrics: BinaryMetrics, name: str) -> str:
    """'[low, high]' of a metric's bootstrap interval, or '–'."""
    interval = getattr(metrics, f"{name}_ci")
    return "–" if interval is None else f"[{interval.low:.4f}, {interval.high:.4f}]"


def metrics_row(label: str, m: BinaryMetrics) -> list:
    """One table row of headline metrics."""
    return [label, m.rows, m.positives, m.roc_auc, confidence(m, "roc_auc"), m.pr_auc, confidence(m, "pr_auc"),
            m.block.precision, m.block.recall, m.block.f1, m.review.precision, m.review.recall, m.review.f1]


def evaluation_section(test: BinaryMetrics, slices: dict[str, BinaryMetrics], slice_name: str,
                       y_test: np.ndarray, scores: np.ndarray, choice: ThresholdChoice,
                       folder: Path) -> CardSection:
    """Test metrics overall and per slice, with ROC / PR, calibration and confusion plots
    written into ``folder``."""
    roc_pr_plot(y_test, scores, choice.thresholds, folder / "roc_pr.png")
    calibration_plot(y_test, scores, folder / "calibration.png")
    confusion_plot(y_test, scores, choice.thresholds, folder / "confusion.png")
    tables = [CardTable(columns=METRIC_COLUMNS, rows=[metrics_row("all", test)], caption="Overall")]
    if slices:
        tables.append(CardTable(columns=METRIC_COLUMNS,
                                rows=[metrics_row(k, v) for k, v in slices.items()],
                                caption=f"Per {slice_name}"))
    return CardSection(key="evaluation", title="Evaluation on test", paragraphs=[
        f"ROC-AUC {test.roc_auc:.4f} (95% bootstrap CI {confidence(test, 'roc_auc')}), PR-AUC "
        f"{test.pr_auc:.4f} (95% CI {confidence(test, 'pr_auc')}).",
    ], tables=tables, images=[
        CardImage(file="roc_pr.png", caption="ROC and precision-recall curves on test"),
        CardImage(file="calibration.png", caption="Reliability diagram on test"),
        CardImage(file="confusion.png", caption="Confusion matrices at both thresholds (test)"),
    ])


def thresholds_section(choice: ThresholdChoice, test: BinaryMetrics) -> CardSection:
    """Thresholds, the objective that chose them, and what they achieve."""
    return CardSection(key="thresholds", title="Thresholds", paragraphs=[choice.objective], tables=[
        CardTable(columns=["decision", "threshold", "validation precision", "validation recall",
                           "test precision", "test recall"],
                  rows=[["block", choice.thresholds.block, choice.block_precision, choice.block_recall,
                         test.block.precision, test.block.recall],
                        ["review", choice.thresholds.review, choice.review_precision,
                         choice.review_recall, test.review.precision, test.review.recall]]),
    ], bullets=([] if choice.block_reachable else [
        f"The precision target {choice.precision_target} was not reachable on validation: this "
        "version never blocks on its own, it only sends to review."]))


def lineage_section(manifest: Manifest) -> CardSection:
    """Git commit, seed, parameters and library versions."""
    lineage = manifest.lineage
    return CardSection(key="lineage", title="Lineage", bullets=[
        f"git commit: {lineage.git_commit or 'unknown'}",
        f"seed: {lineage.seed}",
        f"best iteration: {manifest.metrics.details.get('best_iteration')}",
    ], tables=[
        CardTable(columns=["parameter", "value"],
                  rows=[[k, str(v)] for k, v in sorted(lineage.parameters.items())]),
        CardTable(columns=["library", "version"],
                  rows=[[k, v] for k, v in sorted(lineage.library_versions.items())]),
    ])


def data_files_table(manifest: Manifest) -> CardTable:
    """The training files with sha256 and rows."""
    return CardTable(columns=["file", "role", "sha256", "rows", "exported (UTC)"], caption="Source files",
                     rows=[[f.path, f.role or "training", f.sha256, f.rows, f.exported_at]
                           for f in manifest.lineage.training_files])


def balance_table(labels: np.ndarray, splits: Splits) -> CardTable:
    """Rows and positives per split."""
    rows = [[name, len(idx), int(labels[idx].sum()), float(labels[idx].mean())]
            for name, idx in (("train", splits.train), ("validation", splits.validation),
                              ("test", splits.test))]
    return CardTable(columns=["split", "rows", "positives", "positive share"], rows=rows,
                     caption="Class balance")


def previous_production(registry: ModelRegistry, name: str) -> Manifest | None:
    """The production version's manifest, or None (no production yet, or it cannot be loaded:
    then there is nothing to compare with)."""
    from common.errors import ShopGuardError

    try:
        return registry.load(f"{name}:production").manifest
    except (ShopGuardError, ValueError, OSError):
        return None


def changes_against(previous: Manifest | None, current: Manifest) -> str:
    """'What changed' against the production version, from each version's stored headline
    test metrics."""
    if previous is None:
        return "First version of this model: there is no production version to compare with."
    before, after = previous.headline_metrics(), current.headline_metrics()
    deltas = [f"{key.removeprefix('test_')} {after[key] - before[key]:+.4f}" for key in after
              if after.get(key) is not None and before.get(key) is not None]
    return (f"against production {previous.tag} (trained {previous.created_at}), each on its own "
            f"test split: {', '.join(deltas) or 'no comparable metrics'}.")


def checks_rows(checks: RealWorldChecks, data: str) -> list[list]:
    """Table rows of decision checks: data, check, rows, value, interval, target, met (``yes``
    only when the 95% interval is on the target's side, ``not shown`` when only the value is)."""
    return [[data, c.description, c.rows, c.value,
             "–" if c.low is None else f"[{c.low:.4f}, {c.high:.4f}]",
             "–" if c.target is None else f"{'<=' if c.direction == 'at_most' else '>='} {c.target:g}",
             {"yes": "yes", "not shown": "not shown", "no": "NO", None: "–"}[c.verdict]] for c in checks.checks]


CHECK_COLUMNS = ["data", "check", "rows", "value", "95% interval", "target", "met"]


def real_world_section(real: RealWorldChecks, synthetic: RealWorldChecks) -> CardSection:
    """"Real-world checks": decisions on real held-out text beside the same decisions on the
    synthetic test split, each with its 95% interval and target; says plainly when the real
    checks are missing."""
    paragraphs = [real.note, "Synthetic rows are the test split of the training file; real rows are "
                  "text nobody on this project wrote. Where they disagree, trust the real rows."]
    tables = [CardTable(columns=CHECK_COLUMNS, rows=checks_rows(real, "real") + checks_rows(synthetic, "synthetic"),
                        caption="Served decisions (review or block = flagged)")]
    if real.sources:
        tables.append(CardTable(columns=["real file", "sha256"], rows=[[p, h] for p, h in real.sources.items()],
                                caption="Real files read (never copied into the bundle)"))
    return CardSection(key="real_world_checks", title="Real-world checks", paragraphs=paragraphs, tables=tables)
