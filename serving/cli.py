"""``shopguard serve``: start the BentoML service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from model_registry.settings import load_settings


def serve(
    port: int = typer.Option(3000, help="HTTP port"),
    host: str = typer.Option("127.0.0.1", help="interface to bind; 0.0.0.0 for all"),
) -> None:
    """Serve the scoring API (``bentoml serve serving.service:ShopGuard``)."""
    settings = load_settings()
    env = {**os.environ, "SHOPGUARD_HOME": str(settings.home)}
    env.setdefault("BENTOML_HOME", str(settings.bentoml_home))
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
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from model_registry.aliases import make_engine
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
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".csv":
            frame.to_csv(out, index=False)
        else:
            frame.to_parquet(out, index=False)
        console.print(f"wrote {len(frame):,} rows to {out}")
