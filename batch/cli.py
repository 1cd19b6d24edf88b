"""``shopguard batch ...``: score whole catalogues offline (local or Ray)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from batch.jobs import READERS
from model_registry.settings import load_settings

batch_app = typer.Typer(help="Score whole catalogues offline (local or Ray).", no_args_is_help=True)


def standing_blocks(source: str | None) -> dict[str, Any]:
    """Every standing merchant block from a file (``merchant_id`` or ``id``, ``decision``, ...;
    e.g. a merchant-risk batch output) or a database URL, by normalized merchant id; empty
    without a source."""
    from features.ids import merchant_key
    from model_registry.policy import MerchantDecision
    from serving.merchant_decisions import MerchantDecisionStore

    if source is None:
        return {}
    if "://" in source:
        from model_registry.database import make_engine

        return MerchantDecisionStore(make_engine(source), block_days=load_settings().merchant_block_days).all_blocked()
    path = Path(source)
    if not path.is_file() or path.suffix not in READERS:
        raise typer.BadParameter(f"{path} is not a .parquet, .csv or .jsonl file", param_hint="--merchant-decisions")
    frame = READERS[path.suffix](path)
    key = "merchant_id" if "merchant_id" in frame.columns else "id"
    blocks = frame[frame["decision"] == "block"]
    now = datetime.now(UTC)
    return {merchant_key(str(r[key])): MerchantDecision(str(r[key]), "block", float(r.get("score", 1.0)),
                                                        str(r.get("model", source)), now)
            for r in blocks.to_dict(orient="records")}


@batch_app.command("score")
def batch_score(
    reference: str = typer.Argument(..., help="NAME[:VERSION|production|candidate]; resolved once for the job"),
    input: str = typer.Option(..., "--input", help="a file or glob: .parquet, .csv or .jsonl in the API's record shape"),
    output: Path = typer.Option(..., "--output", help="folder for <input>.parquet results and .rejects.parquet"),
    engine: str = typer.Option("local", "--engine", help="local or ray"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="an existing Ray cluster (default: start one)"),
    workers: int = typer.Option(2, "--workers", min=1, help="ray: scoring actors"),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100_000),
    links: Path | None = typer.Option(None, "--links", help="merchant-risk: edge list src, dst, link_type"),
    merchant_decisions: str | None = typer.Option(None, "--merchant-decisions", help=(
        "apply the merchant rule from a file (e.g. a merchant-risk batch output) or a database URL")),
) -> None:
    """Score files with the service's runtime and policy; skip inputs already done."""
    from rich.console import Console

    from batch.jobs import input_files, read_links, run_local
    from model_registry.kinds import model_kind
    from model_registry.registry import ModelRegistry

    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine must be local or ray", param_hint="--engine")
    console = Console(stderr=True)
    settings = load_settings()
    registry = ModelRegistry(settings)
    tag = registry.resolve(reference)
    kind = model_kind(tag.split(":")[0])
    files = input_files(input)
    standing = standing_blocks(merchant_decisions)
    console.log(f"{tag}: {len(files)} input file(s), engine {engine}, {len(standing):,} standing merchant block(s)")
    if engine == "local":
        model = kind.runtime_class().from_bundle(registry.load(tag), device=settings.device)
        report = run_local(kind, model, files, output, lambda ids: {m: standing[m] for m in ids if m in standing},
                           links, console.log)
    else:
        from batch.ray_engine import run_ray

        snapshot = {m: d.__dict__ for m, d in standing.items()}
        report = run_ray(kind.name, tag, files, output, snapshot, read_links(links), workers, batch_size,
                         ray_address, console.log)
    typer.echo(json.dumps(report.as_dict(), indent=2))
