"""Output that composes: results on stdout, logs and progress on stderr, lines never padded
outside a terminal, library warnings once and without ANSI codes."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.table import Table
from typer.testing import CliRunner

from common.terminal import configure_logging, terminal_console
from shopguard.cli import app


def _unpadded(text: str) -> bool:
    return all(line == line.rstrip() for line in text.splitlines())


def test_base_encoder_prints_only_its_folder_on_stdout(isolated_home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import training.data.real_text
    import training.pretrain

    seen = {}

    def pretrain(config, root, folder, progress, force):
        seen["threads"] = config.num_threads
        progress("pretraining the base encoder on 3 real texts")
        return folder, {"corpus": {"texts": 3}, "training": {
            "history": [{"masked_accuracy": 0.5, "evaluation_loss": 1.0}], "train_seconds": 7.0}}

    monkeypatch.setattr(training.data.real_text, "require_shared_data", lambda: tmp_path)
    monkeypatch.setattr(training.pretrain, "pretrain_base_model", pretrain)
    folder = tmp_path / "base"
    result = CliRunner().invoke(app, ["train", "base-encoder", "--out", str(folder), "--threads", "0"])
    assert result.exit_code == 0, result.output
    assert seen == {"threads": 0}  # 0: one per core (make demo-base); the config's default is 1
    assert result.stdout == f"{folder}\n"  # BASE=$(shopguard train base-encoder)
    assert "pretraining the base encoder on 3 real texts" in result.stderr and "base encoder:" in result.stderr
    assert _unpadded(result.stderr) and len(result.stderr) < 1000


def test_a_long_token_name_is_listed_whole_and_unpadded_when_piped(isolated_home: Path) -> None:
    name = "reviewer-" + "x" * 110
    created = CliRunner().invoke(app, ["tokens", "create", "--name", name, "--scopes", "read"])
    assert created.exit_code == 0, created.output
    listed = CliRunner().invoke(app, ["tokens", "list"], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert name in listed.stdout and _unpadded(listed.stdout)


def test_a_console_outside_a_terminal_cuts_nothing_and_pads_nothing(capsys: pytest.CaptureFixture) -> None:
    table = Table(title="a centred title over a wide table")
    table.add_column("reason")
    table.add_row("r" * 300)
    terminal_console().print(table)
    terminal_console(stderr=True).log("a log line")
    out, err = capsys.readouterr()
    assert "r" * 300 in out and _unpadded(out)
    assert err.rstrip().endswith("a log line") and _unpadded(err) and len(err) < 100


@pytest.fixture()
def cli_logging() -> Iterator[None]:
    """The CLI's logging set up for the test, taken down after it."""
    root, handlers = logging.getLogger(), list(logging.getLogger().handlers)
    configure_logging()
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    logging.captureWarnings(False)


def test_library_warnings_are_logged_once_without_ansi_codes(cli_logging: None,
                                                             capsys: pytest.CaptureFixture) -> None:
    for _ in range(3):
        logging.getLogger("onnxruntime").warning("\x1b[1mPlease\x1b[0m consider pre-processing")
    # what logging.captureWarnings hands on for warnings.warn (pytest keeps the real one for itself)
    formatted = warnings.formatwarning("SHOPGUARD_DEVICE=cuda but torch sees no CUDA device", RuntimeWarning,
                                       "/x/text_encoder.py", 34, "    warnings.warn(...)")
    logging.getLogger("py.warnings").warning("%s", formatted)
    err = capsys.readouterr().err
    assert err.splitlines() == ["warning: Please consider pre-processing",
                                "warning: SHOPGUARD_DEVICE=cuda but torch sees no CUDA device"]


def test_a_piped_table_title_starts_at_the_left_edge(capsys: pytest.CaptureFixture) -> None:
    table = Table(title="listing-quality:v1", caption="a caption")
    table.add_column("value")
    table.add_row("v" * 300)
    terminal_console().print(table)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "listing-quality:v1" and lines[-1] == "a caption"


def test_printing_a_table_outside_a_terminal_leaves_the_table_as_it_was(capsys: pytest.CaptureFixture) -> None:
    table = Table(title="listing-quality:v1", caption="a caption", title_justify="center", caption_justify="right")
    table.add_column("value")
    table.add_row("v" * 300)
    terminal_console().print(table)
    assert capsys.readouterr().out.splitlines()[0] == "listing-quality:v1"
    assert (table.title_justify, table.caption_justify) == ("center", "right")
