"""Shared fixtures: a small generated catalogue and a trained, promoted registry home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
BIN = Path(sys.executable).parent
# BentoML fixes its model store at first use in a process, so the whole test session (and
# every CLI and server it starts) shares one store; each test's registry database says which
# versions are its own.
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="shopguard-test-bentoml-")

FAST_LISTING_CONFIG = {"bootstrap_samples": 30, "text_oof_folds": 3, "text_hash_features": 2**16}


def run_cli(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``shopguard`` CLI with ``SHOPGUARD_HOME`` = ``home``."""
    env = {**os.environ, "SHOPGUARD_HOME": str(home), "COLUMNS": "200"}
    result = subprocess.run([str(BIN / "shopguard"), *args], env=env, capture_output=True,
                            text=True, cwd=REPO, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"shopguard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def listing_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6,000-row synthetic catalogue written by the real generator command."""
    folder = tmp_path_factory.mktemp("data")
    out = folder / "listings.parquet"
    run_cli("data", "generate", "listings", "--n", "6000", "--seed", "7", "--out", str(out),
            home=folder / "home")
    return out


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory, listing_file: Path,
                 merchant_files: tuple[Path, Path], transcript_file: Path) -> Path:
    """A ShopGuard home with all three models trained by the CLI and promoted to production."""
    home = tmp_path_factory.mktemp("home")
    listing_config, merchant_config = home / "listing_config.json", home / "merchant_config.json"
    marketing_config = home / "marketing_config.json"
    listing_config.write_text(json.dumps(FAST_LISTING_CONFIG))
    merchant_config.write_text(json.dumps(FAST_MERCHANT_CONFIG))
    marketing_config.write_text(json.dumps(TINY_MARKETING_CONFIG))
    run_cli("train", "listing-quality", "--data", str(listing_file), "--config", str(listing_config),
            home=home)
    run_cli("train", "merchant-risk", "--data", str(merchant_files[0]), "--links", str(merchant_files[1]),
            "--config", str(merchant_config), home=home)
    run_cli("train", "false-marketing", "--data", str(transcript_file), "--config", str(marketing_config),
            home=home)
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
