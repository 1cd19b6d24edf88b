"""PNG plots for model cards (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # drawn without pyplot: no backend to choose, no global state
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from common.decisions import Thresholds


def _figure(rows: int = 1, columns: int = 1, **options: object) -> tuple[Figure, object]:
    """A figure and its axes (``Figure.subplots``'s shapes)."""
    figsize, dpi = options.pop("figsize"), options.pop("dpi")
    figure = Figure(figsize=figsize, dpi=dpi)  # type: ignore[arg-type]
    return figure, figure.subplots(rows, columns, **options)  # type: ignore[arg-type]


def roc_pr_plot(y: np.ndarray, scores: np.ndarray, thresholds: Thresholds, out: Path) -> None:
    """ROC and precision-recall curves side by side, with the two thresholds marked."""
    fig, (left, right) = _figure(1, 2, figsize=(10, 4.2), dpi=90)
    fpr, tpr, _ = roc_curve(y, scores)
    left.plot(fpr, tpr, color="#1f77b4")
    left.plot([0, 1], [0, 1], ls="--", color="#999")
    left.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    precision, recall, _ = precision_recall_curve(y, scores)
    right.plot(recall, precision, color="#d62728")
    for name, value, marker in (("block", thresholds.block, "o"), ("review", thresholds.review, "s")):
        flagged = scores >= value
        if flagged.any():
            p = float((y[flagged] == 1).mean())
            r = float((flagged & (y == 1)).sum() / max(1, (y == 1).sum()))
            right.plot([r], [p], marker=marker, color="black", label=f"{name} @ {value:.3f}")
    right.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)", ylim=(0, 1.02))
    right.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(out)


def calibration_plot(y: np.ndarray, scores: np.ndarray, out: Path) -> None:
    """Reliability diagram: mean predicted score against observed positive rate."""
    fig, ax = _figure(figsize=(4.6, 4.2), dpi=90)
    observed, predicted = calibration_curve(y, scores, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, marker="o")
    ax.plot([0, 1], [0, 1], ls="--", color="#999")
    ax.set(xlabel="mean predicted score", ylabel="observed positive rate", title="Calibration (test)")
    fig.tight_layout()
    fig.savefig(out)


def confusion_plot(y: np.ndarray, scores: np.ndarray, thresholds: Thresholds, out: Path) -> None:
    """Confusion matrices at the block and the review thresholds."""
    fig, axes = _figure(1, 2, figsize=(8, 3.6), dpi=90)
    for ax, (name, value) in zip(axes, (("block", thresholds.block), ("review", thresholds.review)),
                                 strict=True):
        matrix = confusion_matrix(y, (scores >= value).astype(int), labels=[0, 1])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["pred 0", "pred 1"],
               yticklabels=["true 0", "true 1"], title=f"{name} @ {value:.3f}")
    fig.tight_layout()
    fig.savefig(out)


def multilabel_plots(labels: np.ndarray, scores: np.ndarray, thresholds: dict[str, Thresholds],
                     categories: list[str], folder: Path) -> list[tuple[str, str]]:
    """ROC and PR curves per category, a calibration plot pooled over categories, and
    confusion matrices per category at both thresholds. Returns (file, caption) pairs."""
    present = [(j, c) for j, c in enumerate(categories) if 0 < labels[:, j].sum() < len(labels)]
    if not present:
        return []
    fig, (left, right) = _figure(1, 2, figsize=(11, 4.6), dpi=90)
    for j, category in present:
        fpr, tpr, _ = roc_curve(labels[:, j], scores[:, j])
        precision, recall, _ = precision_recall_curve(labels[:, j], scores[:, j])
        left.plot(fpr, tpr, label=category)
        right.plot(recall, precision, label=category)
    left.plot([0, 1], [0, 1], ls="--", color="#999")
    left.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC per category (test)")
    right.set(xlabel="recall", ylabel="precision", title="Precision-recall per category (test)", ylim=(0, 1.02))
    right.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "roc_pr.png")
    columns = [j for j, _ in present]
    calibration_plot(labels[:, columns].ravel(), scores[:, columns].ravel(), folder / "calibration.png")
    fig, axes = _figure(len(present), 2, figsize=(6.4, 2.3 * len(present)), dpi=80, squeeze=False)
    for row, (j, category) in enumerate(present):
        for ax, name in zip(axes[row], ("block", "review"), strict=True):
            value = getattr(thresholds[category], name)
            matrix = confusion_matrix(labels[:, j], (scores[:, j] >= value).astype(int), labels=[0, 1])
            ax.imshow(matrix, cmap="Blues")
            for (i, k), count in np.ndenumerate(matrix):
                ax.text(k, i, str(count), ha="center", va="center", fontsize=8)
            ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["pred 0", "pred 1"],
                   yticklabels=["true 0", "true 1"])
            ax.set_title(f"{category}: {name} @ {value:.3f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "confusion.png")
    return [("roc_pr.png", "ROC and precision-recall curves of the served blend per category (test)"),
            ("calibration.png", "Reliability of the served blend's scores, pooled over categories (test)"),
            ("confusion.png", "Confusion matrices per category at the block and review thresholds (test)")]
