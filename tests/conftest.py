"""Shared fixtures: small generated files, the slow trainings done once per session, and a
trained, promoted registry home."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
# BentoML fixes its model store at first use in a process, so the whole test session (and
# every CLI and server it starts) shares one store; each test's registry database says which
# versions are its own.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="shopguard-test-bentoml-")

FAST_LISTING_CONFIG = {"bootstrap_samples": 30, "text_oof_folds": 3, "text_hash_features": 2**16}


def run_cli(*args: str, home: Path, check: bool = True, process: bool = False
            ) -> subprocess.CompletedProcess[str]:
    """Run the real ``shopguard`` CLI with ``SHOPGUARD_HOME`` = ``home``: in this process
    (Click's runner: the same command objects, arguments, environment and exit codes, without
    the 2-3 s of a fresh interpreter), or as its own process with ``process=True`` (what a
    user's shell runs: the entry point, the exit status and the streams as the OS sees them).
    With plug-in kinds in the environment it runs in a process started with them (the kinds
    table is read when the CLI is imported, as in every process a user starts), one kept for
    the session's calls with the same plug-ins (``tests/cli_worker.py``)."""
    env = {"SHOPGUARD_HOME": str(home), "COLUMNS": "200"}
    if process:
        result = subprocess.run([str(BIN / "shopguard"), *args], env={**os.environ, **env}, capture_output=True,
                                text=True, cwd=REPO, timeout=900)
    elif os.environ.get("SHOPGUARD_KINDS"):
        result = _in_plugin_process(list(args), {**os.environ, **env})
    else:
        result = _in_process(list(args), env)
    if check and result.returncode != 0:
        raise AssertionError(f"shopguard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _in_process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import traceback

    from typer.testing import CliRunner

    from shopguard.cli import app

    outcome = CliRunner().invoke(app, args, env=env, catch_exceptions=True)
    stderr = outcome.stderr
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        stderr += "".join(traceback.format_exception(outcome.exception))
    return subprocess.CompletedProcess(["shopguard", *args], outcome.exit_code, outcome.stdout, stderr)


_PLUGIN_PROCESSES: dict[tuple[str, str], tuple[subprocess.Popen[str], Path]] = {}


def _in_plugin_process(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``args`` run by the session's CLI process for these plug-in kinds (started on first use)."""
    key = (environ.get("SHOPGUARD_KINDS", ""), environ.get("PYTHONPATH", ""))
    worker, log = _PLUGIN_PROCESSES.get(key, (None, Path()))
    if worker is None or worker.poll() is not None:
        log = Path(tempfile.mkstemp(prefix="shopguard-cli-worker-", suffix=".log")[1])
        with log.open("w") as stderr:
            worker = subprocess.Popen([sys.executable, "-m", "tests.cli_worker"], cwd=REPO, env=environ, text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        _PLUGIN_PROCESSES[key] = worker, log
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(json.dumps({"args": args, "environ": environ}) + "\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        raise RuntimeError(f"the CLI process for {key[0]} exited; its log:\n{log.read_text()[-5000:]}")
    answer = json.loads(line)
    return subprocess.CompletedProcess(["shopguard", *args], answer["returncode"], answer["stdout"], answer["stderr"])


@atexit.register
def _stop_plugin_processes() -> None:
    for worker, log in _PLUGIN_PROCESSES.values():
        if worker.stdin is not None:
            worker.stdin.close()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def listing_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6,000-row synthetic catalogue written by the real generator command."""
    folder = tmp_path_factory.mktemp("data")
    out = folder / "listings.parquet"
    run_cli("data", "generate", "listings", "--n", "6000", "--seed", "7", "--out", str(out),
            home=folder / "home")
    return out


@pytest.fixture(scope="session")
def listing_training(tmp_path_factory: pytest.TempPathFactory, listing_file: Path) -> tuple[Any, Any]:
    """listing-quality trained once per session in this process, in its own home: (registry,
    the trainer's result). Its unit tests read the result; ``trained_home`` serves its bundle."""
    from kinds.listing_quality.pipeline import (
        ListingQualityConfig,
        ListingQualityTrainer,
        load_listing_file,
    )
    from registry.store import ModelRegistry

    with pytest.MonkeyPatch.context() as mp:
        point_at_home(mp, tmp_path_factory.mktemp("listing-home"))
        registry = ModelRegistry()
        trainer = ListingQualityTrainer(ListingQualityConfig(**FAST_LISTING_CONFIG), registry)
        return registry, trainer.fit(load_listing_file(listing_file), listing_file)


@pytest.fixture(scope="session")
def marketing_training(tmp_path_factory: pytest.TempPathFactory, transcript_file: Path) -> tuple[Any, ...]:
    """false-marketing trained once per session in this process, in its own home: (registry,
    the data, the result, the home). Its unit tests read them; ``trained_home`` serves its bundle."""
    from kinds.false_marketing.pipeline import (
        FalseMarketingConfig,
        load_marketing_file,
        train_and_register,
    )
    from registry.store import ModelRegistry

    home = tmp_path_factory.mktemp("marketing-home")
    with pytest.MonkeyPatch.context() as mp:
        point_at_home(mp, home)
        mp.setenv("SHOPGUARD_DEVICE", "cpu")
        registry = ModelRegistry()
        data = load_marketing_file(transcript_file)
        result = train_and_register(data, FalseMarketingConfig(**TINY_MARKETING_CONFIG), registry)
        return registry, data, result, home


def register_in(home: Path, tag: str) -> None:
    """Record a bundle of the session's model store in another home as its candidate, as
    ``ModelRegistry.register`` records it (the store is shared; each home's database says
    which versions are its own)."""
    from registry.bundle import MANIFEST_FILE, sha256_file
    from registry.store import ModelRegistry, split_reference

    with pytest.MonkeyPatch.context() as mp:
        point_at_home(mp, home)
        registry = ModelRegistry()
        name, version = split_reference(tag)
        assert version is not None
        manifest_hash = sha256_file(registry._bundle_path(tag) / MANIFEST_FILE)
        registry.version_records.add(name, version, manifest_hash, registry.actor)
        registry.aliases.set(name, "candidate", version, action="register", actor=registry.actor,
                             reason="newly trained version")


@pytest.fixture(scope="session")
def merchant_training(tmp_path_factory: pytest.TempPathFactory, merchant_files: tuple[Path, Path]
                      ) -> tuple[Any, Any, Any]:
    """merchant-risk trained once per session in this process, in its own home, as ``shopguard
    train merchant-risk --data --links --config`` trains it: (registry, the table, the
    trainer's result). Its unit tests read them; ``trained_home`` serves its bundle."""
    from kinds.merchant_risk.pipeline import (
        MerchantRiskConfig,
        MerchantRiskTrainer,
        load_merchant_table,
    )
    from registry.store import ModelRegistry

    with pytest.MonkeyPatch.context() as mp:
        point_at_home(mp, tmp_path_factory.mktemp("merchant-home"))
        registry = ModelRegistry()
        table = load_merchant_table(*merchant_files)
        return registry, table, MerchantRiskTrainer(MerchantRiskConfig(**FAST_MERCHANT_CONFIG), registry).fit(table)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory, listing_training: tuple[Any, Any],
                 marketing_training: tuple[Any, ...], merchant_training: tuple[Any, Any, Any]) -> Path:
    """A ShopGuard home with all three models promoted to production: the session's trainings
    (each kind's ``train`` command is run by its own tests: the kinds' contract suite, the
    false-marketing ``--real`` test), registered here as the registry does, each promoted by
    the CLI."""
    home = tmp_path_factory.mktemp("home")
    register_in(home, merchant_training[2].manifest.tag)
    register_in(home, listing_training[1].manifest.tag)
    register_in(home, marketing_training[2].manifest.tag)
    for name in ("listing-quality", "merchant-risk", "false-marketing"):
        run_cli("models", "promote", f"{name}:candidate", "--reason", "test fixture", home=home)
    token = run_cli("tokens", "create", "--name", "test-reviewer", "--scopes", "score,feedback,read",
                    home=home).stdout.strip()
    os.environ[TOKEN_ENV] = token  # copies of this home share its database, hence its tokens
    return home


TOKEN_ENV = "SHOPGUARD_TEST_TOKEN"


def auth_headers() -> dict[str, str]:
    """The Authorization header of the trained home's test token (scopes score, feedback, read)."""
    return {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"}


def point_at_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point SHOPGUARD_HOME at ``home`` for the test's duration (BentoML's store is the
    session's)."""
    monkeypatch.setenv("SHOPGUARD_HOME", str(home))
    return home


@pytest.fixture()
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ShopGuard home for this test (environment variables pointed at it)."""
    return point_at_home(monkeypatch, tmp_path / "home")


FAST_MERCHANT_CONFIG = {"bootstrap_samples": 30, "ensemble_size": 2}


@pytest.fixture(scope="session")
def merchant_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12,000 synthetic merchants and their links, written by the real generator command."""
    folder = tmp_path_factory.mktemp("merchant-data")
    out = folder / "merchants.parquet"
    run_cli("data", "generate", "merchants", "--n", "12000", "--seed", "3", "--out", str(out),
            home=folder / "home")
    return out, folder / "merchants.links.parquet"


TINY_MARKETING_CONFIG = {"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64,
                         "epochs": 2, "bootstrap_samples": 0,
                         "tfidf_hash_features": 2**14}


@pytest.fixture(scope="session")
def transcript_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 synthetic transcript segments written by the real generator command."""
    folder = tmp_path_factory.mktemp("transcripts")
    out = folder / "transcripts.parquet"
    run_cli("data", "generate", "transcripts", "--n", "3000", "--seed", "5", "--out", str(out),
            home=folder / "home")
    return out
