"""Every mistake a user can make on the command line is one ``error: ...`` line that names
what to fix: a missing file (each file-reading option of every command, found by walking the
command tree), a broken JSON line (with its number), a bad config key; never a traceback."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from common.errors import InvalidInputError
from common.settings import load_settings
from common.tables import read_table
from database.engine import make_engine
from shopguard.cli import app
from shopguard.help_text import commands_of

WRITES = {"out", "output", "save"}  # parameters naming what a command writes, not what it reads
READS_AS_TEXT = {("batch", "score"): {"input", "merchant_decisions"}}  # a glob, a file or a URL
VALUES = {"reference": "listing-quality:production", "first": "listing-quality:production",
          "second": "listing-quality:candidate", "name": "listing-quality", "reason": "test",
          "scopes": "read"}


def _is_path(param: Any) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:  # a Typer on the click package
        return getattr(getattr(param, "type", None), "name", "") == "path"
    annotation = descriptor.annotation
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return annotation is Path


def _reads_a_file(path: tuple[str, ...], param: Any) -> bool:
    return (_is_path(param) and param.name not in WRITES) or param.name in READS_AS_TEXT.get(path, set())


def _file_parameters() -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    for path, command in commands_of(typer.main.get_command(app)):
        for param in command.params:
            if _reads_a_file(path, param):
                yield path, command, param


CASES = list(_file_parameters())


def _invocation(path: tuple[str, ...], command: Any, target: Any, missing: Path, folder: Path) -> list[str]:
    """The words that run ``command`` with ``missing`` for ``target`` and every other required
    parameter given: an existing file for a file, an output under ``folder``, else ``VALUES``."""
    existing = folder / "existing.parquet"
    existing.write_bytes(b"")
    args = list(path)
    for param in command.params:
        if param is target:
            value = str(missing)
        elif not param.required:
            continue
        elif param.name in WRITES:
            value = str(folder / f"{param.name}.parquet")
        elif _reads_a_file(path, param):
            value = str(existing)
        else:
            value = VALUES[param.name]  # a new required parameter: give it a value here
        args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    return args


def _one_error_line(result: Any) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code not in (0, 1), result.output  # 2: the user's error, not a crash
    assert "Traceback" not in result.output and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_the_walk_finds_the_file_options_of_every_kind_of_command() -> None:
    found = {(" ".join(path), param.name) for path, _, param in CASES}
    assert {("models compare", "data"), ("models promote", "data"), ("evaluate", "data"),
            ("train listing-quality", "config"), ("train false-marketing", "real"), ("batch score", "input"),
            ("enforcement check", "path"), ("enforcement replay", "policy_file"),
            ("data export-feedback", "base")} <= found


@pytest.mark.parametrize(("path", "command", "param"), CASES,
                         ids=[f"{' '.join(p)} {param.name}" for p, _, param in CASES])
def test_a_missing_file_is_one_line_naming_it(path, command, param, isolated_home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no such folder" / "missing.parquet"
    result = CliRunner().invoke(app, _invocation(path, command, param, missing, tmp_path))
    assert str(missing) in _one_error_line(result)


def test_a_broken_jsonl_line_is_named_with_its_number(isolated_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "listings.jsonl"
    data.write_text('{"title": "a", "is_inferior": 1}\n\n{"title": "b", "is_inferior": 0}\n'
                    '{"title": "c", "is_inferior": oops}\n', encoding="utf-8")
    line = _one_error_line(CliRunner().invoke(app, ["train", "listing-quality", "--data", str(data)]))
    assert f"{data}:4: invalid JSON" in line
    data.write_text('{"title": "a", "is_inferior": 1}\n["b", 0]\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=f"{data}:2: a line must be a JSON object, not list"):
        read_table(data, "--input")  # batch score's and export-feedback's reader


def test_an_unreadable_table_is_one_line_naming_it(isolated_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "listings.parquet"
    data.write_bytes(b"not parquet at all")
    line = _one_error_line(CliRunner().invoke(app, ["train", "listing-quality", "--data", str(data)]))
    assert f"{data} cannot be read as parquet" in line


@pytest.mark.parametrize(("text", "expected"), [
    ('{"num_leavez": 4}', "num_leavez: unknown key"),
    ('{"seed": "seven", "bootstrap_samples": 30}', "seed: Input should be a valid integer"),
    ('{\n  "seed": 1,\n  "num_leaves": 4,,\n}', ":3: invalid JSON"),
    ('[1, 2]', "a config is a JSON object"),
    ('{"seed": -1}', "seed: Input should be greater than or equal to 0"),  # was scikit-learn's traceback
])
def test_a_bad_config_names_the_file_and_the_key(text: str, expected: str, isolated_home: Path,
                                                tmp_path: Path) -> None:
    config, data = tmp_path / "config.json", tmp_path / "listings.parquet"
    config.write_text(text, encoding="utf-8")
    pd.DataFrame({"title": ["a"], "is_inferior": [1]}).to_parquet(data)
    line = _one_error_line(CliRunner().invoke(app, ["train", "listing-quality", "--data", str(data),
                                                    "--config", str(config)]))
    assert str(config) in line and expected in line


def test_usage_mistakes_are_one_line_pointing_at_help(isolated_home: Path) -> None:
    line = _one_error_line(CliRunner().invoke(app, ["models", "compare", "a", "b", "--dta", "x"]))
    assert "--dta" in line and "shopguard models compare --help" in line.replace("root", "shopguard")
    line = _one_error_line(CliRunner().invoke(app, ["evaluate"]))
    assert "Missing argument 'REFERENCE'" in line
    line = _one_error_line(CliRunner().invoke(app, ["--bogus"]))
    assert "No such option: --bogus." in line


def test_a_user_error_from_deep_inside_is_one_line(isolated_home: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(json.dumps({"name": "x", "rooms": {"rungz": []}}), encoding="utf-8")
    line = _one_error_line(CliRunner().invoke(app, ["enforcement", "check", str(policy)]))
    assert "rooms.rungz: unknown key" in line


def test_a_policy_file_that_is_not_utf8_is_one_line(isolated_home: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(b"\xff\xfe name: x")
    for command in (["enforcement", "check", str(policy)], ["enforcement", "replay", "--policy", str(policy)]):
        line = _one_error_line(CliRunner().invoke(app, command))
        assert str(policy) in line and "not UTF-8" in line, command


def test_an_audit_time_past_the_range_of_dates_is_one_line(isolated_home: Path, tmp_path: Path) -> None:
    for command in ("decisions", "verdicts"):
        line = _one_error_line(CliRunner().invoke(app, ["audit", command, "--out", str(tmp_path / "x.csv"),
                                                        "--since", "9999-12-31T23:59:59-23:59"]))
        assert "--since" in line and "range of dates" in line, command
        line = _one_error_line(CliRunner().invoke(app, ["audit", command, "--out", str(tmp_path / "x.csv"),
                                                        "--until", "-1"]))
        assert "--until" in line and "'-1' is not an ISO time" in line, command
        assert "'9999-12-31T23:59:59-23:59'" in _one_error_line(CliRunner().invoke(app, [
            "audit", command, "--out", str(tmp_path / "x.csv"), "--since", "9999-12-31T23:59:59-23:59"]))
    # The policy replay reads its window the same way (it had its own parser, without the overflow).
    for value in ("-1", "9999-12-31T23:59:59-23:59"):
        line = _one_error_line(CliRunner().invoke(app, ["enforcement", "replay", "--since", value, "--policy",
                                                        str(Path(__file__).parents[3] / "policy/default_policy.yaml")]))
        assert "--since" in line and repr(value) in line, value


@pytest.mark.parametrize("args", [("models", "card", "bogus"), ("models", "show", "bogus:v1"),
                                  ("models", "promote", "bogus:candidate", "--reason", "x"),
                                  ("models", "rollback", "bogus", "--reason", "x"), ("models", "list", "bogus"),
                                  ("evaluate", "bogus")])
def test_an_unknown_model_name_is_named_as_such(args: tuple[str, ...], isolated_home: Path) -> None:
    line = _one_error_line(CliRunner().invoke(app, list(args)))
    assert "'bogus' is not a ShopGuard model" in line and "shopguard train bogus" not in line


def test_audit_decisions_needs_a_model_name_but_keeps_versions_the_store_no_longer_holds(isolated_home: Path) -> None:
    assert "not a ShopGuard model" in _one_error_line(CliRunner().invoke(app, ["audit", "decisions", "--model", "x"]))
    # The decision log keeps versions a replica's store may never have held: audited as given.
    make_engine(load_settings().database_url)  # a home with its database, and no decisions
    logged = CliRunner().invoke(app, ["audit", "decisions", "--model", "listing-quality:v20200101-000000-dead"])
    assert logged.exit_code == 0 and "0 decisions" in logged.stdout, logged.output


def test_a_seed_numpy_cannot_take_is_a_usage_error(isolated_home: Path, tmp_path: Path) -> None:
    pd.DataFrame({"title": ["a"], "is_inferior": [1]}).to_parquet(tmp_path / "l.parquet")
    for command in (["data", "generate", "listings", "--n", "100", "--out", str(tmp_path / "l.parquet")],
                    ["train", "listing-quality", "--data", str(tmp_path / "l.parquet")]):
        for seed in ("-5", "5000000000"):  # were ValueError / InvalidParameterError tracebacks
            result = CliRunner().invoke(app, [*command, "--seed", seed])
            assert result.exit_code == 2 and "'--seed'" in _one_error_line(result), result.output


def test_generated_data_is_written_only_as_parquet_or_csv(isolated_home: Path, tmp_path: Path) -> None:
    for name in ("listings.json", "listings"):  # Parquet bytes were written under any suffix
        result = CliRunner().invoke(app, ["data", "generate", "listings", "--n", "100", "--out", str(tmp_path / name)])
        assert "--out" in _one_error_line(result) and not (tmp_path / name).exists()
    result = CliRunner().invoke(app, ["data", "generate", "listings", "--n", "100", "--out", str(tmp_path / "l.CSV")])
    assert result.exit_code == 0 and (tmp_path / "l.CSV").read_text(encoding="utf-8").startswith("listing_id,")


def test_enforcement_rooms_names_a_segments_file_that_is_not_held_out_decisions(isolated_home: Path,
                                                                              tmp_path: Path) -> None:
    listings, empty = tmp_path / "listings.parquet", tmp_path / "empty.parquet"
    pd.DataFrame({"title": ["a"], "is_inferior": [1]}).to_parquet(listings)
    empty.write_bytes(b"")
    for path, said in ((listings, "no column sha256, room, labels, decision"), (empty, "not a Parquet file")):
        result = CliRunner().invoke(app, ["enforcement", "rooms", "--segments", str(path)])  # were tracebacks
        line = _one_error_line(result)
        assert str(path) in line and said in line


@pytest.mark.parametrize("command", [["audit", "decisions"], ["enforcement", "replay", "--policy", "policy/default_policy.yaml"]])
def test_a_window_ending_before_it_starts_is_a_usage_error(command: list[str], isolated_home: Path) -> None:
    result = CliRunner().invoke(app, [*command, "--since", "2026-12-08", "--until", "2026-12-01"])
    line = _one_error_line(result)  # was an empty answer, read as no activity
    assert "--until" in line and "not after --since 2026-12-08" in line


@pytest.mark.parametrize("command", [["models", "promote", "listing-quality:v1"], ["models", "rollback", "listing-quality"]])
def test_an_empty_reason_is_a_usage_error(command: list[str], isolated_home: Path) -> None:
    line = _one_error_line(CliRunner().invoke(app, [*command, "--reason", "  "]))
    assert "--reason" in line and "say why" in line


@pytest.mark.parametrize("command", [["models", "list"], ["models", "show", "listing-quality"],
                                     ["models", "card", "listing-quality"], ["models", "history", "listing-quality"],
                                     ["models", "promote", "listing-quality:candidate", "--reason", "x"],
                                     ["tokens", "list"], ["tokens", "revoke", "ci"], ["audit", "decisions"],
                                     ["evaluate", "false-marketing"], ["enforcement", "rooms"]])
def test_a_reading_command_where_no_home_is_says_so_and_creates_none(command: list[str], isolated_home: Path) -> None:
    # These once made an empty home in the current folder and answered "nothing registered".
    line = _one_error_line(CliRunner().invoke(app, command))
    assert f"No ShopGuard home at {isolated_home}" in line and "SHOPGUARD_HOME" in line, command
    assert not isolated_home.exists(), command


def test_a_config_that_is_not_utf8_is_one_line_and_one_with_a_bom_is_read(isolated_home: Path, tmp_path: Path) -> None:
    config, data = tmp_path / "config.json", tmp_path / "listings.parquet"
    pd.DataFrame({"title": ["a"], "is_inferior": [1]}).to_parquet(data)
    config.write_bytes('{"seed": 1, "note": "\u4e2d"}'.encode("gbk"))  # was a UnicodeDecodeError traceback
    line = _one_error_line(CliRunner().invoke(app, ["train", "listing-quality", "--data", str(data),
                                                    "--config", str(config)]))
    assert str(config) in line and "not UTF-8" in line
    config.write_bytes(b"\xef\xbb\xbf" + b'{"num_leavez": 4}')  # Notepad's UTF-8: read, then judged by its keys
    line = _one_error_line(CliRunner().invoke(app, ["train", "listing-quality", "--data", str(data),
                                                    "--config", str(config)]))
    assert "num_leavez: unknown key" in line


def test_a_group_column_named_but_absent_and_a_results_file_not_json_are_refused(isolated_home: Path,
                                                                                 tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text('{"text": "a", "labels": "", "room": "r1"}\n', encoding="utf-8")
    line = _one_error_line(CliRunner().invoke(app, ["train", "false-marketing", "--data", str(real), "--real",
                                                    str(real), "--group-column", "rooms"]))
    assert "no column 'rooms'" in line and "--group-column" in line
    line = _one_error_line(CliRunner().invoke(app, ["evaluate", "false-marketing", "--data", str(real),
                                                    "--out", str(tmp_path / "results.md")]))
    assert "results.md" in line and ".json" in line


def test_training_on_rows_that_repeat_exactly_says_the_test_figures_are_optimistic(isolated_home: Path,
                                                                                   tmp_path: Path) -> None:
    # A file given twice over trained with test PR-AUC 0.94 against 0.78, and no word of it.
    single, doubled = tmp_path / "listings.parquet", tmp_path / "doubled.parquet"
    assert CliRunner().invoke(app, ["data", "generate", "listings", "--n", "400", "--seed", "1", "--out",
                                    str(single)]).exit_code == 0
    frame = pd.read_parquet(single)
    pd.concat([frame, frame.iloc[:150]]).to_parquet(doubled)
    result = CliRunner().invoke(app, ["train", "listing-quality", "--data", str(doubled), "--no-register"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "150 rows repeat another row exactly" in " ".join(result.output.split())


def test_reading_the_registry_database_makes_no_model_store(isolated_home: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENTOML_HOME", raising=False)  # the store in the home, as for a user (the session sets one)
    make_engine(load_settings().database_url)  # a home holding only its database (e.g. a PostgreSQL reader)
    listed = CliRunner().invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "registered models" in listed.output, listed.output
    history = CliRunner().invoke(app, ["models", "history", "listing-quality"])
    assert "no alias changes yet" in history.output
    assert not (isolated_home / "bentoml").exists()


@pytest.mark.parametrize(("args", "says"), [
    (("audit", "decisions", "--limit", "99999999999999999999"), "--limit"),
    (("audit", "decisions", "--entity", " "), "--entity"),
    (("audit", "verdicts", "--out", "v.csv", "--reviewer", ""), "--reviewer"),
    (("tokens", "create", "--name", "x", "--scopes", "read,,admin"), "empty item"),
    (("models", "promote", "listing-quality:candidate", "--reason", "ok\x1b[1A\x1b[2Khidden"), "U+001B"),
    (("models", "rollback", "listing-quality", "--reason", "two\nlines"), "U+000A")])
def test_an_operators_bad_value_is_one_line_naming_it(args: tuple[str, ...], says: str, isolated_home: Path) -> None:
    # Each of these once printed a traceback, matched every row, or was stored as given.
    assert says in _one_error_line(CliRunner().invoke(app, list(args)))


def test_a_token_name_differing_only_by_case_or_width_is_one_name(isolated_home: Path) -> None:
    assert CliRunner().invoke(app, ["tokens", "create", "--name", "filer", "--scopes", "feedback"]).exit_code == 0
    for variant in ("Filer", "ｆｉｌｅｒ"):
        assert "'filer' exists" in _one_error_line(CliRunner().invoke(
            app, ["tokens", "create", "--name", variant, "--scopes", "feedback"]))
    revoked = CliRunner().invoke(app, ["tokens", "revoke", "FILER"])  # the same name: revoked, as stored
    assert revoked.exit_code == 0 and revoked.output.strip() == "revoked filer"
    assert "revoked on" in _one_error_line(CliRunner().invoke(
        app, ["tokens", "create", "--name", "filer", "--scopes", "feedback"]))


def test_a_locked_database_is_one_line_and_nothing_changes(isolated_home: Path) -> None:
    import sqlite3

    assert CliRunner().invoke(app, ["tokens", "create", "--name", "leaked", "--scopes", "read"]).exit_code == 0
    database = load_settings().database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(database, isolation_level=None, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        line = _one_error_line(CliRunner().invoke(app, ["tokens", "revoke", "leaked"]))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "database is locked" in line and "retry" in line
    listed = CliRunner().invoke(app, ["tokens", "list"]).output
    assert "leaked" in listed and CliRunner().invoke(app, ["tokens", "revoke", "leaked"]).exit_code == 0
