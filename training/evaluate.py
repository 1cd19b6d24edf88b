"""``shopguard evaluate``: the real-world checks of a registered model, or the same decision
checks on any file an analyst brings (each kind's checks: ``kinds/``)."""

from __future__ import annotations

from pathlib import Path

from common.errors import ShopGuardError
from kinds import MODEL_KINDS
from registry.metrics import RealWorldChecks
from registry.store import LoadedBundle
from training.classification_metrics import BinaryMetrics
from training.data import real_text
from training.kind_training import KindTraining, training_half, training_of
from training.row_identity import TrainingOverlap

Metrics = dict[str, dict[str, BinaryMetrics]]


def evaluable_kind(bundle: LoadedBundle) -> KindTraining:
    """The training half of the bundle's kind, if ``evaluate`` supports it."""
    half = training_of(bundle.manifest.model_name)
    if half.evaluate_file is None:
        evaluable = [k.name for k in MODEL_KINDS.values() if training_half(k).evaluate_file is not None]
        raise ShopGuardError(f"evaluate supports {' and '.join(evaluable)}; {bundle.manifest.model_name} reports "
                             "its test metrics in its card (and `shopguard models compare`).")
    return half


def evaluate_real_world(bundle: LoadedBundle) -> RealWorldChecks:
    """The built-in real-world checks on the check part of ``../shared/data``."""
    half = evaluable_kind(bundle)
    if half.evaluate_real_world is None:
        raise ShopGuardError(f"{bundle.manifest.model_name} has no built-in real-world checks; pass --data FILE.")
    if real_text.shared_data_dir() is None:
        raise ShopGuardError(f"../shared/data is not here; set {real_text.SHARED_DATA_ENV} or pass --data FILE.")
    return half.evaluate_real_world(bundle)


def evaluate_file(bundle: LoadedBundle, path: Path, binary_category: str | None,
                  group_column: str | None = None) -> tuple[RealWorldChecks, Metrics]:
    """Decision checks on a file (flag rate of clean or unlabelled rows, recall of positives,
    F1) and, where the kind measures them, per-category metrics of the served model and its
    baselines."""
    half = evaluable_kind(bundle)
    assert half.evaluate_file is not None
    return half.evaluate_file(bundle, path, binary_category, group_column)


def evaluate_overlap(bundle: LoadedBundle, path: Path) -> TrainingOverlap:
    """How many of the file's rows trained the version (by row; by whole file for a version
    that records no row hashes)."""
    from training.compare import training_overlaps

    return training_overlaps(path, [bundle])[0]


def overlap_line(overlap: TrainingOverlap) -> str:
    """The report's line: ``overlaps training rows: N of M`` (or what an older version allows)."""
    if overlap.overlapping is not None:
        return f"overlaps training rows: {overlap.overlapping:,} of {overlap.rows:,}"
    return ("overlaps training rows: not recorded by this version; the file "
            + ("IS one of its training files" if overlap.whole_file else "is not one of its training files"))


def overlap_warning(overlap: TrainingOverlap, name: str) -> str | None:
    """The loud warning of a file that holds training rows, or None."""
    if not overlap.overlaps:
        return None
    return (f"{name} holds training rows of {overlap.tag} ({overlap.describe()}): these are not held-out figures, "
            "and no target shown here says anything about new rows; evaluate on rows the version never saw.")
