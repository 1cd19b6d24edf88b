import json
from pathlib import Path

import pytest

from registry.bundle import BundleIntegrityError, sha256_file
from registry.release import (
    ReleasedModel,
    ReleaseError,
    bento_release_file,
    new_release,
    read_release,
    write_release,
)
from registry.store import ModelRegistry
from tests.conftest import point_at_home
from tests.unit.test_model_registry.test_bundle_and_aliases import _register


def _pin(registry: ModelRegistry, tag: str) -> ReleasedModel:
    return ReleasedModel(tag=tag, manifest_sha256=sha256_file(registry.load(tag).path / "manifest.json"))


def test_a_release_loads_its_pinned_version_where_no_registry_recorded_it(isolated_home, tmp_path,
                                                                          monkeypatch) -> None:
    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    path = write_release(new_release({"listing-quality": _pin(registry, manifest.tag)}, "analyst"), tmp_path / "release.json")
    release = read_release(path)
    pinned = release.pinned("listing-quality")
    point_at_home(monkeypatch, tmp_path / "fresh-home")  # a Bento's home: same model store, empty database
    fresh = ModelRegistry()
    with pytest.raises(BundleIntegrityError, match="never recorded"):
        fresh.load(manifest.tag)
    assert fresh.load_pinned(pinned.tag, pinned.manifest_sha256).tag == manifest.tag
    with pytest.raises(ReleaseError, match="pins no merchant-risk"):
        release.pinned("merchant-risk")


def test_an_edited_manifest_is_refused_against_the_release(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    pinned = _pin(registry, manifest.tag)
    path = registry.load(manifest.tag).path / "manifest.json"
    data = json.loads(path.read_text())
    data["thresholds"] = {"default": {"block": 0.999999, "review": 0.99}}
    path.write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="the release recorded"):
        registry.load_pinned(pinned.tag, pinned.manifest_sha256)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a valid release"),
    (json.dumps({"models": {}, "created_at": "2026-11-30T00:00:00Z", "created_by": "a", "extra": 1}),
     "not a valid release"),
    (json.dumps({"models": {"listing-quality": {"tag": "listing-quality:v1", "manifest_sha256": "abc"}},
                 "created_at": "2026-11-30T00:00:00Z", "created_by": "a"}), "manifest_sha256"),
])
def test_a_bad_release_file_is_refused_naming_the_problem(tmp_path, content, message) -> None:
    path = tmp_path / "release.json"
    path.write_text(content)
    with pytest.raises(ReleaseError, match=message):
        read_release(path)
    with pytest.raises(ReleaseError, match="does not exist"):
        read_release(tmp_path / "missing.json")


def test_the_release_file_is_found_only_inside_a_bento(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "release.json").write_text("{}")
    assert bento_release_file(source) is None  # a checkout with a stray release.json
    (tmp_path / "bento.yaml").write_text("service: x")
    assert bento_release_file(source) == source / "release.json"


def test_the_console_of_a_release_shows_and_opens_its_pinned_versions(isolated_home, tmp_path, monkeypatch) -> None:
    # Served from a Bento (an empty registry database), the console once showed no version,
    # "differs from production", and answered 404 on the decision's version and card links.
    from serving.console.state import ConsoleState

    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    path = write_release(new_release({"listing-quality": _pin(registry, manifest.tag)}, "analyst"),
                         tmp_path / "release.json")
    point_at_home(monkeypatch, tmp_path / "bento-home")
    (tmp_path / "bento-home").mkdir()
    monkeypatch.setenv("SHOPGUARD_RELEASE", str(path))
    console = ConsoleState()
    summary = next(m for m in console.model_summaries() if m["kind"].name == "listing-quality")
    assert summary["release"] == manifest.version and summary["production"] is None
    assert console.version_info("listing-quality", manifest.version)["version"] == manifest.version
    assert "Model card listing-quality" in console.card("listing-quality", manifest.version)
    from registry.store import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        console.version_info("listing-quality", "v19990101-000000-0000")  # not the pin: the registry's rules


def test_an_altered_file_of_a_pinned_version_says_to_rebuild_the_release_not_to_promote(isolated_home,
                                                                                        tmp_path) -> None:
    # A Bento serves its pin whatever the aliases say: the advice to promote mended nothing there.
    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    pinned = _pin(registry, manifest.tag)
    bundle = registry.load(manifest.tag).path
    altered = next(name for name in manifest.files if name != "manifest.json")
    (bundle / altered).write_bytes((bundle / altered).read_bytes() + b" ")
    with pytest.raises(BundleIntegrityError, match="the file was altered") as refused:
        registry.load_pinned(pinned.tag, pinned.manifest_sha256)
    assert "bento build" in str(refused.value) and "models promote" not in str(refused.value)
    with pytest.raises(BundleIntegrityError, match="models promote"):
        registry.load(manifest.tag)  # through the registry, promoting a sound version does mend it
