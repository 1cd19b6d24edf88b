"""What the training commands print: results (tables, what was registered) on stdout through
``console``; progress and notes on stderr through ``log``; typed configs from JSON files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ValidationError
from rich.table import Table

from common.errors import ShopGuardError
from common.terminal import plain, terminal_console

console = terminal_console()
log = terminal_console(stderr=True)


@contextmanager
def progress_status(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr whose text follows the pipeline's steps, each step also logged."""
    with log.status(title) as status:
        def progress(message: str) -> None:
            log.log(plain(message))
            status.update(plain(message))

        yield progress


def note(message: str) -> None:
    """A line for the person at the terminal (what was written, a warning) on stderr."""
    log.print(message)


def announce_candidate(tag: str) -> None:
    """Tell the analyst what was registered and how to promote it."""
    console.print(f"registered [bold]{tag}[/] as candidate. Promote it with:\n"
                  f"  shopguard models promote {tag} --reason '...'")


def load_config(config_path: Path | None, config_cls: type[BaseModel], overrides: dict) -> BaseModel:
    """The config class validated from the JSON file, with the command line's overrides; a
    file that is not a JSON object, or a key that is unknown or of the wrong type, is one
    ``ShopGuardError`` naming the file (and the line or the key)."""
    raw = _read_json_object(config_path) if config_path else {}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_cls.model_validate(raw)
    except ValidationError as exc:
        source = str(config_path) if config_path else "the command line"
        raise ShopGuardError(f"{source}: invalid {config_cls.__name__}: {config_problems(exc)}") from None


def _read_json_object(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM (Notepad's UTF-8) is read as data files are
    except OSError as exc:
        raise ShopGuardError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ShopGuardError(f"{path}: the config is not UTF-8 (byte {exc.start}): save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ShopGuardError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ShopGuardError(f"{path}: a config is a JSON object of settings, not a {type(raw).__name__}")
    return raw


def config_problems(exc: ValidationError, most: int = 5) -> str:
    """Every bad key of a validation error in one line: ``key: unknown key; other: message``."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{key}: {'unknown key' if error['type'] == 'extra_forbidden' else error['msg']}")
    more = f" (and {len(problems) - most} more)" if len(problems) > most else ""
    return "; ".join(problems[:most]) + more


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
            met = {"yes": "[green]yes[/]", "not shown": "[yellow]not shown[/]", "no": "[bold red]NO[/]",
                   None: "–"}[c.verdict]
            table.add_row(data, c.description, f"{c.rows:,}", "–" if c.value is None else f"{c.value:.3f}",
                          interval, target, met)
    return table


def marketing_table(title: str, systems: dict, review: bool = True) -> Table:
    """Per-category metrics of several systems as one rich table; ``review``: with the review
    threshold's precision, recall and F1 (not for rankings scored without thresholds)."""
    table = Table(title=title)
    columns = ("category", "system", "pos", "PR-AUC", "ROC-AUC") + (("review P", "review R", "review F1") if review else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("category", "system") else "right")

    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    categories = list(dict.fromkeys(c for per in systems.values() for c in per))
    for category in categories:
        for name, per in systems.items():
            if category in per:
                m = per[category]
                cells = [category, name, f"{m.positives:,}", fmt(m.pr_auc), fmt(m.roc_auc)]
                if review:
                    cells += [fmt(m.review.precision), fmt(m.review.recall), fmt(m.review.f1)]
                table.add_row(*cells)
    return table
