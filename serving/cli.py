"""``shopguard serve``: start the BentoML service."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from common.errors import InvalidInputError
from common.settings import existing_home, load_settings
from common.times import time_window
from common.words import counted
from kinds import MODEL_NAMES


def serve(
    port: int = typer.Option(3000, help="HTTP port"),
    host: str = typer.Option("127.0.0.1", help="interface to bind; 0.0.0.0 for all (put TLS and a firewall in front)"),
    workers: int | None = typer.Option(None, "--workers", min=1, max=64,
                                       help="worker processes (default SHOPGUARD_WORKERS, 1); they share the database"),
) -> None:
    """Serve the scoring API (``bentoml serve serving.service:ShopGuard``) on loopback unless
    ``--host`` says otherwise. The server dies with this command, whatever kills it."""
    from policy.document import load_policy
    from registry.release import read_release

    settings = load_settings()
    load_policy(settings.policy)  # a policy file that does not validate: one line naming the key, no server
    if settings.release:
        read_release(settings.release)  # a release file that is missing or not a release: one line, no server
    env = {**os.environ, "SHOPGUARD_HOME": str(settings.home), "BENTOML_HOME": str(settings.bentoml_home),
           "SHOPGUARD_WORKERS": str(workers or settings.workers)}
    # the service starts in the repository folder (--working-dir): files named relative to here stay these
    for variable, path in (("SHOPGUARD_RELEASE", settings.release), ("SHOPGUARD_POLICY", settings.policy)):
        if path is not None:
            env[variable] = str(Path(path).resolve())
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:ShopGuard",
               "--port", str(port), "--host", host, "--working-dir", str(root)]
    from serving.process import die_with_parent

    raise typer.Exit(subprocess.call(command, env=env, preexec_fn=die_with_parent))


audit_app = typer.Typer(help="Read the decision log.", no_args_is_help=True)


def _not_blank(**options: str | None) -> None:
    """A filter given empty would match everything or nothing without saying so: refused."""
    for name, value in options.items():
        if value is not None and not value.strip():
            raise typer.BadParameter("is empty: leave the option out to match every row",
                                     param_hint=f"--{name.replace('_', '-')}")


@audit_app.command("decisions")
def audit_decisions(
    entity: str | None = typer.Option(None, "--entity", help=(
        "listing, merchant or stream id (a merchant id also matches its normalized form)")),
    request_id: str | None = typer.Option(None, "--request-id", help="a response's request_id (as printed: in full)"),
    since: str | None = typer.Option(None, "--since", help="from this ISO time (UTC unless zoned), e.g. 2026-11-23T10:00"),
    until: str | None = typer.Option(None, "--until", help="before this ISO time (UTC unless zoned)"),
    decision: str | None = typer.Option(None, "--decision", help="block, review or allow"),
    model: str | None = typer.Option(None, "--model", help="model name or name:version"),
    limit: int = typer.Option(50, min=1, max=1_000_000, help="newest rows to print (the export has all)"),
    out: Path | None = typer.Option(None, "--out", help="export to .csv or .parquet (streamed in chunks)"),
) -> None:
    """What was decided, when (UTC, ISO 8601), by which model version and why. Reads only the
    rows it prints; an export streams every matching row in chunks (bounded memory), with
    reasons as structured columns (``serving/decision_export.py``)."""
    from rich.table import Table

    from common.terminal import plain, terminal_console
    from database.engine import make_engine
    from serving.decision_export import utc_iso
    from serving.decision_queries import latest_decisions

    if decision is not None and decision not in ("block", "review", "allow"):
        raise typer.BadParameter("--decision must be block, review or allow")
    _not_blank(entity=entity, request_id=request_id, model=model)
    if out is not None and out.suffix not in (".csv", ".parquet"):
        raise typer.BadParameter("--out must end in .csv or .parquet", param_hint="--out")
    start, end = time_window(since, until)
    settings = load_settings()
    logged_model = _logged_model(model, settings)
    engine = make_engine(existing_home(settings, model_store=False).database_url)
    filters = {"entity": entity, "request_id": request_id, "since": start, "until": end, "decision": decision,
               "model": logged_model}
    total, rows = latest_decisions(engine, limit, **filters)
    console = terminal_console()
    table = Table(title=counted(total, "decision") + (f", newest {len(rows):,} shown" if total > len(rows) else ""))
    for column in ("time (UTC)", "request", "type", "entity", "decision", "score", "model", "reasons"):
        table.add_column(column)
    for row in rows:
        table.add_row(utc_iso(row["at"]), row["request_id"], row["entity_type"], plain(row["entity_id"]),
                      row["decision"], f"{row['score']:.3f}", plain(row["model"]),
                      plain("; ".join(r["code"] for r in row["reasons"])))
    console.print(table)
    if out is not None:
        written = _export_decisions(engine, filters, out)
        terminal_console(stderr=True).print(plain(f"wrote {counted(written, 'row')} to {out}"))


def _logged_model(model: str | None, settings: Any) -> str | None:
    """``--model`` as the decision log names it: a known model name, or ``NAME:VERSION`` (an
    alias such as ``NAME:production`` or ``NAME:latest`` resolved through the registry; a literal
    version passed as given, since the log keeps versions this machine's store may no longer
    hold); an unknown model name is an error, not an empty table."""
    from kinds import model_kind
    from registry.aliases import ALIASES
    from registry.store import ModelRegistry

    if model is None:
        return None
    name, _, version = model.partition(":")
    model_kind(name)
    if version in (*ALIASES, "latest"):
        return ModelRegistry(existing_home(settings, model_store=False), create=False).resolve(model)
    return model if version else name


def _export_decisions(engine: Any, filters: dict[str, Any], out: Path) -> int:
    """Stream matching decisions into ``out`` chunk by chunk; returns the rows written."""
    from sqlalchemy import func, select

    from serving.decision_export import export_decisions
    from serving.decision_queries import decision_query

    write_whole(out, export_decisions(engine, out.suffix.lstrip("."), **filters))
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(decision_query(**filters).subquery())).scalar_one()


def write_whole(out: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``out`` through ``out.partial``: a reader never sees half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as handle:
        for data in chunks:
            handle.write(data)
    partial.replace(out)


@audit_app.command("verdicts")
def audit_verdicts(
    out: Path = typer.Option(..., "--out", help="file to write: .csv (spreadsheet-safe), .parquet or .jsonl"),
    since: str | None = typer.Option(None, "--since", help="from this ISO time (UTC unless zoned), e.g. 2026-11-23"),
    until: str | None = typer.Option(None, "--until", help="before this ISO time (UTC unless zoned)"),
    reviewer: str | None = typer.Option(None, "--reviewer", help="only this reviewer's verdicts (token name)"),
) -> None:
    """Export reviewers' verdicts, oldest first, streamed in chunks (bounded memory): time
    (UTC), reviewer, item, segment, ok or violation, label, note (``serving/verdict_export.py``)."""
    from common.terminal import plain, terminal_console
    from database.engine import make_engine
    from serving.verdict_export import FORMATS, count_verdicts, export_verdicts

    if out.suffix.lstrip(".") not in FORMATS:
        raise typer.BadParameter("--out must end in .csv, .parquet or .jsonl", param_hint="--out")
    _not_blank(reviewer=reviewer)
    start, end = time_window(since, until)
    filters = {"since": start, "until": end, "reviewer": reviewer}
    engine = make_engine(existing_home(model_store=False).database_url)
    write_whole(out, export_verdicts(engine, out.suffix.lstrip("."), **filters))
    written = count_verdicts(engine, **filters)
    terminal_console(stderr=True).print(plain(f"wrote {counted(written, 'verdict')} to {out}"))


def _read_base(path: Path, option: str = "--base") -> pd.DataFrame:
    from common.tables import read_table

    return read_table(path, option)


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def _contradictions(exported: pd.DataFrame, base: Path, key: str | None, label: str) -> pd.DataFrame | None:
    """Per reviewer: feedback rows whose label differs from the base file's label of the same id."""
    frame = _read_base(base)
    if key is None or key not in frame.columns or label not in frame.columns:
        return None
    joined = exported[[key, label, "feedback_reviewer"]].merge(
        frame[[key, label]].astype({key: str}), on=key, suffixes=("", "_base"))
    changed = joined[joined[label].astype(int) != joined[f"{label}_base"].astype(int)]
    return changed.groupby("feedback_reviewer").agg(
        rows=(label, "size"), now_positive=(label, "sum")).assign(
        now_negative=lambda t: t["rows"] - t["now_positive"])


