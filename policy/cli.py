"""``shopguard enforcement ...``: check a policy file, replay the logged past under it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from common.times import time_window
from common.words import counted

enforcement_app = typer.Typer(help="Policy files and enforcement over time (rooms, credit, points).",
                              no_args_is_help=True)


@enforcement_app.command("check")
def check_command(path: Path = typer.Argument(..., exists=True, dir_okay=False,
                                              help="a policy file (YAML or JSON)")) -> None:
    """Validate a policy file: print its version and what differs from the shipped defaults;
    a file that does not validate is refused naming the key."""
    from rich.table import Table

    from common.terminal import terminal_console
    from policy.document import load_policy

    policy = load_policy(path)
    default = load_policy()
    changed = _differences(default.model_dump(mode="json"), policy.model_dump(mode="json"))
    console = terminal_console()
    console.print(f"{path}: valid, version [bold]{policy.version}[/bold] (shipped: {default.version})")
    if changed:
        table = Table("key", "shipped", "this file", title="differences from the shipped policy")
        for key, (before, after) in changed.items():
            table.add_row(key, json.dumps(before, ensure_ascii=False), json.dumps(after, ensure_ascii=False))
        console.print(table)
        if policy.name == default.name:
            terminal_console(stderr=True).print(
                f"[yellow]note:[/yellow] its rules differ and it keeps the shipped name {default.name!r}: "
                "give it a name of its own (`name:`), so that its version, on every ledger entry and "
                "action, does not read as the shipped policy's")
    else:
        console.print("same rules as the shipped policy")


def _differences(a: object, b: object, prefix: str = "") -> dict[str, tuple[object, object]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[str, tuple[object, object]] = {}
        for key in sorted(set(a) | set(b)):
            out.update(_differences(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {} if a == b else {prefix: (a, b)}


@enforcement_app.command("replay")
def replay_command(
    policy_file: Path = typer.Option(..., "--policy", exists=True, dir_okay=False, help="the candidate policy file"),
    since: str | None = typer.Option(None, "--since", help="first day reported (ISO, UTC unless zoned)"),
    until: str | None = typer.Option(None, "--until", help="replay and report up to this time (exclusive)"),
    out: Path | None = typer.Option(None, "--out", help="write the per-day table as .parquet (or .csv)"),
) -> None:
    """Re-derive every action from the logged decisions, verdicts, appeals and clock ticks under
    a candidate policy, in shadow (nothing live is written), beside the current policy
    (SHOPGUARD_POLICY): per day, rooms warned / restricted / stopped, creators and merchants
    crossing into each penalty, and the share of actions resting on a decision reviewers
    overturned. Says whether the current policy reproduces the live ledger."""
    import pandas as pd
    from rich.progress import Progress
    from rich.table import Table

    from common.settings import existing_home, load_settings
    from common.terminal import plain, terminal_console
    from database.engine import make_engine
    from policy.document import load_policy
    from policy.replay import compare_with_live, day_table, replay
    from policy.store import EnforcementStore

    if out is not None and out.suffix not in (".parquet", ".csv"):
        raise typer.BadParameter("--out must end in .parquet or .csv", param_hint="--out")
    start, end = time_window(since, until)
    settings = load_settings()
    candidate, current = load_policy(policy_file), load_policy(settings.policy)
    existing_home(settings, model_store=False)
    store = EnforcementStore(make_engine(settings.database_url), current)
    console = terminal_console()
    with Progress(console=terminal_console(stderr=True), transient=True) as progress:
        task = progress.add_task("reading the event log", total=None)
        events = list(store.events(until=end))
        progress.update(task, description=f"replaying {len(events):,} events under two policies")
        now_result, candidate_result = replay(events, current), replay(events, candidate)
    if candidate.calls != current.calls:
        terminal_console(stderr=True).print(plain(
            "note: the candidate's per-call rules (calls: the review burst, what a merchant hold raises to) differ "
            "from the current policy's and are not replayed: the log holds each call's decisions as answered, "
            "after the live rules, and not the calls those rules left at allow. Judge a change to calls live, "
            "or with `shopguard enforcement rooms` on held-out broadcasts."))
    rows = day_table(now_result, candidate_result, start, end)
    columns = [c for c in (rows[0] if rows else {}) if c not in ("day", "policy", "policy_version")]
    table = Table("day", "policy", *columns, title=f"current {current.version} vs candidate {candidate.version}")
    for row in rows:
        table.add_row(row["day"], row["policy"], *(str(row[c]) for c in columns))
    console.print(table if rows else "no actions in the period under either policy")
    if end is None:
        live = compare_with_live(now_result, store.ledger_entries(), store.all_actions())
        verdict = "yes" if live.identical else (f"no: {len(live.missing_entries)} entries missing, "
                                                f"{len(live.extra_entries)} extra, {len(live.missing_actions)} "
                                                f"actions missing, {len(live.extra_actions)} extra (was another "
                                                "policy live for part of the log?)")
        console.print(f"the current policy reproduces the live ledger ({live.entries:,} entries, "
                      f"{live.actions:,} actions): {verdict}")
    if out is not None:
        frame = pd.DataFrame(rows)
        if out.suffix == ".parquet":
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False)
        terminal_console(stderr=True).print(plain(f"wrote {counted(len(frame), 'row')} to {out}"))
