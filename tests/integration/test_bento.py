"""`shopguard bento build` packs the service and the three production models (cards
included); the exported Bento serves them in a fresh BentoML home with an empty ShopGuard
home (no registry database), loading exactly the pinned versions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from kinds import MODEL_NAMES, is_training_module
from registry.store import ModelRegistry
from tests.conftest import BIN, REPO, point_at_home, run_cli
from tests.integration.server import running_server

pytestmark = pytest.mark.integration
BUILD_CONTEXT = ("bentofile.yaml", "README.md", "deploy", "common", "features", "database", "policy", "registry",
                 "kinds", "serving")


def _build_context(folder: Path) -> Path:
    """A copy of what bentofile.yaml packs (the build writes release.json into its context)."""
    folder.mkdir()
    for name in BUILD_CONTEXT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    return folder


def _bentoml(*args: str, bentoml_home: str) -> str:
    env = {**os.environ, "BENTOML_HOME": bentoml_home, "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run([str(BIN / "bentoml"), *args], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_bento_carries_and_serves_exactly_the_production_models(trained_home, tmp_path, monkeypatch) -> None:
    context = _build_context(tmp_path / "context")
    refused = run_cli("bento", "build", "--context", str(context), "--version", "Bad Version!", home=trained_home,
                      check=False)  # was BentoML's whole traceback in one line, after release.json was written
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--version 'Bad Version!'" in refused.stderr
    assert not (context / "release.json").exists()
    output = run_cli("bento", "build", "--context", str(context), home=trained_home).stdout
    bento_tag = next(line.split()[1] for line in output.splitlines() if line.startswith("bento:"))
    # the hint runs as printed: the Bento is in this home's BentoML store, not the user's default one
    store = os.environ.get("BENTOML_HOME") or trained_home / "bentoml"  # the test session's store, if it set one
    assert f"containerize: BENTOML_HOME={store} bentoml containerize {bento_tag}" in output

    point_at_home(monkeypatch, trained_home)
    production = {name: ModelRegistry().resolve(f"{name}:production") for name in MODEL_NAMES}
    release = json.loads((context / "release.json").read_text())
    assert {name: pinned["tag"] for name, pinned in release["models"].items()} == production

    # BentoML's own record of the Bento lists the three models (declared with BentoModel): what
    # `bentoml get -o json` prints, read in this process (the session's store, where the build
    # above wrote it), as is the export; the import into a fresh store is its own process.
    import bentoml

    info = json.loads(json.dumps(bentoml.get(bento_tag).info.to_dict(), default=str))
    assert sorted(m["tag"] for m in info["services"][0]["models"]) == sorted(production.values())

    archive = tmp_path / "shopguard.bento"
    bentoml.export_bento(bento_tag, str(archive))
    with tarfile.open(archive) as bento:
        names = set(bento.getnames())
    for tag in production.values():
        name, version = tag.split(":")
        for file in ("card.md", "card.json", "manifest.json"):
            assert f"./models/{name}/{version}/{file}" in names, f"{file} of {tag} missing from the Bento"
    assert "./src/release.json" in names and "./src/serving/service.py" in names
    assert not any(n.startswith("./src/training/") for n in names), "serving never ships training code"
    assert "./src/kinds/listing_quality/runtime.py" in names
    assert not [n for n in names if n.startswith("./src/kinds/") and is_training_module(
        n[len("./src/"):].removesuffix(".py").replace("/", "."))], "nor a kind's training half"

    fresh_bentoml = tmp_path / "fresh-bentoml"
    _bentoml("import", str(archive), bentoml_home=str(fresh_bentoml))
    env = {"BENTOML_HOME": str(fresh_bentoml), "SHOPGUARD_AUTH": "off", "SHOPGUARD_DEVICE": "cpu"}
    with running_server(tmp_path / "fresh-home", extra_env=env, target=bento_tag, cwd=tmp_path) as base:
        ready = httpx.get(f"{base}/readyz").json()
        assert {name: m["model"] for name, m in ready["models"].items()} == production
        listing = {"listing_id": "b-1", "title": "高仿 名牌包 原单 1:1", "category": "apparel", "price": 99}
        answer = httpx.post(f"{base}/v1/listings/score", json={"listings": [listing]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["model"] == production["listing-quality"]
        stream = {"stream_id": "s-1", "segments": [{"text": "加微信私聊下单，全网最低价，今天最后三单", "start_ms": 0,
                                                        "end_ms": 5000}]}
        answer = httpx.post(f"{base}/v1/streams/score", json=stream, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == production["false-marketing"]
