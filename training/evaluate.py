"""``shopguard evaluate``: the real-world checks of a registered text model, or the same
decision checks on any file an analyst brings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import ShopGuardError
from features.marketing import MARKETING_CATEGORIES
from features.schemas import LISTING_LABEL_COLUMN
from model_registry.kinds import FALSE_MARKETING, LISTING_QUALITY, ModelKind, model_kind
from model_registry.registry import LoadedBundle
from model_registry.runtimes.listing import ListingQualityModel
from model_registry.runtimes.marketing import FalseMarketingModel
from training.data import real_text
from training.data.loaders import DataValidationError, read_table
from training.evaluation import BinaryMetrics
from training.grouped import heldout_checks
from training.real_checks import (
    RealWorldChecks,
    file_checks,
    flagged_segments,
    listing_checks,
    listing_decisions,
    marketing_checks,
    neutral_listings,
)

Metrics = dict[str, dict[str, BinaryMetrics]]


EVALUABLE = (LISTING_QUALITY, FALSE_MARKETING)  # the text models with real-world checks


def evaluable_kind(bundle: LoadedBundle) -> ModelKind:
    """The bundle's kind, if ``evaluate`` supports it."""
    kind = model_kind(bundle.manifest.model_name)
    if kind not in EVALUABLE:
        raise ShopGuardError(f"evaluate supports {' and '.join(k.name for k in EVALUABLE)}; {kind.name} reports its "
                             "test metrics in its card (and `shopguard models compare`).")
    return kind


def evaluate_real_world(bundle: LoadedBundle) -> RealWorldChecks:
    """The built-in real-world checks on the check part of ``../shared/data``."""
    if real_text.shared_data_dir() is None:
        raise ShopGuardError(f"../shared/data is not here; set {real_text.SHARED_DATA_ENV} or pass --data FILE.")
    kind = evaluable_kind(bundle)
    model = kind.runtime_class().from_bundle(bundle)
    if not kind.multi_label:
        return listing_checks(model)
    budget = float(bundle.manifest.lineage.parameters.get("review_budget", 0.05))
    return marketing_checks(model, review_budget=budget)


def evaluate_file(bundle: LoadedBundle, path: Path, binary_category: str | None,
                  group_column: str = "room") -> tuple[RealWorldChecks, Metrics]:
    """Decision checks on a file (flag rate of clean or unlabelled rows, recall of positives,
    F1) and, for labelled segments, the per-category metrics of the served model and baselines."""
    if not evaluable_kind(bundle).multi_label:
        return _listing_file(bundle, path), {}
    frame = read_table(path)
    if "text" not in frame.columns:
        raise DataValidationError(f"{path.name}: missing column 'text'.", field="text")
    model = FalseMarketingModel.from_bundle(bundle)
    labelled = ("label" if binary_category else "labels") in frame.columns
    if not labelled:
        flags = flagged_segments(model, frame["text"].astype(str).tolist())
        return file_checks(flags, None, path.name), {}
    from training.false_marketing import evaluate_bundle, load_marketing_file

    data = load_marketing_file(path, binary_category)
    groups = frame[group_column].astype(str).to_numpy() if group_column in frame.columns else None
    return labelled_file_checks(model, data.texts, data.labels, groups, path.name), evaluate_bundle(bundle, data)


def labelled_file_checks(model: FalseMarketingModel, texts: list[str], labels: np.ndarray,
                         groups: np.ndarray | None, name: str, n_boot: int = 200) -> RealWorldChecks:
    """The figures the card's held-out section shows, on any labelled file: binary F1, clean
    rows flagged, recall, precision, ROC-AUC of the segment score and per-category recall;
    intervals resample the file's groups (rows when it has none)."""
    analyses = model.analyze(texts, spans_from_model=False)
    flagged = np.array([a.decision != "allow" for a in analyses])
    category_flags = np.array([[c in a.labels for c in MARKETING_CATEGORIES] for a in analyses])
    scores = np.array([a.score for a in analyses])
    groups = groups if groups is not None else np.arange(len(texts)).astype(str)
    note = (f"{name}: decisions as served on {len(texts):,} labelled rows"
            + (f", intervals resample its {len(set(groups)):,} groups" if len(set(groups)) < len(texts) else ""))
    return heldout_checks(labels.any(axis=1), flagged, scores, groups, labels, category_flags,
                          MARKETING_CATEGORIES, note, n_boot)


def _listing_file(bundle: LoadedBundle, path: Path) -> RealWorldChecks:
    frame = read_table(path)
    if "title" not in frame.columns:
        raise DataValidationError(f"{path.name}: missing column 'title'.", field="title")
    columns = neutral_listings(frame["title"].astype(str).tolist())
    for name in frame.columns:  # the file's own attributes replace the neutral ones
        if name != LISTING_LABEL_COLUMN:
            columns[name] = [None if pd.isna(v) else v for v in frame[name].tolist()]
    decisions = np.array(listing_decisions(ListingQualityModel.from_bundle(bundle), columns))
    positive = frame[LISTING_LABEL_COLUMN].astype(int).to_numpy().astype(bool) \
        if LISTING_LABEL_COLUMN in frame.columns else None
    return file_checks(decisions != "allow", positive, path.name)
