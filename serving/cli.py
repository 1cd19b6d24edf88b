"""``shopguard serve``: start the BentoML service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import typer

from model_registry.kinds import MODEL_NAMES
from model_registry.settings import load_settings


def serve(
    port: int = typer.Option(3000, help="HTTP port"),
    host: str = typer.Option("127.0.0.1", help="interface to bind; 0.0.0.0 for all"),
) -> None:
    """Serve the scoring API (``bentoml serve serving.service:ShopGuard``)."""
    settings = load_settings()
    env = {**os.environ, "SHOPGUARD_HOME": str(settings.home), "BENTOML_HOME": str(settings.bentoml_home)}
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:ShopGuard",
               "--port", str(port), "--host", host, "--working-dir", str(root)]
    raise typer.Exit(subprocess.call(command, env=env))


audit_app = typer.Typer(help="Read the decision log.", no_args_is_help=True)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--since {value!r} is not an ISO time such as 2026-11-23 or "
                                 "2026-11-23T10:00:00") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_app.command("decisions")
def audit_decisions(
    entity: str | None = typer.Option(None, "--entity", help="listing, merchant or stream id"),
    request_id: str | None = typer.Option(None, "--request-id", help="a response's request_id"),
    since: str | None = typer.Option(None, "--since", help="ISO time, e.g. 2026-11-23T10:00"),
    decision: str | None = typer.Option(None, "--decision", help="block, review or allow"),
    model: str | None = typer.Option(None, "--model", help="model name or name:version"),
    limit: int = typer.Option(50, help="rows to print (the export has all)"),
    out: Path | None = typer.Option(None, "--out", help="export to .csv or .parquet"),
) -> None:
    """What was decided, when, by which model version and why."""
    from rich.console import Console
    from rich.table import Table

    from model_registry.database import make_engine
    from serving.decision_log import query_decisions

    if decision is not None and decision not in ("block", "review", "allow"):
        raise typer.BadParameter("--decision must be block, review or allow")
    rows = query_decisions(make_engine(load_settings().database_url), entity_id=entity,
                           request_id=request_id, since=_parse_since(since), decision=decision,
                           model=model)
    console = Console()
    table = Table(title=f"{len(rows):,} decision(s)")
    for column in ("time (UTC)", "request", "type", "entity", "decision", "score", "model", "reasons"):
        table.add_column(column)
    for row in rows[-limit:]:
        table.add_row(row["at"].strftime("%Y-%m-%d %H:%M:%S"), row["request_id"][:12], row["entity_type"],
                      row["entity_id"], row["decision"], f"{row['score']:.3f}", row["model"],
                      "; ".join(r["code"] for r in row["reasons"]))
    console.print(table)
    if out is not None:
        frame = pd.DataFrame(rows)
        for key in ("reasons", "inputs"):
            frame[key] = frame[key].map(lambda v: json.dumps(v, ensure_ascii=False)) if len(frame) else []
        _write_table(frame, out)
        console.print(f"wrote {len(frame):,} rows to {out}")


def _read_base(path: Path) -> pd.DataFrame:
    readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv,
               ".jsonl": lambda p: pd.read_json(p, lines=True)}
    if not path.is_file() or path.suffix not in readers:
        raise typer.BadParameter(f"{path} is not a .parquet, .csv or .jsonl file", param_hint="--base")
    return readers[path.suffix](path)


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


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
    base: Path | None = typer.Option(None, "--base", help="training file to extend with the feedback rows"),
    base_links: Path | None = typer.Option(None, "--base-links", help="merchant-risk: the base file's links"),
) -> None:
    """Join reviewer feedback with the logged inputs into a file ``shopguard train NAME`` accepts."""
    from rich.console import Console

    from model_registry.database import make_engine
    from serving.feedback import FeedbackError, export_feedback

    if out.suffix not in (".parquet", ".csv"):
        raise typer.BadParameter("--out must end in .parquet or .csv", param_hint="--out")
    try:
        exported = export_feedback(make_engine(load_settings().database_url), name)
    except FeedbackError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.field) from exc
    from model_registry.kinds import model_kind

    kind = model_kind(name)
    table = _with_base(exported.table, base, None if kind.multi_label else kind.id_field)
    _write_table(table, out)
    console = Console()
    console.print(f"wrote {len(table):,} rows ({len(exported.table):,} from feedback) to {out}")
    if exported.links is not None:
        links_out = out.with_name(f"{out.stem}.links{out.suffix}")
        links = exported.links if base_links is None else pd.concat([_read_base(base_links), exported.links])
        _write_table(links.drop_duplicates(), links_out)
        console.print(f"wrote {len(links):,} links to {links_out}; train with --links {links_out}")
