"""``shopguard data ...`` and ``shopguard train ...`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from common.errors import ShopGuardError
from common.tables import first_line
from common.terminal import plain
from kinds import kind_of_reference
from training.kind_training import add_train_commands
from training.report_tables import (
    console,
    load_config,
    log,
    marketing_table,
    note,
    progress_status,
    real_checks_table,
)

data_app = typer.Typer(help="Generate and prepare data.", no_args_is_help=True)
generate_app = typer.Typer(help="Generate seeded synthetic data with a data card.", no_args_is_help=True)
data_app.add_typer(generate_app, name="generate")
train_app = typer.Typer(help="Train a model, evaluate it, register it as candidate.", no_args_is_help=True)
add_train_commands(train_app)  # shopguard train <kind>: each kind's own command (kinds/)


@generate_app.command("listings")
def generate_listings_command(
    n: int = typer.Option(50_000, "--n", min=100, help="number of listings"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="random seed; same seed, same bytes"),
    out: Path = typer.Option(Path("data/listings.parquet"), help=".parquet or .csv"),
) -> None:
    """Write a synthetic listing catalogue and its data card."""
    from kinds.listing_quality.generator import (
        ListingGenerationConfig,
        generate_listings,
        listing_data_card,
    )
    from training.data.files import card_path_for, check_table_path, write_table

    check_table_path(out)  # before the work
    config = ListingGenerationConfig(n=n, seed=seed)
    frame = generate_listings(config)
    write_table(frame, out)
    card_path_for(out).write_text(listing_data_card(frame, config), encoding="utf-8")
    note(plain(f"wrote {len(frame):,} listings to {out} ({frame['is_inferior'].mean():.1%} inferior); "
               f"data card {card_path_for(out)}"))


@generate_app.command("merchants")
def generate_merchants_command(
    n: int = typer.Option(20_000, "--n", min=100, help="number of merchants"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="random seed; same seed, same bytes"),
    out: Path = typer.Option(Path("data/merchants.parquet"), help=".parquet or .csv"),
) -> None:
    """Write synthetic merchants, their links (<out>.links.<ext>) and a data card."""
    from kinds.merchant_risk.generator import (
        MerchantGenerationConfig,
        generate_merchants,
        merchant_data_card,
    )
    from training.data.files import card_path_for, check_table_path, write_table

    check_table_path(out)  # before the work
    config = MerchantGenerationConfig(n=n, seed=seed)
    merchants, links = generate_merchants(config)
    links_out = links_path_for(out)
    write_table(merchants, out)
    write_table(links, links_out)
    card_path_for(out).write_text(merchant_data_card(merchants, links, config), encoding="utf-8")
    note(plain(f"wrote {len(merchants):,} merchants to {out} ({merchants['is_suspicious'].mean():.1%} "
               f"suspicious), {len(links):,} links to {links_out}; data card {card_path_for(out)}"))


def links_path_for(out: Path) -> Path:
    """Where the link table of a generated merchant file is written."""
    return out.with_name(out.stem + ".links" + out.suffix)


@generate_app.command("transcripts")
def generate_transcripts_command(
    n: int = typer.Option(20_000, "--n", min=100, help=(
        "generated segments; with ../shared/data about half as many real-text rows are added")),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="random seed; same seed, same bytes"),
    out: Path = typer.Option(Path("data/transcripts.parquet"), help=".parquet, .csv or .jsonl"),
) -> None:
    """Write synthetic livestream transcript segments with multi-label truth and a data card."""
    from kinds.false_marketing.generator import (
        TranscriptGenerationConfig,
        generate_transcripts,
        transcript_data_card,
    )
    from training.data.files import card_path_for, check_table_path, write_table

    check_table_path(out, (".parquet", ".csv", ".jsonl"))  # before the work
    config = TranscriptGenerationConfig(n=n, seed=seed)
    frame = generate_transcripts(config)
    if out.suffix.lower() == ".jsonl":
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
    else:
        write_table(frame, out)
    card_path_for(out).write_text(transcript_data_card(frame, config), encoding="utf-8")
    note(plain(f"wrote {len(frame):,} segments to {out} ({(frame['labels'] != '').mean():.1%} with "
               f"violations); data card {card_path_for(out)}"))


@data_app.command("live-asr")
def export_live_asr_command(
    out: Path = typer.Option(Path("data/live_asr.jsonl"), help=".jsonl, .csv or .parquet"),
    project_labels: bool = typer.Option(True, help="add this project's own annotation rounds"),
) -> None:
    """Write the labelled real live-room sentences of ../shared/data/live_asr (both annotators
    agreed) as a training file: text, labels, room, platform, clip, label_source."""
    from training.data import live_asr
    from training.data.files import write_table
    from training.data.real_text import require_shared_data

    frame = live_asr.labelled_sentences(require_shared_data(), live_asr.PROJECT_LABELS if project_labels else None)
    if out.suffix.lower() == ".jsonl":
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
    else:
        write_table(frame, out)
    note(plain(f"wrote {len(frame):,} labelled live-room sentences from {frame['room'].nunique()} rooms to {out} "
               f"({(frame['labels'] != '').mean():.1%} violating); sources: "
               f"{frame['label_source'].value_counts().to_dict()}"))


@train_app.command("base-encoder")
def train_base_encoder(
    out: Path | None = typer.Option(None, "--out", help=(
        "checkpoint folder (default: $SHOPGUARD_HOME/base_models/char-bert-<key>, reused when it exists)")),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False,
                                       help="JSON file of PretrainConfig"),
    epochs: int | None = typer.Option(None, help="override the config's epochs"),
    threads: int | None = typer.Option(None, "--threads", min=0, help=(
        "PyTorch threads (0: one per core); the config's default, 1, suits a machine busy with other work")),
    force: bool = typer.Option(False, "--force", help="retrain even when a verified base is already there"),
) -> None:
    """Pretrain the character encoder on real text from ../shared/data (masked-LM) as a reusable
    base for `train false-marketing --base-model`; prints the folder, and only the folder, on
    stdout: `BASE=$(shopguard train base-encoder)`."""
    from common.settings import load_settings
    from training.data.real_text import require_shared_data
    from training.pretrain import PretrainConfig, base_model_folder, pretrain_base_model

    cfg = load_config(config, PretrainConfig, {"epochs": epochs, "num_threads": threads})
    root = require_shared_data()
    folder = out or base_model_folder(load_settings().home, cfg, root)
    with progress_status("pretraining the base encoder") as progress:
        folder, manifest = pretrain_base_model(cfg, root, folder, progress, force)
    last = manifest["training"]["history"][-1]
    note(plain(f"base encoder: {folder}\n  corpus {manifest['corpus']['texts']:,} real texts; held-out masked-token "
               f"accuracy {last['masked_accuracy']:.3f} (loss {last['evaluation_loss']:.3f}); "
               f"{manifest['training']['train_seconds']:.0f}s"))
    typer.echo(str(folder))


def evaluate_command(
    reference: str = typer.Argument(..., help="a model with checks (false-marketing, listing-quality ...) "
                                              "[:VERSION|production|candidate]"),
    data: Path | None = typer.Option(None, "--data", exists=True, dir_okay=False, help=(
        "a file to check: segments (`text`, optional `labels` or a binary `label`) or listings "
        "(`title`, optional attributes and `is_inferior`); without it, the built-in real-world checks")),
    binary_category: str | None = typer.Option(None, "--binary-category", help=(
        "false-marketing: the --data file has a binary `label` column meaning this category")),
    group_column: str | None = typer.Option(None, "--group-column", help=(
        "a column grouping the file's rows (rooms, sources): intervals resample groups (default room; "
        "rows where the file has none); a column named here must be in the file")),
    out: Path | None = typer.Option(None, "--out", help="write the results as JSON (.json)"),
) -> None:
    """Decisions of a registered text model on real text: the built-in real-world checks on
    ../shared/data, or binary F1, flag rates, recall, ROC-AUC and per-category metrics on any file."""
    from common.settings import existing_home
    from registry.store import ModelRegistry
    from training.evaluate import (
        evaluable_kind,
        evaluate_file,
        evaluate_overlap,
        evaluate_real_world,
        overlap_line,
        overlap_warning,
    )

    kind_of_reference(reference)
    if out is not None and out.suffix.lower() != ".json":
        raise typer.BadParameter(f"{out.name}: the results are written as JSON; name a .json file", param_hint="--out")
    bundle = ModelRegistry(existing_home()).load(reference)
    evaluable_kind(bundle)
    overlap = evaluate_overlap(bundle, data) if data is not None else None
    with log.status(f"scoring with {bundle.tag}"):
        if data is None:
            checks, metrics = evaluate_real_world(bundle), {}
        else:
            checks, metrics = evaluate_file(bundle, data, binary_category, group_column)
    overlaps = f" ({overlap_line(overlap)})" if overlap is not None else ""
    if metrics:
        console.print(marketing_table(f"{bundle.tag} on {data.name}{overlaps}", metrics))
    console.print(real_checks_table(f"{bundle.tag}: decisions{overlaps}", {data.name if data else "real": checks}))
    warning = overlap_warning(overlap, data.name) if overlap is not None and data is not None else None
    if warning:
        note(f"[bold red]WARNING: {plain(warning)}[/]")
    elif overlap is not None and overlap.older_note():
        note(f"[yellow]note:[/yellow] {plain(overlap.older_note() or '')}")
    if out:
        payload = {"model": bundle.tag, "data": str(data) if data else "../shared/data (check part)",
                   "rows": max((c.rows for c in checks.checks), default=0),
                   "overlaps_training_rows": None if overlap is None else overlap.overlapping,
                   "training_overlap": None if overlap is None else overlap_line(overlap),
                   "decisions": checks.model_dump(mode="json"),
                   "systems": {name: {c: m.model_dump(mode="json") for c, m in per.items()}
                               for name, per in metrics.items()}}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        note(plain(f"wrote {out}"))


def compare_command(
    first: str = typer.Argument(..., help="NAME:A, e.g. listing-quality:production (the champion)"),
    second: str = typer.Argument(..., help="NAME:B, e.g. listing-quality:candidate (the challenger)"),
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False,
                              help="labelled held-out file, in the model's training format"),
    links: Path | None = typer.Option(None, "--links", exists=True, dir_okay=False,
                                      help="merchant-risk: the file's links"),
    binary_category: str | None = typer.Option(None, "--binary-category", help="false-marketing: binary label"),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="paired-bootstrap resamples for the CIs"),
    out: Path | None = typer.Option(None, "--out", help="write the comparison as .json or .md"),
) -> None:
    """Champion / challenger: both versions on the same file, metric deltas with paired-
    bootstrap CIs, decision flips and per-slice changes."""
    from common.settings import existing_home
    from registry.store import ModelRegistry
    from training.compare import (
        COMPARISON_COLUMNS,
        DECISIONS,
        compare_scored,
        comparison_rows,
        missing_links_note,
        score_file,
        training_overlaps,
    )
    from training.compare import write_comparison as write

    if out is not None and out.suffix.lower() not in (".json", ".md"):  # was JSON under any suffix
        raise typer.BadParameter(f"--out must end in .json or .md, not {out.suffix or 'no suffix'}", param_hint="--out")
    kind_of_reference(first), kind_of_reference(second)
    registry = ModelRegistry(existing_home())
    bundles = [registry.load(first), registry.load(second)]
    if bundles[0].manifest.model_name != bundles[1].manifest.model_name:
        raise ShopGuardError(f"{bundles[0].tag} and {bundles[1].tag} are different models; compare two "
                             "versions of one model.")
    links_note = missing_links_note(data, links)
    if links_note:
        note(f"[yellow]warning:[/yellow] {plain(links_note)}")
    for overlap in training_overlaps(data, bundles, links=links):
        if overlap.overlaps:
            note(f"[yellow]warning:[/yellow] {plain(overlap.tag)} was trained on {overlap.describe()} of "
                 f"{plain(data.name)}: its figures here are not held-out figures; compare on rows neither "
                 "version was trained on.")
        if overlap.older_note():
            note(f"[yellow]note:[/yellow] {plain(overlap.older_note() or '')}")
    scored = []
    for bundle in bundles:
        with log.status(plain(f"scoring {data.name} with {bundle.tag}")):
            scored.append(score_file(bundle, data, links=links, binary_category=binary_category))
    comparison = compare_scored(scored[0], scored[1], (bundles[0].tag, bundles[1].tag), data, bootstrap)
    table = Table(title=f"{comparison.model_b} (B) against {comparison.model_a} (A) on {data.name}")
    for column in COMPARISON_COLUMNS:
        table.add_column(column)
    for row in comparison_rows(comparison):
        table.add_row(*row)
    console.print(table)
    flips = Table(title=f"decision flips: {comparison.flipped_rows:,} of {comparison.rows:,} rows")
    flips.add_column("A \\ B")
    for decision in DECISIONS:
        flips.add_column(decision)
    for a in DECISIONS:
        flips.add_row(a, *(f"{comparison.decision_flips[a][b]:,}" for b in DECISIONS))
    console.print(flips)
    if out:
        write(comparison, out)
        note(plain(f"wrote {out}"))


def enforcement_rooms_command(
    segments: Path | None = typer.Option(None, "--segments", exists=True, dir_okay=False, help=(
        "held-out decisions (heldout_segments.parquet of a training run); default: the production "
        "false-marketing version's")),
    policy_file: Path | None = typer.Option(None, "--policy", exists=True, dir_okay=False,
                                            help="a policy file (default: SHOPGUARD_POLICY)"),
    chunk_sentences: int = typer.Option(5, "--chunk-sentences", min=1, max=1000, help="sentences per call"),
    out: Path | None = typer.Option(None, "--out", help="write every figure and each room's detail as .json"),
) -> None:
    """Replay whole held-out live_asr rooms (every sentence decided by a model that never saw
    its room) through the enforcement policy: rooms acted on by how many violations they hold,
    how soon, actions resting on clean speech, and clean-only broadcasts (each room without its
    violating sentences) acted on."""
    from common.settings import existing_home, load_settings
    from kinds.false_marketing.pipeline import heldout_segments_file
    from policy.document import load_policy
    from registry.store import ModelRegistry
    from training.data.real_text import shared_data_dir
    from training.room_replay import broadcast_order, replay_rooms, summarize

    if out is not None and out.suffix != ".json":
        raise typer.BadParameter("--out must end in .json", param_hint="--out")
    settings = load_settings()
    if segments is None:
        tag = ModelRegistry(existing_home(settings)).resolve("false-marketing:production")
        segments = heldout_segments_file(settings.home, tag)
    if not segments.is_file():
        raise ShopGuardError(f"{segments} does not exist: train false-marketing with --real (the demo does) to "
                             "decide held-out rooms, or pass --segments")
    held_out = _held_out_decisions(segments)
    root = shared_data_dir()
    if root is None:
        raise ShopGuardError("../shared/data (or SHOPGUARD_SHARED_DATA) is needed for the rooms' broadcast order")
    policy = load_policy(policy_file or settings.policy)
    with progress_status("replaying held-out rooms"):
        results = replay_rooms(held_out, broadcast_order(root), policy, chunk_sentences)
    summary = summarize(results, policy, chunk_sentences)
    console.print(rooms_table(summary, f"{summary['rooms']} held-out rooms, {summary['sentences']:,} sentences, "
                                       f"policy {policy.version}, {chunk_sentences} sentences a call"))
    console.print(f"actions resting on clean speech (lost once reviewers overturn every clean-labelled segment): "
                  f"{summary['actions_resting_on_clean']:.0%} of {summary['rooms_acted_on']} rooms acted on; "
                  f"clean-only broadcasts acted on: {summary['clean_only_rooms_acted_on']:.0%} "
                  f"({summary['clean_only_actions']}); credit charges on clean segments: "
                  f"{summary['charges_on_clean']}")
    if out is not None:
        out.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        note(plain(f"wrote {out}"))


def rooms_table(summary: dict, title: str) -> Table:
    """The rooms of ``enforcement rooms`` by how many violations they hold (a band without a
    first action or a stop shows "–" for its median sentence)."""
    table = Table("violations in the room", "rooms", "acted on", "restricted or stopped", "stopped",
                  "median sentence of first action", "median sentence of stop", title=title)
    for band in summary["by_violations"]:
        table.add_row(band["violations"], str(band["rooms"]), f"{band['acted_on']:.0%}",
                      f"{band['restricted_or_stopped']:.0%}", f"{band['stopped']:.0%}",
                      _or_dash(band["median_sentence_first_action"]), _or_dash(band["median_sentence_stop"]))
    return table


def _or_dash(value: object) -> str:
    return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


HELD_OUT_COLUMNS = ("sha256", "room", "labels", "decision")


def _held_out_decisions(path: Path) -> Any:
    """A training run's held-out decisions (``heldout_segments.parquet``); an error naming the
    file when it is not one (a traceback before)."""
    import pandas as pd

    from common.errors import InvalidInputError

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"--segments {path}: not a Parquet file ({first_line(exc)}); pass a training run's "
                                "heldout_segments.parquet", field="--segments") from None
    missing = [c for c in HELD_OUT_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"--segments {path}: no column {', '.join(missing)}; pass a training run's "
                                "heldout_segments.parquet", field="--segments")
    return frame
