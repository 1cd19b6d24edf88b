"""false-marketing's training half: ``shopguard train false-marketing``, its file scorer and
its decision checks (built-in real live-room speech, or any labelled or unlabelled file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import typer

from features.marketing import MARKETING_CATEGORIES
from registry.store import LoadedBundle
from training.kind_training import KindTraining
from training.report_tables import (
    announce_candidate,
    console,
    load_config,
    marketing_table,
    note,
    progress_status,
    real_checks_table,
)

if TYPE_CHECKING:
    from training.compare import ScoredFile


def train_false_marketing(
    data: list[Path] = typer.Option(..., "--data", exists=True, dir_okay=False, help=(
        "segments (`text`, `labels`): .parquet, .csv, .tsv/.txt or .jsonl; generated or any labelled text, "
        "split at random; repeat for several files")),
    real: list[Path] = typer.Option([], "--real", exists=True, dir_okay=False, help=(
        "real labelled segments (`text`, `labels`, a group column): held out by group for the thresholds "
        "and the headline figures, then trained on; repeat for several files")),
    group_column: str | None = typer.Option(None, "--group-column", help=(
        "the column of --real files that groups rows (a live room, a source, a month; default room, a file "
        "without it is one group); a column named here must be in every --real file")),
    binary_category: str | None = typer.Option(
        None, "--binary-category", help="the --data files have a binary `label` column meaning this category"),
    base_model: Path | None = typer.Option(None, "--base-model", exists=True, file_okay=False, help=(
        "local checkpoint folder to fine-tune (e.g. from `shopguard train base-encoder`)")),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False,
                                       help="JSON file of FalseMarketingConfig"),
    seed: int | None = typer.Option(None, min=0, max=2**32 - 1, help="override the config's seed"),
    epochs: int | None = typer.Option(None, help="override the config's epochs"),
    review_budget: float | None = typer.Option(
        None, "--review-budget", help="largest share of ordinary traffic sent to review (default 0.05)"),
) -> None:
    """Train the false-marketing encoder and its baselines, export int8 ONNX, register as candidate."""
    from common.terminal import plain
    from kinds.false_marketing.pipeline import (
        FalseMarketingConfig,
        load_training_data,
        train_and_register,
    )
    from registry.store import ModelRegistry

    overrides = {"seed": seed, "epochs": epochs, "review_budget": review_budget,
                 "base_model": str(base_model) if base_model else None}
    cfg = load_config(config, FalseMarketingConfig, overrides)
    segments = load_training_data(data, real, binary_category, group_column,
                                  warn=lambda line: note(f"[yellow]note:[/yellow] {plain(line)}"))
    group_column = group_column or "room"
    with progress_status("training false-marketing") as progress:
        result = train_and_register(segments, cfg, ModelRegistry(), progress, group_column)
    console.print(marketing_table("test metrics per category (generated test split)",
                                  {s.name: s.per_category for s in result.systems}))
    if result.heldout_systems:
        console.print(marketing_table(f"held-out {group_column}s (real): ranking per category",
                                      {s.name: s.per_category for s in result.heldout_systems}, review=False))
    q = result.quantization
    console.print(f"int8 vs PyTorch: max |diff| {q['max_abs_diff_int8_vs_pytorch']:.4f} on "
                  f"{q['rows']:,} validation segments")
    checks = {"real": result.real_world, "synthetic": result.test_decisions}
    if result.real_heldout is not None:
        checks = {f"held-out {group_column}s": result.real_heldout, **checks}
    console.print(real_checks_table("decisions: held-out real groups (headline), real-world checks, synthetic "
                                    "test split", checks))
    announce_candidate(result.manifest.tag)



def score_segment_file(bundle: LoadedBundle, data: Path, binary_category: str | None = None,
                       explain: bool = False, **_: Any) -> ScoredFile:
    """A labelled segment file scored by one false-marketing version."""
    from kinds.false_marketing.pipeline import load_marketing_file
    from kinds.false_marketing.runtime import FalseMarketingModel
    from training.compare import ScoredFile

    segments = load_marketing_file(data, binary_category)
    model = FalseMarketingModel.from_bundle(bundle)
    analyses = model.score(pd.DataFrame({"text": segments.texts}), explain="flagged" if explain else "none").segments
    scores = np.array([[a.scores[c] for c in MARKETING_CATEGORIES] for a in analyses])
    labels = segments.labels.astype(int)
    if segments.known_categories is not None:  # a binary file labels one category only
        labels = labels * segments.known_categories.astype(int)
    spans = [", ".join(f"{sp.category}: {sp.text!r} ({sp.rule_id or sp.source})" for sp in a.spans)
             for a in analyses] if explain else None
    return ScoredFile(labels, scores, [a.decision for a in analyses], list(MARKETING_CATEGORIES),
                      dict(model.thresholds), None, segments.texts, spans)



def evaluate_real_world(bundle: LoadedBundle) -> Any:
    """The built-in real-world checks (real live-room speech) at the version's review budget."""
    from kinds.false_marketing.runtime import FalseMarketingModel
    from training.real_checks import marketing_checks

    budget = float(bundle.manifest.lineage.parameters.get("review_budget", 0.05))
    return marketing_checks(FalseMarketingModel.from_bundle(bundle), review_budget=budget)


