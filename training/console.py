"""What the training commands print: progress, typed configs from JSON, metric tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.table import Table

from features.errors import ShopGuardError
from model_registry.terminal import terminal_console

console = terminal_console()  # full width when output is not a terminal


@contextmanager
def progress_status(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner whose text follows the pipeline's steps, each step also logged."""
    with console.status(title) as status:
        def progress(message: str) -> None:
            console.log(message)
            status.update(message)

        yield progress


def announce_candidate(tag: str) -> None:
    """Tell the analyst what was registered and how to promote it."""
    console.print(f"registered [bold]{tag}[/] as candidate. Promote it with:\n"
                  f"  shopguard models promote {tag} --reason '...'")


def load_config(config_path: Path | None, config_cls: type, overrides: dict) -> object:
    """The config class validated from the JSON file, with the command line's overrides."""
    raw = json.loads(config_path.read_text(encoding="utf-8")) if config_path else {}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_cls.model_validate(raw)
    except Exception as exc:  # pydantic ValidationError: unknown or mistyped keys
        raise ShopGuardError(f"invalid training config: {exc}") from exc


def metrics_table(title: str, rows: dict) -> Table:
    """A rich table of BinaryMetrics rows."""
    table = Table(title=title)
    for column in ("slice", "rows", "pos", "ROC-AUC", "PR-AUC", "block P", "block R", "review P",
                   "review R"):
        table.add_column(column, justify="right" if column != "slice" else "left")

    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    for name, m in rows.items():
        table.add_row(name, f"{m.rows:,}", f"{m.positives:,}", fmt(m.roc_auc), fmt(m.pr_auc),
                      fmt(m.block.precision), fmt(m.block.recall), fmt(m.review.precision),
                      fmt(m.review.recall))
    return table


def real_checks_table(title: str, checks: dict) -> Table:
    """Real-world (and synthetic) decision checks as one rich table: data -> RealWorldChecks."""
    table = Table(title=title)
    for column in ("data", "check", "rows", "value", "95% interval", "target", "met"):
        table.add_column(column, justify="right" if column in ("rows", "value") else "left")
    for data, result in checks.items():
        if not result.available:
            table.add_row(data, f"[bold red]{result.note}[/]", "", "", "", "", "")
        for c in result.checks:
            interval = "–" if c.low is None else f"[{c.low:.3f}, {c.high:.3f}]"
            target = "–" if c.target is None else f"{'<=' if c.direction == 'at_most' else '>='} {c.target:g}"
            met = {True: "[green]yes[/]", False: "[bold red]NO[/]", None: "–"}[c.met]
            table.add_row(data, c.description, f"{c.rows:,}", "–" if c.value is None else f"{c.value:.3f}",
                          interval, target, met)
    return table


def marketing_table(title: str, systems: dict) -> Table:
    """Per-category metrics of several systems as one rich table."""
    table = Table(title=title)
    for column in ("category", "system", "pos", "PR-AUC", "ROC-AUC", "review P", "review R", "review F1"):
        table.add_column(column, justify="left" if column in ("category", "system") else "right")

    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    categories = list(dict.fromkeys(c for per in systems.values() for c in per))
    for category in categories:
        for name, per in systems.items():
            if category in per:
                m = per[category]
                table.add_row(category, name, f"{m.positives:,}", fmt(m.pr_auc), fmt(m.roc_auc),
                              fmt(m.review.precision), fmt(m.review.recall), fmt(m.review.f1))
    return table
