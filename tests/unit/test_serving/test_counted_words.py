"""Counts read in the number they take: ``1 row``, ``2 rows``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from common.settings import load_settings
from common.words import counted
from database.engine import make_engine
from serving.error_answers import cap_errors
from shopguard.cli import app


def test_counted_takes_the_number_of_its_count() -> None:
    assert [counted(n, "row") for n in (0, 1, 2, 1500)] == ["0 rows", "1 row", "2 rows", "1,500 rows"]
    assert counted(1, "verdict") == "1 verdict"
    assert counted(3, "match", "matches") == "3 matches"


def test_a_validation_error_count_is_plural_when_it_is_more_than_one() -> None:
    two = {"error": "2 validation error for Input", "detail": [{"loc": ["a"]}, {"loc": ["b"]}]}
    assert cap_errors(two)["message"] == "2 validation errors for Input" and cap_errors(two)["error"] == "invalid_input"
    one = {"error": "1 validation error for Input", "detail": [{"loc": ["a"]}]}
    assert cap_errors(one)["message"] == "1 validation error for Input"


def test_an_empty_decision_log_says_0_decisions(isolated_home: Path) -> None:
    make_engine(load_settings().database_url)  # a home whose database holds no decision yet
    result = CliRunner().invoke(app, ["audit", "decisions"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "0 decisions" in result.stdout and "decision(s)" not in result.stdout
