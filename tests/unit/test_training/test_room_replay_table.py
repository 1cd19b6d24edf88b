"""``shopguard enforcement rooms``: its table and its ``--out``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from shopguard.cli import app
from training.cli import rooms_table


def test_a_band_never_stopped_shows_a_dash_not_none() -> None:
    band = {"violations": "fewer than 10", "rooms": 6, "acted_on": 1 / 6, "restricted_or_stopped": 0.0, "stopped": 0.0,
            "median_sentence_first_action": 125.0, "median_sentence_stop": None}
    console = Console(record=True, width=200)
    console.print(rooms_table({"by_violations": [band]}, "rooms"))
    text = console.export_text()
    assert "None" not in text and "125" in text and "125.0" not in text and "–" in text


def test_out_must_be_json(isolated_home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["enforcement", "rooms", "--out", str(tmp_path / "rooms.txt")])
    assert result.exit_code == 2 and "--out must end in .json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "rooms.txt").exists()