def _with_base(exported: pd.DataFrame, base: Path | None, key: str | None) -> pd.DataFrame:
    """The base file's rows followed by the feedback rows; a feedback row replaces the base
    row with the same ``key`` (ids must stay unique)."""
    if base is None:
        return exported
    frame = _read_base(base)
    if key and key in frame.columns:
        frame = frame[~frame[key].astype(str).isin(set(exported[key].astype(str)))]
    return pd.concat([frame, exported], ignore_index=True, sort=False)


def export_feedback_command(
    name: str = typer.Argument(..., help=f"one of {', '.join(MODEL_NAMES)}"),
    out: Path = typer.Option(..., "--out", help=".parquet or .csv training file to write"),
    base: Path | None = typer.Option(None, "--base", exists=True, dir_okay=False,
                                     help="training file to extend with the feedback rows"),
    base_links: Path | None = typer.Option(None, "--base-links", exists=True, dir_okay=False,
                                           help="merchant-risk: the base file's links"),
) -> None:
    """Join reviewer feedback with the logged inputs into a file ``shopguard train NAME`` accepts."""
    from rich.table import Table

    from common.terminal import plain, terminal_console
    from database.engine import make_engine
    from kinds import model_kind
    from serving.feedback import export_feedback

    if out.suffix not in (".parquet", ".csv"):
        raise typer.BadParameter("--out must end in .parquet or .csv", param_hint="--out")
    exported = export_feedback(make_engine(load_settings().database_url), name)  # errors: shopguard/cli.py
    kind = model_kind(name)
    key = None if kind.segmented else kind.id_field
    if base is not None and (missing := [c for c in (kind.label_column, key) if c and c not in _read_base(base).columns]):
        raise InvalidInputError(f"--base {base}: no column {', '.join(missing)}; it is not a {name} training file",
                                field="--base")
    contradictions = _contradictions(exported.table, base, key, kind.label_column) if base is not None else None
    table = _with_base(exported.table, base, key)
    _write_table(table, out)
    console, log = terminal_console(), terminal_console(stderr=True)
    log.print(plain(f"wrote {counted(len(table), 'row')} ({len(exported.table):,} from feedback) to {out}"))
    if contradictions is not None and len(contradictions):
        report = Table(title="feedback that contradicts the base file's label, by reviewer")
        for column in ("reviewer", "rows", "now positive", "now negative"):
            report.add_column(column)
        for reviewer, row in contradictions.iterrows():
            report.add_row(str(reviewer), f"{row['rows']:,}", f"{row['now_positive']:,}", f"{row['now_negative']:,}")
        console.print(report)
    if exported.links is not None:
        links_out = out.with_name(f"{out.stem}.links{out.suffix}")
        links = exported.links if base_links is None else pd.concat(
            [_read_base(base_links, "--base-links"), exported.links])
        _write_table(links.drop_duplicates(), links_out)
        log.print(plain(f"wrote {counted(len(links), 'link')} to {links_out}; train with --links {links_out}"))


