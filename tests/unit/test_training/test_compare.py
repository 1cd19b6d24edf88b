"""Champion / challenger comparison: paired deltas, decision flips, slices, and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FAST_LISTING_CONFIG, run_cli
from training.compare import paired_deltas
from training.row_identity import text_keys


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
    held_out = tmp_path / "held_out.parquet"  # rows of the training file: compare warns, the gate refuses
    pd.read_parquet(listing_file).sample(1500, random_state=3).to_parquet(held_out)
    run_cli("train", "listing-quality", "--data", str(listing_file), "--config", str(config), home=home)
    out = tmp_path / "comparison.json"
    compared = run_cli("models", "compare", "listing-quality:production", "listing-quality:candidate",
                       "--data", str(held_out), "--bootstrap", "40", "--out", str(out), home=home)
    assert "decision flips" in compared.stdout
    assert "was trained on 1,500 of 1,500 rows of held_out.parquet" in " ".join((compared.stdout + compared.stderr).split())
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
    refused = run_cli("models", "promote", "listing-quality:candidate", "--reason", "gate", "--data", str(held_out),
                      home=home, check=False)
    assert refused.returncode == 2 and "1,500 of 1,500 rows" in refused.stderr
    fresh = tmp_path / "fresh.parquet"  # newly generated listings, less the titles the versions trained on
    run_cli("data", "generate", "listings", "--n", "3000", "--seed", "11", "--out", str(fresh), home=home)
    frame = pd.read_parquet(fresh)
    seen = set(text_keys(pd.read_parquet(listing_file)["title"]))
    frame[[key not in seen for key in text_keys(frame["title"])]].to_parquet(fresh, index=False)
    run_cli("models", "compare", "listing-quality:production", "listing-quality:candidate", "--data", str(fresh),
            "--bootstrap", "0", "--out", str(out), home=home)
    delta = json.loads(out.read_text())["targets"]["is_inferior"]["pr_auc"]["delta"]
    gate = run_cli("models", "promote", "listing-quality:candidate", "--reason", "gate", "--data", str(fresh),
                   "--tolerance", "0", "--bootstrap", "40", home=home, check=False)
    if delta < 0:  # the paired comparison on the shared file decides, not stored figures
        assert gate.returncode != 0 and "both versions scored on the same rows" in gate.stderr + gate.stdout
        assert f"fresh.parquet ({len(pd.read_parquet(fresh)):,} rows" in gate.stderr + gate.stdout
    else:
        assert gate.returncode == 0, gate.stderr


def test_one_class_is_one_clear_error_not_an_empty_table(tmp_path) -> None:
    import pytest

    from common.decisions import Thresholds
    from common.errors import ShopGuardError
    from training.compare import ScoredFile, compare_scored

    one_class = ScoredFile(labels=np.zeros((3, 1), dtype=bool), scores=np.array([[0.1], [0.5], [0.9]]),
                           decisions=["allow", "review", "block"], targets=["inferior"],
                           thresholds={"inferior": Thresholds(block=0.8, review=0.4)}, slices=None)
    with pytest.raises(ShopGuardError, match="3 row.*0 positive.*both"):
        compare_scored(one_class, one_class, ("a", "b"), tmp_path / "three.parquet")


def test_overlap_is_counted_by_row_and_by_whole_file_for_older_versions(tmp_path) -> None:
    from types import SimpleNamespace

    from registry.bundle import TrainingFile, sha256_file
    from training.compare import training_overlaps
    from training.row_identity import TRAINING_ROWS_FILE, TrainingRows, text_keys

    data = tmp_path / "held_out.parquet"
    pd.DataFrame({"title": ["加厚 珊瑚绒毛毯", "香奈儿口红", "新款羽绒服"]}).to_parquet(data)

    def version(tag: str, trained_titles: list[str] | None, training_sha256: str) -> SimpleNamespace:
        folder = tmp_path / tag.replace(":", "-")
        folder.mkdir()
        files = {}
        if trained_titles is not None:
            TrainingRows.of(text_keys(trained_titles), "title").write(folder)
            files[TRAINING_ROWS_FILE] = "hash"
        lineage = SimpleNamespace(training_files=[TrainingFile(path="train.parquet", sha256=training_sha256, rows=9)])
        return SimpleNamespace(tag=tag, path=folder, manifest=SimpleNamespace(
            model_name="listing-quality", files=files, lineage=lineage))

    by_row = version("listing-quality:v1", ["加厚  珊瑚绒毛毯", "别的标题"], "0" * 64)  # a subset of its rows
    older_same_file = version("listing-quality:v0", None, sha256_file(data))
    older_other_file = version("listing-quality:v00", None, "1" * 64)
    first, second, third = training_overlaps(data, [by_row, older_same_file, older_other_file])
    assert (first.overlapping, first.rows, first.overlaps, first.older_note()) == (1, 3, True, None)
    assert second.overlapping is None and second.overlaps and "whole file" in second.describe()
    assert "records no training-row hashes" in second.older_note()
    assert not third.overlaps


def test_merchants_scored_without_the_links_file_beside_them_get_a_note(tmp_path) -> None:
    from training.compare import missing_links_note

    data = tmp_path / "held.parquet"
    data.write_bytes(b"")
    assert missing_links_note(data, None) is None  # no links file beside it: nothing to say
    (tmp_path / "held.links.parquet").write_bytes(b"")
    note = missing_links_note(data, None)
    assert note is not None and "held.links.parquet sits beside it" in note and "--links" in note
    assert missing_links_note(data, tmp_path / "held.links.parquet") is None
