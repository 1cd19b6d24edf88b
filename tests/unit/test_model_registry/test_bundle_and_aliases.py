import json
from pathlib import Path

import pytest

from common.errors import ShopGuardError
from registry.bundle import (
    BundleIntegrityError,
    FeatureSetRef,
    Lineage,
    Manifest,
    read_verified_manifest,
)
from registry.cards import CardSection, ModelCard
from registry.metrics import AtThreshold, BinaryMetrics, ModelMetrics
from registry.store import ModelNotFoundError, ModelRegistry, PromotionRefusedError


def _manifest(pr_auc: float | None = None) -> Manifest:
    at = AtThreshold(threshold=0.5, precision=None, recall=0.0, f1=0.0, flagged=0)
    test = BinaryMetrics(rows=10, positives=5, roc_auc=None if pr_auc is None else 0.9, pr_auc=pr_auc,
                         block=at, review=at)
    return Manifest(
        model_name="listing-quality", task="test", label_map={"1": "bad"},
        feature_set=FeatureSetRef(name="fs", version=1, features=["a"]), thresholds={},
        metrics=ModelMetrics(test=test), lineage=Lineage(training_files=[], git_commit=None, parameters={},
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
    with pytest.raises(BundleIntegrityError, match="'manifest.json' has sha256.*edited"):
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
    with pytest.raises(ModelNotFoundError, match="no version after the colon"):  # not the production version
        registry.resolve("listing-quality:")


def test_a_worse_candidate_is_refused_unless_forced(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    good = _register(registry, tmp_path, "good", pr_auc=0.85).version
    registry.promote(f"listing-quality:{good}", reason="first", actor="ana")
    slightly_worse = _register(registry, tmp_path, "close", pr_auc=0.845).version
    worse = _register(registry, tmp_path, "worse", pr_auc=0.80).version
    with pytest.raises(PromotionRefusedError, match=r"0\.0500 below production.*--force"):
        registry.promote(f"listing-quality:{worse}", reason="try", actor="ana")
    assert registry.aliases.get("listing-quality", "production") == good
    widened = registry.promote(f"listing-quality:{worse}", reason="try", actor="ana", tolerance=0.06)
    # let through by a wider tolerance only: the history says how far below production it was
    assert widened.reason.startswith("try [tolerance 0.06 instead of 0.01: ") and "0.0500 below" in widened.reason
    registry.rollback("listing-quality", reason="back", actor="ana")
    within = registry.promote(f"listing-quality:{slightly_worse}", reason="within tolerance", actor="ana")
    assert within.reason == "within tolerance"
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


def test_a_schema_1_manifest_is_read_with_typed_metrics_and_baselines_moved_out() -> None:
    at = {"threshold": 0.5, "precision": 0.9, "recall": 0.7, "f1": 0.78, "flagged": 10}
    metrics = {"rows": 100, "positives": 20, "roc_auc": 0.9, "pr_auc": 0.6, "block": at, "review": at}
    old = {
        "schema_version": 1, "model_name": "false-marketing", "version": "v1", "task": "multi-label",
        "feature_set": {"name": "normalized_text_v1", "version": 1, "features": ["text"]},
        "label_map": {"0": "off_platform"},
        "thresholds": {"off_platform": {"block": 0.9, "review": 0.4},
                       "tfidf/off_platform": {"block": 0.8, "review": 0.3},
                       "transformer/off_platform": {"block": 0.7, "review": 0.2}},
        "metrics": {"test": {"served: transformer + TF-IDF blend": {"off_platform": metrics},
                             "transformer alone (int8 ONNX)": {"off_platform": {**metrics, "pr_auc": 0.5}},
                             "TF-IDF char 1-3-grams + logistic regression": {"off_platform": {**metrics, "pr_auc": 0.4}}},
                    "test_per_script": {"simplified": {"off_platform": metrics}}, "split_rows": {"test": 100}},
        "lineage": {"training_files": [], "git_commit": None, "parameters": {}, "library_versions": {}, "seed": 0},
    }
    manifest = Manifest.model_validate_json(json.dumps(old))
    assert manifest.schema_version == 2
    assert set(manifest.thresholds) == {"off_platform"}
    assert manifest.baselines["TF-IDF char 1-3-grams + logistic regression"].thresholds["off_platform"].review == 0.3
    assert manifest.baselines["transformer alone (int8 ONNX)"].test.headline_pr_auc == 0.5
    assert manifest.headline_metrics()["test_macro_pr_auc"] == 0.6
    assert manifest.metrics.slices["script"]["simplified"].per_category["off_platform"].pr_auc == 0.6
    assert manifest.metrics.details["split_rows"] == {"test": 100}


def test_an_edited_manifest_is_refused_naming_it(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    manifest = _register(registry, tmp_path)
    path = registry.load(manifest.tag).path / "manifest.json"
    data = json.loads(path.read_text())
    data["thresholds"] = {"default": {"block": 0.999999, "review": 0.99}}
    path.write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="'manifest.json' has sha256"):
        registry.load(manifest.tag)


def test_no_private_bentoml_api_is_used() -> None:
    repo = Path(__file__).resolve().parents[3]
    offenders = [str(p.relative_to(repo)) for folder in ("features", "registry", "serving", "training",
                                                         "shopguard", "benchmarks")
                 for p in (repo / folder).rglob("*.py")
                 if "bentoml._internal" in p.read_text(encoding="utf-8")
                 or "_model_store" in p.read_text(encoding="utf-8")]
    assert offenders == []


@pytest.mark.parametrize("version", ["../../etc/passwd", "a:b:c", "x" * 300])
def test_malformed_versions_are_not_found_not_errors(isolated_home, version) -> None:
    with pytest.raises(ModelNotFoundError):
        ModelRegistry().load(f"listing-quality:{version}")


def test_history_shows_a_forced_promotion_and_reasons_verbatim(isolated_home, tmp_path) -> None:
    from typer.testing import CliRunner

    from registry.cli import models_app

    registry = ModelRegistry()
    good = _register(registry, tmp_path, "good", pr_auc=0.85).version
    registry.promote(f"listing-quality:{good}", reason="first [bold]release[/bold]", actor="ana")
    worse = _register(registry, tmp_path, "worse", pr_auc=0.80).version
    registry.promote(f"listing-quality:{worse}", reason="override", actor="ana", force=True)
    printed = CliRunner().invoke(models_app, ["history", "listing-quality"]).output  # not a terminal
    assert "first [bold]release[/bold]" in printed
    assert "[forced past the PR-AUC guard: " in printed and "0.0500 below production" in printed
    forced_row = next(line for line in printed.splitlines() if "override" in line)
    assert "│ yes " in forced_row
    unknown = CliRunner().invoke(models_app, ["history", "listing-qualty"])
    assert unknown.exit_code != 0 and "not a ShopGuard model" in str(unknown.exception)


def test_a_given_gate_decides_instead_of_the_stored_figures(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    first = _register(registry, tmp_path, "one", pr_auc=0.80).version
    registry.promote(f"listing-quality:{first}", reason="first", actor="ana")
    better_on_paper = _register(registry, tmp_path, "two", pr_auc=0.95).version
    seen = []

    def paired(production, candidate, tolerance):  # what `--data` plugs in (training.compare.paired_shortfall)
        seen.append((production.manifest.version, candidate.manifest.version, tolerance))
        return "on held.parquet (900 rows, both versions scored on the same rows) 0.0300 below"

    with pytest.raises(PromotionRefusedError, match="900 rows, both versions"):
        registry.promote(f"listing-quality:{better_on_paper}", reason="try", actor="ana", gate=paired, tolerance=0.0)
    assert seen == [(first, better_on_paper, 0.0)]
    event = registry.promote(f"listing-quality:{better_on_paper}", reason="anyway", actor="ana", gate=paired, force=True)
    assert "[forced past the PR-AUC guard: on held.parquet (900 rows" in event.reason


def test_a_damaged_production_is_replaced_only_with_force_and_the_error_says_how(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    sound, damaged = (_register(registry, tmp_path, c, pr_auc=0.8).version for c in ("sound", "damaged"))
    registry.promote(f"listing-quality:{damaged}", reason="first")
    (registry.load(f"listing-quality:{damaged}").path / "model.txt").write_text("weights, changed")
    with pytest.raises(BundleIntegrityError, match="promote NAME:VERSION --force"):  # says what to do
        registry.load(f"listing-quality:{damaged}")
    with pytest.raises(PromotionRefusedError, match=f"production listing-quality:{damaged} cannot be loaded.*--force"):
        registry.promote(f"listing-quality:{sound}", reason="recover")
    event = registry.promote(f"listing-quality:{sound}", reason="recover", force=True)
    assert registry.aliases.get("listing-quality", "production") == sound
    assert "could not be loaded" in event.reason and "forced past the PR-AUC guard" in event.reason


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_alias_change_without_a_reason_is_refused(isolated_home, tmp_path, reason: str) -> None:
    registry = ModelRegistry()
    version = _register(registry, tmp_path).version
    with pytest.raises(ShopGuardError, match="needs a reason"):
        registry.promote(f"listing-quality:{version}", reason=reason)
    assert registry.aliases.get("listing-quality", "production") is None


@pytest.mark.parametrize("damage", ["manifest", "folder"])
def test_a_production_without_its_manifest_or_folder_is_replaced_with_force(isolated_home, tmp_path,
                                                                          damage: str) -> None:
    import shutil

    registry = ModelRegistry()
    sound, damaged = (_register(registry, tmp_path, c, pr_auc=0.8).version for c in ("sound", "damaged"))
    registry.promote(f"listing-quality:{damaged}", reason="first")
    folder = registry.load(f"listing-quality:{damaged}").path
    if damage == "manifest":
        (folder / "manifest.json").unlink()
    else:
        shutil.rmtree(folder)
    with pytest.raises(PromotionRefusedError, match="cannot be loaded"):
        registry.promote(f"listing-quality:{sound}", reason="recover")
    registry.promote(f"listing-quality:{sound}", reason="recover", force=True)
    assert registry.aliases.get("listing-quality", "production") == sound


def test_a_version_the_service_could_not_serve_is_neither_promoted_nor_rolled_back_to(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    first, second = (_register(registry, tmp_path, c).version for c in ("first", "second"))
    registry.promote(f"listing-quality:{first}", reason="first")
    registry.promote(f"listing-quality:{second}", reason="second")
    refuse_first = lambda bundle: "the API lacks its inputs" if bundle.manifest.version == first else None  # noqa: E731
    with pytest.raises(ShopGuardError, match="the API lacks its inputs"):
        registry.rollback("listing-quality", reason="back", servable=refuse_first)
    with pytest.raises(ShopGuardError, match="the API lacks its inputs"):
        registry.promote(f"listing-quality:{first}", reason="again", force=True, servable=refuse_first)
    assert registry.aliases.get("listing-quality", "production") == second


def test_a_version_derived_twice_names_each_threshold_change_by_its_version(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    base = _register(registry, tmp_path, "base")
    first = registry.derive_with_thresholds(f"listing-quality:{base.version}", {}, reason="first look")
    second = registry.derive_with_thresholds(f"listing-quality:{first.version}", {}, reason="second look")
    card = ModelCard.model_validate_json((registry.load(second.tag).path / "card.json").read_text(encoding="utf-8"))
    keys = [s.key for s in card.sections]
    assert card.version == second.version and len(keys) == len(set(keys))
    assert card.sections[0].title == f"Threshold change: the thresholds {second.version} serves"
    assert card.section(f"threshold_change_{first.version}").title == f"Earlier threshold change ({first.tag})"


def test_a_bundle_whose_manifest_this_shopguard_refuses_is_damaged_and_replaceable(isolated_home, tmp_path) -> None:
    registry = ModelRegistry()
    sound, refused = (_register(registry, tmp_path, c, pr_auc=0.8).version for c in ("sound", "refused"))
    registry.promote(f"listing-quality:{refused}", reason="first")
    manifest = registry.load(f"listing-quality:{refused}").path / "manifest.json"
    data = json.loads(manifest.read_text())
    data["thresholds"] = {"default": {"block": "NaN", "review": 0.1}}  # written by a ShopGuard that allowed it
    manifest.write_text(json.dumps(data))
    with pytest.raises(BundleIntegrityError, match="does not validate"):
        read_verified_manifest(manifest.parent)
    registry.promote(f"listing-quality:{sound}", reason="recover", force=True)
    assert registry.aliases.get("listing-quality", "production") == sound


def test_the_markdown_cards_front_matter_carries_no_path_of_the_training_machine(isolated_home, tmp_path) -> None:
    from registry.bundle import TrainingFile

    registry = ModelRegistry()
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "model.txt").write_text("weights")
    (staging / "card.json").write_text(ModelCard(model_name="listing-quality", version="", sections=[
        CardSection(key="intended_use", title="Intended use", paragraphs=["tests"])]).model_dump_json())
    manifest = _manifest()
    lineage = manifest.lineage.model_copy(update={"training_files": [
        TrainingFile(path="/work/shared/data/ingame_ads/train.txt", sha256="0" * 64, rows=3)]})
    registered = registry.register(staging, manifest.model_copy(update={"lineage": lineage}))
    card = registry.card(registered.tag, "md")
    assert "…/ingame_ads/train.txt" in card and "/work/shared" not in card
