import json
from pathlib import Path

import pytest

from features.errors import ShopGuardError
from model_registry.bundle import BundleIntegrityError, FeatureSetRef, Lineage, Manifest
from model_registry.cards import CardSection, ModelCard
from model_registry.registry import ModelNotFoundError, ModelRegistry, PromotionRefusedError


def _manifest(pr_auc: float | None = None) -> Manifest:
    return Manifest(
        model_name="listing-quality", task="test", label_map={"1": "bad"},
        feature_set=FeatureSetRef(name="fs", version=1, features=["a"]), thresholds={},
        metrics={} if pr_auc is None else {"test": {"roc_auc": 0.9, "pr_auc": pr_auc}}, lineage=Lineage(training_files=[], git_commit=None, parameters={},
                                    library_versions={}, seed=0),
    )


def _register(registry: ModelRegistry, tmp_path: Path, content: str = "weights",
              pr_auc: float | None = None) -> Manifest:
    staging = tmp_path / f"staging-{content}"
    staging.mkdir()
    (staging / "model.txt").write_text(content)
    card = ModelCard(model_name="listing-quality", version="", sections=[
        CardSection(key="intended_use", title="Intended use", paragraphs=["tests"])])
    (staging / "card.json").write_text(card.model_dump_json())
    return registry.register(staging, _manifest(pr_auc))


def test_round_trip_lists_every_file_with_its_hash(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    loaded = registry.load(manifest.tag)
    assert set(loaded.manifest.files) == {"model.txt", "card.json"}
    assert (loaded.path / "model.txt").read_text() == "weights"


@pytest.mark.parametrize("damage", ["alter", "delete", "add"])
def test_tampered_bundle_is_refused_naming_the_file(isolated_home, tmp_path, damage) -> None:
    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    folder = registry.load(manifest.tag).path
    if damage == "alter":
        (folder / "model.txt").write_text("weights, changed")
        expected = "'model.txt' has sha256"
    elif damage == "delete":
        (folder / "model.txt").unlink()
        expected = "'model.txt' listed in the manifest is missing"
    else:
        (folder / "payload.pkl").write_bytes(b"\x80\x04")
        expected = "'payload.pkl' is not listed"
    with pytest.raises(BundleIntegrityError, match=expected):
        registry.load(manifest.tag)


def test_manifest_itself_cannot_be_edited_to_hide_a_change(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    folder = registry.load(manifest.tag).path
    data = json.loads((folder / "manifest.json").read_text())
    data["files"]["model.txt"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="model.txt"):
        registry.load(manifest.tag)


def test_promote_rollback_and_history(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    v1, v2, v3 = (_register(registry, tmp_path, c).version for c in ("one", "two", "three"))
    assert registry.aliases.get("listing-quality", "candidate") == v3
    for version in (v1, v2, v3):
        registry.promote(f"listing-quality:{version}", reason=f"ship {version}", actor="ana")
    assert registry.resolve("listing-quality") == f"listing-quality:{v3}"
    assert registry.aliases.get("listing-quality", "candidate") is None  # cleared on promotion
    assert registry.rollback("listing-quality", reason="bad", actor="ana").version == v2
    assert registry.rollback("listing-quality", reason="worse", actor="ana").version == v1
    with pytest.raises(ShopGuardError, match="first production version"):
        registry.rollback("listing-quality", reason="again")
    actions = [(e.alias, e.action, e.version) for e in registry.history("listing-quality")]
    assert actions[-2:] == [("production", "rollback", v2), ("production", "rollback", v1)]
    assert all(e.actor for e in registry.history("listing-quality"))


def test_promoting_the_current_production_is_refused(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    version = _register(registry, tmp_path).version
    registry.promote(f"listing-quality:{version}", reason="first")
    with pytest.raises(ShopGuardError, match="already production"):
        registry.promote(f"listing-quality:{version}", reason="again")


def test_unknown_references_explain_what_to_do(isolated_home) -> None:
    registry = ModelRegistry()
    with pytest.raises(ModelNotFoundError, match="shopguard train listing-quality"):
        registry.resolve("listing-quality:production")
    with pytest.raises(ModelNotFoundError, match="shopguard models list"):
        registry.resolve("listing-quality:v0")


def test_a_worse_candidate_is_refused_unless_forced(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    good = _register(registry, tmp_path, "good", pr_auc=0.85).version
    registry.promote(f"listing-quality:{good}", reason="first", actor="ana")
    slightly_worse = _register(registry, tmp_path, "close", pr_auc=0.845).version
    worse = _register(registry, tmp_path, "worse", pr_auc=0.80).version
    with pytest.raises(PromotionRefusedError, match=r"0\.0500 below production.*--force"):
        registry.promote(f"listing-quality:{worse}", reason="try", actor="ana")
    assert registry.aliases.get("listing-quality", "production") == good
    registry.promote(f"listing-quality:{worse}", reason="try", actor="ana", tolerance=0.06)
    registry.rollback("listing-quality", reason="back", actor="ana")
    registry.promote(f"listing-quality:{slightly_worse}", reason="within tolerance", actor="ana")
    registry.rollback("listing-quality", reason="back", actor="ana")
    event = registry.promote(f"listing-quality:{worse}", reason="analyst override", actor="ana", force=True)
    assert event.version == worse and "forced past the PR-AUC guard" in event.reason


def test_the_card_shows_the_versions_promotions_and_rollbacks(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    first, second = (_register(registry, tmp_path, c).version for c in ("one", "two"))
    registry.promote(f"listing-quality:{first}", reason="ship one", actor="ana")
    registry.promote(f"listing-quality:{second}", reason="ship two", actor="bo")
    registry.rollback("listing-quality", reason="two misbehaves", actor="cy")
    markdown = registry.card(f"listing-quality:{second}", "md")
    assert "## Registry history" in markdown
    assert "ship two" in markdown and "two misbehaves" in markdown and "ship one" not in markdown
    as_json = json.loads(registry.card(f"listing-quality:{first}", "json"))
    assert as_json["schema_version"] == "0.0.2" and as_json["model_details"]["version"]["name"] == first
    history = next(s for s in as_json["shopguard_card"]["sections"] if s["key"] == "registry_history")
    assert [row[1] for row in history["tables"][0]["rows"]] == ["register", "register", "promote", "promote", "rollback"]
    assert "<h2>Registry history</h2>" in registry.card(f"listing-quality:{first}", "html")
