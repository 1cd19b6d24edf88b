"""``shopguard models ...``: list, show, card, promote, rollback, history."""

from __future__ import annotations

import sys
import unicodedata
from functools import partial
from pathlib import Path
from typing import Any, Literal

import typer
from rich.markdown import Markdown
from rich.table import Table

from common.errors import ShopGuardError
from common.settings import existing_home
from common.terminal import plain, terminal_console
from common.words import counted
from kinds import ModelKind, kind_of_reference, model_kind
from kinds.runtime import RuntimeBase
from registry.card_text import ABOVE_ONE_RULE, above_any_score, threshold_words
from registry.metrics import RealWorldChecks
from registry.store import FORCED_NOTE, LoadedBundle, ModelRegistry, ServableCheck, ShortfallCheck

console = terminal_console()
# The paired gate of ``promote --data`` scores files, which is training's job: the ``shopguard``
# CLI hands it in through the context object, so this package never imports ``training``.
models_app = typer.Typer(help="Inspect, promote and roll back registered models.", no_args_is_help=True)


@models_app.command("list")
def list_models(name: str | None = typer.Argument(None, help="only this model")) -> None:
    """Every registered version with its aliases and the running workers answering with it,
    model by model, each model's newest first."""
    if name is not None:
        model_kind(name)  # an unknown name is an error, not an empty table
    registry = ModelRegistry(existing_home(model_store=False), create=False)  # versions, aliases: the database's
    table = Table(title="registered models")
    for column in ("name", "version", "created (UTC)", "aliases", "answering (workers)"):
        table.add_column(column)
    serving: dict[str, dict[str, Any]] = {}
    for info in registry.versions(name):
        if info.name not in serving:
            serving[info.name] = registry.serving(info.name)
        workers = sum(w["version"] == info.version for w in serving[info.name]["workers"])
        table.add_row(plain(info.name), plain(info.version), info.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                      plain(", ".join(info.aliases)), str(workers) if workers else "")
    console.print(table)


@models_app.command("show")
def show(reference: str = typer.Argument(..., help="NAME[:VERSION|production|candidate]")) -> None:
    """A version's manifest summary: thresholds, the figures on real held-out text first (the
    synthetic test split's after them), lineage, files."""
    kind_of_reference(reference)
    bundle = ModelRegistry(existing_home()).load(reference)
    m = bundle.manifest
    table = Table(title=f"{m.tag}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    headline = m.headline_metrics()
    rows = {
        "created": m.created_at, "task": m.task,
        "feature set": f"{m.feature_set.name} v{m.feature_set.version} "
                       f"({counted(len(m.feature_set.features), 'feature')})",
        "thresholds": "; ".join(f"{k}: {threshold_words(t.block, t.review, '>=')}" for k, t in m.thresholds.items()),
        **({"thresholds above 1": ABOVE_ONE_RULE} if any(above_any_score(t.block) or above_any_score(t.review)
                                                         for t in m.thresholds.values()) else {}),
        **_real_rows(m.metrics.real_heldout or m.metrics.real_world),
        **{f"synthetic {key.replace('_', ' ')}": "–" if value is None else f"{value:.4f}"
           for key, value in headline.items()},
        "baselines": "; ".join(f"{name} (test PR-AUC {b.test.headline_pr_auc:.4f})" for name, b in m.baselines.items()
                               if b.test.headline_pr_auc is not None) or "–",
        "training files": "; ".join(f"{f.path} ({counted(f.rows, 'row')}, sha256 {f.sha256[:12]})"
                                    for f in m.lineage.training_files),
        "git commit": str(m.lineage.git_commit), "seed": str(m.lineage.seed),
        "files": ", ".join(sorted(m.files)), "path": str(bundle.path),
    }
    for key, value in rows.items():
        table.add_row(key, plain(value))
    console.print(table)


def _real_rows(checks: RealWorldChecks | None) -> dict[str, str]:
    """Rows of ``models show`` for the real-text figures: value, interval, target and verdict."""
    if checks is None or not checks.available:
        return {"real held-out": "none: " + (checks.note if checks is not None else "no real labelled text")}
    rows = {}
    for check in checks.checks:
        if check.value is None:
            continue
        interval = "" if check.low is None or check.high is None else f" [{check.low:.3f}, {check.high:.3f}]"
        target = "" if check.target is None else (
            f", target {'<=' if check.direction == 'at_most' else '>='} {check.target:g}: {check.verdict}")
        rows[f"real: {check.description}"] = f"{check.value:.3f}{interval} on {counted(check.rows, 'row')}{target}"
    return rows


@models_app.command("card")
def card(
    reference: str = typer.Argument(..., help="NAME[:VERSION|production|candidate]"),
    format: Literal["md", "html", "json"] = typer.Option("md", "--format", help="md, html or json"),
) -> None:
    """Print a model card (verified bundle) as Markdown, HTML or JSON."""
    kind = kind_of_reference(reference)
    text = ModelRegistry(existing_home()).card(reference, format, text_model=kind.text_model)
    if format == "md" and sys.stdout.isatty():
        console.print(Markdown(text))
    else:
        sys.stdout.write(text + "\n")


def _said_why(reason: str) -> str:
    """A ``--reason`` must say something: it is the audit history's only why."""
    if not reason.strip():
        raise typer.BadParameter("say why: the reason is kept in the audit history; an empty one is refused")
    # An escape sequence in a reason would redraw an auditor's terminal when the history is shown.
    hidden = sorted({f"U+{ord(c):04X}" for c in reason.strip() if unicodedata.category(c) in ("Cc", "Cf")})
    if hidden:
        raise typer.BadParameter(f"a reason is one line of visible text; it holds control or format characters "
                                 f"({', '.join(hidden)})")
    return reason.strip()


PAIRED_GATE = "paired_gate"  # the key of the composed CLI's context object holding the gate


@models_app.command("promote")
def promote(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="NAME:VERSION (or NAME:candidate)"),
    reason: str = typer.Option(..., "--reason", callback=_said_why, help="why, for the audit history"),
    force: bool = typer.Option(False, "--force", help=(
        "promote even if it is worse than production, or if production's bundle cannot be loaded to compare")),
    tolerance: float | None = typer.Option(None, "--tolerance", min=0.0,
                                           help="allowed PR-AUC drop (default SHOPGUARD_PROMOTION_PR_AUC_TOLERANCE, 0.01)"),
    data: Path | None = typer.Option(None, "--data", exists=True, dir_okay=False, help=(
        "labelled held-out file: gate on both versions scored on it (paired) instead of their stored test "
        "figures, which come from different test splits")),
    links: Path | None = typer.Option(None, "--links", exists=True, dir_okay=False,
                                      help="merchant-risk: the --data file's links"),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="paired-bootstrap resamples (with --data)"),
    min_per_class: int = typer.Option(30, "--min-per-class", min=1, help=(
        "with --data: positive and negative rows a label needs before the gate compares on it")),
) -> None:
    """Make a version production; running services swap it in within
    SHOPGUARD_FOLLOW_SECONDS (10 s), without a restart. A candidate worse than
    production beyond the tolerance is refused unless --force: compared on --data when given
    (both versions on the same rows, the paired bootstrap of `models compare`), else on their
    stored test PR-AUC."""
    kind = kind_of_reference(reference)
    gate: ShortfallCheck | None = None
    if data is not None:
        paired = (ctx.obj or {}).get(PAIRED_GATE)  # gate(production, candidate, tolerance, *, data, links, ...)
        if paired is None:
            raise ShopGuardError("--data needs the training package's file scorers; run promote through `shopguard`.")
        gate = partial(paired, data=data, links=links, n_boot=bootstrap, min_per_class=min_per_class,
                       notify=lambda note: console.print(f"[yellow]note:[/yellow] {plain(note)}"))
    registry = ModelRegistry(existing_home())
    event = registry.promote(reference, reason=reason, force=force, tolerance=tolerance, gate=gate,
                             servable=api_refusal(kind))
    console.print(plain(f"{event.model_name}: production {event.previous_version or '(none)'} -> {event.version}"))
    _say_when_served(registry)


