"""listing-quality's training half: ``shopguard train listing-quality``, its file scorer and
its decision checks (built-in real-world titles, or any file of titles)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import typer

from kinds.listing_quality.record import LISTING_LABEL_COLUMN
from registry.store import LoadedBundle
from training.kind_training import KindTraining
from training.report_tables import (
    announce_candidate,
    console,
    load_config,
    metrics_table,
    note,
    progress_status,
    real_checks_table,
)

if TYPE_CHECKING:
    from training.compare import ScoredFile


def train_listing_quality(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="labelled file: .parquet, .csv or .jsonl"),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False,
                                       help="JSON file of ListingQualityConfig"),
    seed: int | None = typer.Option(None, min=0, max=2**32 - 1, help="override the config's seed"),
    threads: int | None = typer.Option(None, "--threads", min=0, help="LightGBM threads (0: one per core)"),
    review_budget: float | None = typer.Option(
        None, "--review-budget", help="largest share of ordinary traffic sent to review (default 0.05)"),
    register: bool = typer.Option(True, help="register the bundle and mark it candidate"),
) -> None:
    """Train listing-quality on a labelled file and register it as candidate."""
    from common.terminal import plain
    from common.words import counted
    from kinds.listing_quality.pipeline import (
        ListingQualityConfig,
        ListingQualityTrainer,
        load_listing_file,
    )
    from registry.store import ModelRegistry

    cfg = load_config(config, ListingQualityConfig, {"seed": seed, "review_budget": review_budget, "num_threads": threads})
    frame = load_listing_file(data)
    repeated = int(frame.astype(str).duplicated().sum())
    if repeated:
        note(f"[yellow]note:[/yellow] {plain(str(data))}: {counted(repeated, 'row')} repeat another row "
                      "exactly; split at random, copies fall on both sides and the test figures are optimistic: "
                      "drop the copies (or label them once) for held-out figures")
    start = time.perf_counter()
    with progress_status("training listing-quality") as progress:
        trainer = ListingQualityTrainer(cfg, ModelRegistry() if register else None, progress)
        result = trainer.fit(frame, data)
    console.print(metrics_table("test metrics", {"all": result.test_metrics, **result.per_category}))
    t = result.threshold_choice.thresholds
    console.print(f"thresholds: block >= {t.block:.4f}, review >= {t.review:.4f} "
                  f"(chosen on validation); {time.perf_counter() - start:.0f}s")
    console.print(real_checks_table("real-world checks", {"real": result.real_world}))
    if register:
        announce_candidate(result.manifest.tag)



def score_listing_file(bundle: LoadedBundle, data: Path, explain: bool = False, **_: Any) -> ScoredFile:
    """A labelled listing file scored by one listing-quality version."""
    from kinds.listing_quality.pipeline import load_listing_file
    from kinds.listing_quality.runtime import ListingQualityModel
    from training.compare import ScoredFile, reason_text

    frame = load_listing_file(data)
    model = ListingQualityModel.from_bundle(bundle)
    result = model.score(frame, explain="all" if explain else "none")
    return ScoredFile(frame[LISTING_LABEL_COLUMN].to_numpy(int).reshape(-1, 1), np.reshape(result.scores, (-1, 1)),
                      result.decisions, ["is_inferior"], {"is_inferior": model.thresholds},
                      frame["category"].astype(str).tolist(), frame["listing_id"].astype(str).tolist(),
                      [reason_text(r) for r in result.reasons] if explain else None)



def evaluate_real_world(bundle: LoadedBundle) -> Any:
    """The built-in real-world checks (real titles) on the check part of ``../shared/data``."""
    from kinds.listing_quality.runtime import ListingQualityModel
    from training.real_checks import listing_checks

    return listing_checks(ListingQualityModel.from_bundle(bundle))


def evaluate_file(bundle: LoadedBundle, path: Path, binary_category: str | None, group_column: str | None = None
                  ) -> tuple[Any, dict]:
    """Decision checks on a file of titles (flag rate of clean or unlabelled rows, recall of
    positives, F1); no per-category metrics."""
    return _listing_file(bundle, path), {}


def _listing_file(bundle: LoadedBundle, path: Path) -> Any:
    from kinds.listing_quality.record import ListingRecord
    from training.data.loaders import DataValidationError, binary_labels, check_bounds, read_table
    from training.real_checks import file_checks, listing_decisions, neutral_listings

    frame = read_table(path)
    if "title" not in frame.columns:
        raise DataValidationError(f"{path}: missing column 'title'.", field="title")
    if frame.empty:
        raise DataValidationError(f"{path}: has no rows.", field=str(path))
    check_bounds(frame, ListingRecord, str(path))  # no figure on values the API refuses
    columns = neutral_listings(frame["title"].astype(str).tolist())
    for name in frame.columns:  # the file's own attributes replace the neutral ones
        if name != LISTING_LABEL_COLUMN:
            columns[name] = [None if pd.isna(v) else v for v in frame[name].tolist()]
    decisions = np.array(listing_decisions(_listing_model(bundle), columns))
    positive = binary_labels(frame[LISTING_LABEL_COLUMN], LISTING_LABEL_COLUMN, str(path)).to_numpy().astype(bool) \
        if LISTING_LABEL_COLUMN in frame.columns else None
    return file_checks(decisions != "allow", positive, path.name)


def _listing_model(bundle: LoadedBundle) -> Any:
    from kinds.listing_quality.runtime import ListingQualityModel

    return ListingQualityModel.from_bundle(bundle)


def listing_row_keys(data: Path, **_: Any) -> list[str]:
    """Each row's identity in a file, as training recorded it (a listing: its title)."""
    from training.row_identity import file_keys, text_keys

    return file_keys(data, "title", text_keys)


TRAINING = KindTraining(train=train_listing_quality, score_file=score_listing_file, evaluate_file=evaluate_file,
                        evaluate_real_world=evaluate_real_world, row_keys=listing_row_keys)
