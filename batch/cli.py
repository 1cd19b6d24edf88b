"""``shopguard batch ...``: score whole catalogues offline (local or Ray)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from common.errors import InvalidInputError
from common.settings import existing_home, load_settings
from policy.document import PolicyDocument

batch_app = typer.Typer(help="Score whole catalogues offline (local or Ray).", no_args_is_help=True)


def standing_holds(source: str | None, policy: PolicyDocument) -> dict[str, Any]:
    """Every merchant on a hold, by normalized merchant id: from a file (``merchant_id`` or
    ``id``, ``decision``, ...; e.g. a merchant-risk batch output: its blocks, as the model's
    holds) or from a database URL (the holds in force, ``policy/store.py``); empty without a
    source."""
    from features.ids import merchant_key
    from policy.calls import MODEL_HOLD, MerchantHold

    if source is None:
        return {}
    if "://" in source:
        from database.engine import make_engine
        from policy.store import EnforcementStore

        return EnforcementStore(make_engine(source), policy).all_holds()
    from common.tables import read_table

    path = Path(source)
    frame = read_table(path, "--merchant-decisions")
    key = "merchant_id" if "merchant_id" in frame.columns else "id"
    missing = [c for c in (key, "decision") if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"--merchant-decisions {path}: no column {' or '.join(missing)}; it needs merchant_id "
                                "(or id) and decision, as a merchant-risk batch output has", field="--merchant-decisions")
    blocks = frame[frame["decision"] == "block"]
    hold = policy.merchants.model_hold
    raises = policy.calls.merchant_penalty_raises_to if hold.penalty == "review_hold" else "block"
    return {merchant_key(str(r[key])): MerchantHold(
        str(r[key]), hold.penalty, MODEL_HOLD, f"{r.get('model', source)} decided block (score "
        f"{float(r.get('score', 1.0)):.3f}, {path.name})", raises, None)
        for r in blocks.to_dict(orient="records")}


def job_fingerprint(policy: PolicyDocument, standing: dict[str, Any], links: Path | None) -> str:
    """What besides the model changes a job's answers: the policy's version, the merchant holds
    and the links file. A re-run into the same folder redoes inputs done under other ones."""
    import hashlib

    holds = hashlib.sha256(json.dumps(sorted((m, sorted(h.__dict__.items())) for m, h in standing.items()),
                                      default=str).encode()).hexdigest()[:12]
    links_file = "none" if links is None else f"{links.resolve()}:{links.stat().st_size}:{links.stat().st_mtime}"
    return f"policy {policy.version}, holds {holds}, links {links_file}"


@batch_app.command("score")
def batch_score(
    reference: str = typer.Argument(..., help="NAME[:VERSION|production|candidate]; resolved once for the job"),
    input: str = typer.Option(..., "--input", help="a file or glob: .parquet, .csv or .jsonl in the API's record shape"),
    output: Path = typer.Option(..., "--output", help="folder for <input>.parquet results and .rejects.parquet"),
    engine: str = typer.Option("local", "--engine", help="local or ray"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="an existing Ray cluster (default: start one)"),
    workers: int = typer.Option(2, "--workers", min=1, help="ray: scoring actors"),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100_000,
                                    help="ray: rows in each batch an actor scores"),
    links: Path | None = typer.Option(None, "--links", exists=True, dir_okay=False,
                                      help="merchant-risk: edge list src, dst, link_type"),
    merchant_decisions: str | None = typer.Option(None, "--merchant-decisions", help=(
        "apply the merchant rule from a file (e.g. a merchant-risk batch output) or a database URL (the holds "
        "in force)")),
) -> None:
    """Score files with the service's runtime and policy (SHOPGUARD_POLICY's per-call rules);
    skip inputs already done. Batch scoring never writes enforcement (rooms, credit, points)."""
    from batch.jobs import input_files, read_links, run_local
    from common.terminal import terminal_console
    from kinds import kind_of_reference
    from policy.document import load_policy
    from registry.store import ModelRegistry

    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine must be local or ray", param_hint="--engine")
    console = terminal_console(stderr=True)
    files = input_files(input)
    settings = load_settings()
    policy = load_policy(settings.policy)
    standing = standing_holds(merchant_decisions, policy)
    kind = kind_of_reference(reference)
    registry = ModelRegistry(existing_home(settings))
    tag = registry.resolve(reference)
    console.log(f"{tag}: {len(files)} input file(s), engine {engine}, policy {policy.version}, "
                f"{len(standing):,} merchant(s) on a hold")
    job = job_fingerprint(policy, standing, links)
    if engine == "local":
        model = kind.runtime_class().from_bundle(registry.load(tag), device=settings.device)
        report = run_local(kind, model, files, output, lambda ids: {m: standing[m] for m in ids if m in standing},
                           links, console.log, rules=policy.calls, job=job)
    else:
        from batch.ray_engine import run_ray

        snapshot = {m: d.__dict__ for m, d in standing.items()}
        report = run_ray(kind.name, tag, files, output, snapshot, read_links(kind, links), workers, batch_size,
                         ray_address, console.log, rules=policy.calls.model_dump(), job=job)
    typer.echo(json.dumps(report.as_dict(), indent=2))
