"""``--help`` of every command reads as plain text: no reST markup from the docstrings, no
``{placeholder}`` in usage lines, no line broken where the source broke it."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from shopguard.cli import app
from shopguard.help_text import commands_of, plain_help

COMMANDS = [path for path, _ in commands_of(typer.main.get_command(app))]


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "shopguard" for p in COMMANDS])
def test_every_help_is_plain_text(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    for mark in ("``", "{", "}", ":func:", ":class:"):
        assert mark not in result.output, f"{' '.join(path)} --help shows {mark!r}:\n{result.output}"


def test_usage_lines_name_arguments_in_capitals() -> None:
    shown = CliRunner().invoke(app, ["models", "compare", "--help"], env={"COLUMNS": "100"}).output
    assert "[OPTIONS] FIRST SECOND" in shown
    shown = CliRunner().invoke(app, ["models", "list", "--help"], env={"COLUMNS": "100"}).output
    assert "[OPTIONS] [NAME]" in shown


def test_rest_markup_becomes_plain_code_and_paragraphs_one_line() -> None:
    text = "Serve ``bentoml serve``\n    with :func:`serving.run` and paired-\nbootstrap CIs.\n\nSecond."
    assert plain_help(text) == "Serve `bentoml serve` with `serving.run` and paired-bootstrap CIs.\n\nSecond."


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "shopguard" for p in COMMANDS])
def test_flags_show_no_type_and_every_option_says_what_it_does(path: tuple[str, ...]) -> None:
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"}).output
    assert "<bool>" not in shown, shown
    command = dict(commands_of(typer.main.get_command(app)))[path]
    silent = [p.name for p in command.params if isinstance(p, typer.core.TyperOption) and not p.help]
    assert silent == [], f"{' '.join(path)}: options without help: {silent}"
