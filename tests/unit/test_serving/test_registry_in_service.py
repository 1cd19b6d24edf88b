"""The service and a damaged or unloadable bundle: a worker that could not load the production
version tries again, so a passing failure (a file restored, a database back) does not stick
until a restart; the card of a damaged version is a conflict naming the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.bundle import FeatureSetRef, Lineage, Manifest
from registry.cards import CardSection, ModelCard
from registry.metrics import AtThreshold, BinaryMetrics, ModelMetrics
from registry.store import ModelRegistry
from serving import model_follower
from serving.model_follower import ModelFollower


@dataclass
class Served:
    """What a worker answers with: only its tag matters to the follower."""

    tag: str


def _register(registry: ModelRegistry, tmp_path: Path, content: str) -> str:
    staging = tmp_path / f"staging-{content}"
    staging.mkdir()
    (staging / "model.txt").write_text(content)
    (staging / "card.json").write_text(ModelCard(model_name="listing-quality", version="", sections=[
        CardSection(key="intended_use", title="Intended use", paragraphs=["tests"])]).model_dump_json())
    at = AtThreshold(threshold=0.5, precision=None, recall=0.0, f1=0.0, flagged=0)
    test = BinaryMetrics(rows=10, positives=5, roc_auc=None, pr_auc=None, block=at, review=at)
    manifest = Manifest(model_name="listing-quality", task="test", label_map={"1": "bad"},
                        feature_set=FeatureSetRef(name="fs", version=1, features=["a"]), thresholds={},
                        metrics=ModelMetrics(test=test), lineage=Lineage(training_files=[], git_commit=None, parameters={},
                                                                library_versions={}, seed=0))
    return registry.register(staging, manifest).version


@pytest.mark.parametrize(("retry_seconds", "picked_up"), [(0.0, True), (3600.0, False)])
def test_a_failed_load_is_tried_again_after_the_retry_time(isolated_home, tmp_path, monkeypatch,
                                                            retry_seconds: float, picked_up: bool) -> None:
    monkeypatch.setattr(model_follower, "RETRY_SECONDS", retry_seconds)
    registry = ModelRegistry()
    old, new = (_register(registry, tmp_path, c) for c in ("old", "new"))
    registry.promote(f"listing-quality:{old}", reason="first")
    serving: dict[str, Served | None] = {"listing-quality": Served(f"listing-quality:{old}")}
    follower = ModelFollower(registry.aliases, registry.deployments, ["listing-quality"], lambda: serving,
                             lambda name, version: Served(registry.load(f"{name}:{version}").manifest.tag),
                             lambda name, runtime: serving.__setitem__(name, runtime), every_seconds=0)
    registry.promote(f"listing-quality:{new}", reason="next")
    model_file = registry.load(f"listing-quality:{new}").path / "model.txt"
    model_file.write_text("damaged")
    follower.check()
    assert serving["listing-quality"] == Served(f"listing-quality:{old}")  # the old version keeps answering
    assert "could not be loaded" in follower.state.errors["listing-quality"]
    model_file.write_text("new")  # restored: the next round after the retry time serves it
    follower.check()
    assert (serving["listing-quality"] == Served(f"listing-quality:{new}")) is picked_up
    assert ("listing-quality" in follower.state.errors) is not picked_up


def test_the_card_of_a_damaged_version_is_a_conflict_naming_the_file_not_a_missing_version(
        isolated_home, tmp_path) -> None:
    from starlette.testclient import TestClient

    from serving import models_api

    models_api._registry.cache_clear()  # the service's registry is per process: this test's home
    registry = ModelRegistry()
    version = _register(registry, tmp_path, "weights")
    (registry.load(f"listing-quality:{version}").path / "model.txt").write_text("changed")
    answer = TestClient(models_api.models_app).get(f"/listing-quality/card?version={version}&format=md")
    models_api._registry.cache_clear()
    assert answer.status_code == 409
    body = answer.json()
    assert body["error"] == "bundle_damaged" and body["field"] == "version"
    assert "'model.txt' has sha256" in body["message"] and "--force" in body["message"]


def test_a_lasting_load_failure_is_retried_less_and_less_often() -> None:
    from serving.model_follower import FailedLoad

    waits = []
    for attempts in range(1, 9):
        failed = FailedLoad("v1", 0.0, attempts)
        waits.append(next(t for t in range(0, 7200, 30) if failed.due(float(t))))
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]  # doubling, at most an hour
