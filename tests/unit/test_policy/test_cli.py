"""``shopguard enforcement check|replay`` in process, on a real SQLite home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopguard.cli import app

T0 = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)


@pytest.fixture()
def home(isolated_home: Path) -> Path:
    """A home whose database holds three broadcasts of one host (the live policy's ledger)."""
    from common.settings import load_settings
    from database.engine import make_engine
    from policy.document import load_policy
    from policy.state import ChunkScored, FlaggedInput
    from policy.store import EnforcementStore

    class Clock:
        now = T0

        def __call__(self) -> datetime:
            return self.now

    clock = Clock()
    store = EnforcementStore(make_engine(load_settings().database_url, immediate=True), load_policy(), clock)
    for day, stream in enumerate(("a", "b", "c")):
        for n in range(4):
            clock.now = T0 + timedelta(days=day, seconds=n)
            event = ChunkScored(clock.now, stream, f"{stream}-{n}", 2, (FlaggedInput(0, "block", ("off_platform",)),),
                                "host", "m1", n)
            store.record_chunk(event, f"{stream}{n}")
    return isolated_home


def test_check_names_the_version_and_the_differences(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: team-b\nappeals: {deadline_days: 14}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["enforcement", "check", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "team-b@" in result.output and "appeals.deadline_days" in result.output and "14" in result.output
    assert "keeps the shipped name" not in result.output
    # A copy of the shipped file, edited and not renamed, once read as the shipped policy in every ledger entry.
    path.write_text("name: shopguard-default\nappeals: {deadline_days: 14}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["enforcement", "check", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "keeps the shipped name 'shopguard-default'" in " ".join(result.output.split())


def test_check_refuses_a_bad_file_in_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nrooms: {rungz: []}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["enforcement", "check", str(path)])
    assert result.exit_code == 2 and "rooms.rungz: unknown key" in result.output
    assert "Traceback" not in result.output


def test_replay_compares_a_candidate_and_reproduces_the_live_ledger(home: Path, tmp_path: Path) -> None:
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("name: lenient\nrooms:\n  rungs: [{action: warn, weight: 4, blocks: 4}]\n", encoding="utf-8")
    out = tmp_path / "replay.parquet"
    result = CliRunner().invoke(app, ["enforcement", "replay", "--policy", str(lenient), "--out", str(out)],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "reproduces the live ledger" in result.output and ": yes" in result.output
    frame = pd.read_parquet(out).set_index(["day", "policy"])
    # a and b climb the ladder; the host's credit (2 a broadcast) falls to 6 with b, so c, opened
    # under the limit on live selling, is stopped from its first chunk under either policy
    assert frame.loc[("2026-11-02", "current"), ["rooms_warn", "rooms_restrict"]].tolist() == [1, 1]
    assert frame.loc[("2026-11-03", "current"), "creators_limit_live_selling"] == 1
    assert frame.loc[("2026-11-04", "current"), ["rooms_warn", "rooms_stop"]].tolist() == [0, 1]
    assert frame.loc[("2026-11-02", "candidate"), ["rooms_warn", "rooms_restrict"]].tolist() == [1, 0]
    assert frame.loc[("2026-11-04", "candidate"), "rooms_stop"] == 1
    since = CliRunner().invoke(app, ["enforcement", "replay", "--policy", str(lenient), "--since", "2026-11-04"],
                               env={"COLUMNS": "250"})
    assert since.exit_code == 0 and "2026-11-02" not in since.output and "2026-11-04" in since.output
    bad = CliRunner().invoke(app, ["enforcement", "replay", "--policy", str(lenient), "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_replay_says_a_candidates_per_call_rules_are_not_replayed(home: Path, tmp_path: Path) -> None:
    raising = tmp_path / "raising.yaml"
    raising.write_text("name: raising\ncalls: {merchant_penalty_raises_to: block}\n", encoding="utf-8")
    same_calls = tmp_path / "same.yaml"
    same_calls.write_text("name: same\nappeals: {deadline_days: 14}\n", encoding="utf-8")
    note = "per-call rules (calls: the review burst, what a merchant hold raises to) differ"
    raised = CliRunner().invoke(app, ["enforcement", "replay", "--policy", str(raising)])
    kept = CliRunner().invoke(app, ["enforcement", "replay", "--policy", str(same_calls)])
    assert raised.exit_code == kept.exit_code == 0
    assert note in " ".join(raised.stderr.split()) and note not in " ".join(kept.stderr.split())