def api_refusal(kind: ModelKind) -> ServableCheck | None:
    """Production is what the API serves: why a version could not be served (it needs inputs
    the API's records lack, as a merchant model trained on a generic table's columns), for the
    kinds whose runtime can need such inputs; None for the others (nothing to load)."""
    runtime_class = kind.runtime_class()
    declared = next((c for c in runtime_class.__mro__ if "missing_api_fields" in vars(c)), RuntimeBase)
    if declared is RuntimeBase:
        return None

    def refusal(bundle: LoadedBundle) -> str | None:
        missing = runtime_class.from_bundle(bundle).missing_api_fields(kind.record)
        if not missing:
            return None
        return (f"{bundle.manifest.tag} uses features {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} "
                f"that the API's {kind.record.__name__} lacks, so the service could not serve it (it keeps the "
                "current version, and cannot start on it). Commands that take NAME:VERSION still use it by "
                "reference; for production, train a model on the API's columns.")
    return refusal


@models_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="model name"),
    reason: str = typer.Option(..., "--reason", callback=_said_why, help="why, for the audit history"),
) -> None:
    """Point production back at the version before the current one."""
    kind = model_kind(name)
    registry = ModelRegistry(existing_home())
    event = registry.rollback(name, reason=reason, servable=api_refusal(kind))
    console.print(plain(f"{event.model_name}: production {event.previous_version} -> {event.version}"))
    _say_when_served(registry)


def _say_when_served(registry: ModelRegistry) -> None:
    seconds = registry.settings.follow_seconds
    if seconds > 0:
        typer.echo(f"running services serve it within {seconds:g} s (`shopguard models list` shows who answers)",
                   err=True)  # a note, not the command's result
    else:
        typer.echo("SHOPGUARD_FOLLOW_SECONDS=0: running services serve it after a restart", err=True)


@models_app.command("history")
def history(name: str = typer.Argument(..., help="model name")) -> None:
    """Every alias change of a model: time, action, versions, actor, whether it was forced
    past the PR-AUC guard, and the reason as recorded."""
    model_kind(name)  # an unknown name is an error, not an empty table
    events = ModelRegistry(existing_home(model_store=False), create=False).history(name)
    if not events:
        raise ShopGuardError(f"{name} has no alias changes yet: `shopguard models promote {name}:VERSION` makes one.")
    table = Table(title=f"{name} alias history")
    for column in ("time (UTC)", "alias", "action", "from", "to", "actor", "forced", "reason"):
        table.add_column(column)
    for e in events:
        table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%S"), plain(e.alias), plain(e.action), plain(e.previous_version),
                      plain(e.version), plain(e.actor), "yes" if f"[{FORCED_NOTE}" in e.reason else "", plain(e.reason))
    console.print(table)


@models_app.command("adopt")
def adopt(
    reference: str = typer.Argument(..., help="NAME:VERSION in the model store"),
    reason: str = typer.Option(..., "--reason", callback=_said_why,
                               help="why it is trusted, for the audit history"),
) -> None:
    """Record a version registered by an older ShopGuard (before manifests were hashed into
    the registry database): its files are verified, then its manifest hash is recorded."""
    kind_of_reference(reference)
    manifest = ModelRegistry(existing_home()).adopt(reference, reason=reason)
    console.print(f"recorded {manifest.tag}; its manifest is now checked at every load")