tokens_app = typer.Typer(help="API tokens (bearer tokens with scopes).", no_args_is_help=True)


def _token_store(create: bool = False):  # -> serving.auth.TokenStore
    from database.engine import make_engine
    from serving.auth import TokenStore

    return TokenStore(make_engine((load_settings() if create else existing_home(model_store=False)).database_url))


@tokens_app.command("create")
def create_token(
    name: str = typer.Option(..., "--name", help="who uses it (the reviewer name for feedback)"),
    scopes: str = typer.Option(..., "--scopes", help="comma-separated: score, feedback, read, admin"),
    save: Path | None = typer.Option(None, "--save", help="also write the token to this file (mode 600)"),
) -> None:
    """Create a token and print it once (only its sha256 is stored)."""
    from serving.auth import parse_scopes

    settings = load_settings()
    token = _token_store(create=True).create(name, parse_scopes(scopes), settings.actor)
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.touch(mode=0o600)
        save.write_text(token + "\n", encoding="utf-8")
    typer.echo(token)


@tokens_app.command("list")
def list_tokens() -> None:
    """Every token: name, scopes, who created it, when, and whether it is revoked."""
    from rich.table import Table

    from common.terminal import plain, terminal_console

    table = Table(title="API tokens")
    for column in ("name", "scopes", "created (UTC)", "created by", "revoked (UTC)"):
        table.add_column(column)
    for token in _token_store().list():
        table.add_row(plain(token.name), ",".join(token.scopes), f"{token.created_at:%Y-%m-%d %H:%M:%S}",
                      plain(token.created_by), f"{token.revoked_at:%Y-%m-%d %H:%M:%S}" if token.revoked_at else "")
    terminal_console().print(table)


@tokens_app.command("revoke")
def revoke_token(name: str = typer.Argument(..., help="the token's name")) -> None:
    """Revoke a token (refused within a few seconds by every worker)."""
    typer.echo(f"revoked {_token_store().revoke(name)}")


bento_app = typer.Typer(help="Package the service and its production models as a Bento.", no_args_is_help=True)


@bento_app.command("build")
def bento_build(
    version: str | None = typer.Option(None, "--version", help="Bento version (default: generated)"),
    context: Path | None = typer.Option(None, "--context", exists=True, file_okay=False,
                                        help="build context holding bentofile.yaml "
                                        "(default: this checkout)"),
) -> None:
    """Pin each model's production version (release.json, manifest hashes) and run
    ``bentoml build``: the Bento carries the service and those three models with their cards.
    Then ``bentoml containerize TAG`` makes an OCI image."""
    from rich.table import Table

    from common.terminal import terminal_console
    from serving.bento import PROJECT_ROOT, build_bento

    tag, release = build_bento(load_settings(), context or PROJECT_ROOT, version)
    table = Table(title=f"Bento {tag}")
    table.add_column("model")
    table.add_column("version")
    table.add_column("manifest sha256")
    for name, pinned in release.models.items():
        table.add_row(name, pinned.tag.split(":")[1], pinned.manifest_sha256[:16] + "...")
    terminal_console().print(table)
    settings = load_settings()  # the Bento is in this home's BentoML store, which containerize must be told
    print(f"bento: {tag}\ncontainerize: BENTOML_HOME={shlex.quote(str(settings.bentoml_home))} "
          f"bentoml containerize {tag}")