def evaluate_file(bundle: LoadedBundle, path: Path, binary_category: str | None,
                  group_column: str | None = None) -> tuple[Any, dict]:
    """Decision checks on a file of segments (flag rate of unlabelled rows) and, for labelled
    segments, the card's held-out figures and the per-category metrics of the served model
    and its baselines."""
    from kinds.false_marketing.runtime import FalseMarketingModel
    from training.data.loaders import DataValidationError, read_table
    from training.real_checks import file_checks, flagged_segments

    frame = read_table(path)
    if "text" not in frame.columns:
        raise DataValidationError(f"{path}: missing column 'text'.", field="text")
    if group_column is not None and group_column not in frame.columns:
        raise DataValidationError(f"{path}: no column {group_column!r} to group rows by (--group-column); its "
                                  f"columns are {', '.join(map(str, frame.columns))}", field="--group-column")
    group_column = group_column or "room"
    model = FalseMarketingModel.from_bundle(bundle)
    labelled = ("label" if binary_category else "labels") in frame.columns
    if not labelled:
        flags = flagged_segments(model, frame["text"].astype(str).tolist())
        return file_checks(flags, None, path.name), {}
    from kinds.false_marketing.pipeline import evaluate_bundle, load_marketing_file

    data = load_marketing_file(path, binary_category)
    groups = frame[group_column].astype(str).to_numpy() if group_column in frame.columns else None
    return labelled_file_checks(model, data.texts, data.labels, groups, path.name), evaluate_bundle(bundle, data)


def labelled_file_checks(model: Any, texts: list[str], labels: np.ndarray,
                         groups: np.ndarray | None, name: str, n_boot: int = 200) -> Any:
    """The figures the card's held-out section shows, on any labelled file: binary F1, clean
    rows flagged, recall, precision (of flags and of blocks), ROC-AUC of the segment score and per-category recall;
    intervals resample the file's groups (rows when it has none)."""
    from training.grouped import heldout_checks

    analyses = model.analyze(texts, spans_from_model=False)
    flagged = np.array([a.decision != "allow" for a in analyses])
    category_flags = np.array([[c in a.labels for c in MARKETING_CATEGORIES] for a in analyses])
    scores = np.array([a.score for a in analyses])
    groups = groups if groups is not None else np.arange(len(texts)).astype(str)
    note = (f"{name}: decisions as served on {len(texts):,} labelled rows"
            + (f", intervals resample its {len(set(groups)):,} groups" if len(set(groups)) < len(texts) else ""))
    blocked = np.array([a.decision == "block" for a in analyses])
    return heldout_checks(labels.any(axis=1), flagged, scores, groups, labels, category_flags,
                          MARKETING_CATEGORIES, note, n_boot, blocked)



def segment_row_keys(data: Path, **_: Any) -> list[str]:
    """Each row's identity in a file, as training recorded it (a segment: its text)."""
    from training.row_identity import file_keys, text_keys

    return file_keys(data, "text", text_keys)


TRAINING = KindTraining(train=train_false_marketing, score_file=score_segment_file, evaluate_file=evaluate_file,
                        evaluate_real_world=evaluate_real_world, row_keys=segment_row_keys)
