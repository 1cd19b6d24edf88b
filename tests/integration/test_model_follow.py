"""Serving follows the registry: a promotion and a rollback reach both workers of a running
service without a restart, and a version whose bundle fails to load keeps the old one
serving, visibly (``/v1/models``, ``/readyz``, the console's audit page)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.store import ModelRegistry
from tests.conftest import point_at_home, run_cli
from tests.integration.server import api_get, api_post, running_server

pytestmark = pytest.mark.integration

LISTING = {"listing_id": "follow-L1", "merchant_id": "follow-M1", "title": "加厚保温杯 500ml", "category": "home",
           "price": 59.0}
FOLLOW_WITHIN_SECONDS = 30  # the promise (workers check every second here)


def _wait_for(condition: Callable[[], Any], seconds: float = FOLLOW_WITHIN_SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds} s")
        time.sleep(0.2)


def _listing_serving(base: str) -> dict[str, Any]:
    models = api_get(f"{base}/v1/models", timeout=30).json()["models"]
    return next(m for m in models if m["name"] == "listing-quality")


def _all_workers_serve(base: str, version: str, workers: int = 2) -> dict[str, Any] | None:
    entry = _listing_serving(base)
    served = [w["version"] for w in entry["serving"]["workers"]]
    return entry if served == [version] * workers and entry["serving"]["in_sync"] else None


def _answering_versions(base: str, calls: int = 12) -> set[str]:
    answered = set()
    for _ in range(calls):
        response = api_post(f"{base}/v1/listings/score", json={"listings": [LISTING]}, timeout=60)
        assert response.status_code == 200, response.text
        answered.add(response.json()["results"][0]["model"].split(":")[1])
    return answered


def _derived_version(home: Path, monkeypatch: pytest.MonkeyPatch, from_version: str, review: float) -> str:
    """A new listing-quality version: production's bundle with other thresholds (no training)."""
    point_at_home(monkeypatch, home)
    registry = ModelRegistry()
    thresholds = registry.load(f"listing-quality:{from_version}").manifest.thresholds
    changed = {key: t.model_copy(update={"review": review}) for key, t in thresholds.items()}
    return registry.derive_with_thresholds(f"listing-quality:{from_version}", changed,
                                           reason="follow test").version


def check_service_follows_the_registry(home: Path, monkeypatch: pytest.MonkeyPatch,
                                       env: dict[str, str] | None = None) -> None:
    """Promote, roll back and promote a damaged bundle under a running two-worker service."""
    env = {"SHOPGUARD_WORKERS": "2", "SHOPGUARD_DEVICE": "cpu", "SHOPGUARD_FOLLOW_SECONDS": "1", **(env or {})}
    with running_server(home, extra_env=env) as base:
        first = _listing_serving(base)["production"]
        _wait_for(lambda: _all_workers_serve(base, first))
        second = _derived_version(home, monkeypatch, first, review=0.02)
        run_cli("models", "promote", f"listing-quality:{second}", "--force", "--reason", "follow test", home=home)
        started = time.monotonic()
        _wait_for(lambda: _all_workers_serve(base, second))
        assert time.monotonic() - started < FOLLOW_WITHIN_SECONDS
        assert _answering_versions(base) == {second}
        ready = httpx.get(f"{base}/readyz", timeout=10).json()["models"]["listing-quality"]
        assert ready["production"] == second and ready["model"].endswith(second)

        run_cli("models", "rollback", "listing-quality", "--reason", "follow test", home=home)
        _wait_for(lambda: _all_workers_serve(base, first))
        assert _answering_versions(base) == {first}

        damaged = _derived_version(home, monkeypatch, first, review=0.03)
        registry = ModelRegistry()
        bundle = registry.load(f"listing-quality:{damaged}")
        model_file = bundle.path / next(name for name in bundle.manifest.files if not name.startswith("card"))
        model_file.write_bytes(model_file.read_bytes() + b"\n")
        registry.aliases.set("listing-quality", "production", damaged, action="promote", actor="operator",
                                    reason="follow test: a damaged bundle")
        refused = _wait_for(lambda: (entry := _listing_serving(base))["serving"]["in_sync"] is False and all(
            w["error"] for w in entry["serving"]["workers"]) and entry)
        assert {w["version"] for w in refused["serving"]["workers"]} == {first}
        assert all(damaged in w["error"] and f"still serving {first}" in w["error"]
                   for w in refused["serving"]["workers"])
        assert _answering_versions(base) == {first}
        ready = httpx.get(f"{base}/readyz", timeout=10).json()["models"]["listing-quality"]
        assert ready["production"] == damaged and ready["model"].endswith(first) and damaged in ready["follow_error"]


def test_two_workers_follow_promotions_and_keep_serving_past_a_damaged_bundle(
        trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("server-*.log", "journal"))
    with sqlite3.connect(home / "shopguard.db") as copied:  # the session's own server reports there too
        copied.execute("DELETE FROM served_versions")
    check_service_follows_the_registry(home, monkeypatch)


def test_a_release_reports_its_pinned_versions_not_the_registrys_production(
        trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Bento on a shared registry decides with its pins; /v1/models once showed the registry's
    # production (its thresholds, metrics and card) and in_sync false as the only sign.
    from registry.release import write_release
    from serving.bento import production_release

    home = tmp_path / "home"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("server-*.log", "journal"))
    point_at_home(monkeypatch, home)
    pinned = ModelRegistry().resolve("listing-quality:production").split(":")[1]
    release = write_release(production_release(ModelRegistry(), "test"), tmp_path / "release.json")
    newer = _derived_version(home, monkeypatch, pinned, review=0.02)
    run_cli("models", "promote", f"listing-quality:{newer}", "--force", "--reason", "release test", home=home)
    env = {"SHOPGUARD_DEVICE": "cpu", "SHOPGUARD_FOLLOW_SECONDS": "1", "SHOPGUARD_RELEASE": str(release)}
    with running_server(home, extra_env=env) as base:
        entry = _wait_for(lambda: (e := _listing_serving(base))["serving"]["workers"] and e)
        assert entry["production"] == newer and entry["release"] == pinned
        assert entry["serving"]["in_sync"] is True
        assert {w["version"] for w in entry["serving"]["workers"]} == {pinned}  # the copied home's workers too
        assert entry["thresholds"]["default"]["review"] != 0.02  # the pinned version's, not production's
        assert _answering_versions(base, calls=2) == {pinned}
        card = api_get(f"{base}/v1/models/listing-quality/card?format=json", timeout=30).json()
        assert card["model_details"]["version"]["name"] == pinned
