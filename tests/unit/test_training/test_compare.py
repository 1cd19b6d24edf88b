"""Champion / challenger comparison: paired deltas, decision flips, slices, and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FAST_LISTING_CONFIG, run_cli
from training.compare import paired_deltas


def test_identical_scores_have_a_zero_delta_and_a_zero_interval() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = rng.random(500) + 0.3 * y
    roc, ap = paired_deltas(y, scores, scores, n_boot=50)
    assert roc.delta == 0.0 and ap.delta == 0.0
    assert (ap.delta_ci.low, ap.delta_ci.high) == (0.0, 0.0)


def test_a_clearly_better_challenger_has_an_interval_above_zero() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    weak, strong = rng.random(2000) + 0.2 * y, rng.random(2000) + 1.0 * y
    roc, ap = paired_deltas(y, weak, strong, n_boot=100)
    assert roc.delta > 0 and roc.delta_ci.low > 0
    assert ap.delta_ci.low <= ap.delta <= ap.delta_ci.high


@pytest.mark.integration  # the shared trained home
def test_compare_cli_scores_both_versions_on_one_file(trained_home, listing_file, tmp_path) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    config = tmp_path / "weak.json"
    config.write_text(json.dumps({**FAST_LISTING_CONFIG, "num_leaves": 4, "num_boost_round": 20}))
    held_out = tmp_path / "held_out.parquet"
    pd.read_parquet(listing_file).sample(1500, random_state=3).to_parquet(held_out)
    run_cli("train", "listing-quality", "--data", str(listing_file), "--config", str(config), home=home)
    out = tmp_path / "comparison.json"
    printed = run_cli("models", "compare", "listing-quality:production", "listing-quality:candidate",
                      "--data", str(held_out), "--bootstrap", "40", "--out", str(out), home=home).stdout
    assert "decision flips" in printed
    comparison = json.loads(out.read_text())
    target = comparison["targets"]["is_inferior"]
    assert target["rows"] == 1500
    assert abs(target["pr_auc"]["delta"] - (target["pr_auc"]["b"] - target["pr_auc"]["a"])) < 1e-12
    assert target["pr_auc"]["delta"] < 0 and target["roc_auc"]["delta"] < 0  # the weak challenger loses
    flips = comparison["decision_flips"]
    assert sum(sum(row.values()) for row in flips.values()) == 1500
    assert comparison["flipped_rows"] == 1500 - sum(flips[d][d] for d in flips)
    assert set(comparison["slices"]) == set(pd.read_parquet(held_out)["category"])
    run_cli("models", "compare", "listing-quality:production", "listing-quality:candidate",
            "--data", str(held_out), "--bootstrap", "0", "--out", str(tmp_path / "c.md"), home=home)
    assert "| A \\ B | block | review | allow |" in (tmp_path / "c.md").read_text()
    gate = run_cli("models", "promote", "listing-quality:candidate", "--reason", "gate", "--data", str(held_out),
                   "--tolerance", "0", "--bootstrap", "40", home=home, check=False)
    if target["pr_auc"]["delta"] < 0:  # the paired comparison on the shared file decides, not stored figures
        assert gate.returncode != 0 and "both versions scored on the same rows" in gate.stderr + gate.stdout
        assert "held_out.parquet (1,500 rows" in gate.stderr + gate.stdout
    else:
        assert gate.returncode == 0, gate.stderr


def test_one_class_is_one_clear_error_not_an_empty_table(tmp_path) -> None:
    import pytest

    from features.errors import ShopGuardError
    from policy.decisions import Thresholds
    from training.compare import ScoredFile, compare_scored

    one_class = ScoredFile(labels=np.zeros((3, 1), dtype=bool), scores=np.array([[0.1], [0.5], [0.9]]),
                           decisions=["allow", "review", "block"], targets=["inferior"],
                           thresholds={"inferior": Thresholds(block=0.8, review=0.4)}, slices=None)
    with pytest.raises(ShopGuardError, match="3 row.*0 positive.*both"):
        compare_scored(one_class, one_class, ("a", "b"), tmp_path / "three.parquet")


def test_compare_warns_when_the_file_trained_either_version(tmp_path) -> None:
    from types import SimpleNamespace

    from model_registry.bundle import TrainingFile, sha256_file
    from training.compare import training_overlap

    data = tmp_path / "held_out.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(data)
    trained_on = SimpleNamespace(tag="listing-quality:v1", lineage=SimpleNamespace(training_files=[
        TrainingFile(path="train.parquet", sha256=sha256_file(data), rows=2)]))
    other = SimpleNamespace(tag="listing-quality:v2", lineage=SimpleNamespace(training_files=[
        TrainingFile(path="other.parquet", sha256="0" * 64, rows=9)]))
    warnings = training_overlap(data, [trained_on, other])
    assert len(warnings) == 1 and "listing-quality:v1 was trained on this very file" in warnings[0]
