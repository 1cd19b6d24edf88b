"""Honest evaluation: every bundle records its training rows (``training_rows.npy``), the
promotion gate refuses a file that overlaps them or holds too few rows of a class, an older
bundle falls back to the whole-file check, ``evaluate`` warns on training rows, and "met"
is read off the interval, not the point. Tiny listing-quality models (a second each)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from registry.metrics import RealCheck
from tests.conftest import point_at_home, run_cli
from training.row_identity import (
    TRAINING_ROWS_FILE,
    read_training_rows,
    row_hashes,
    rows_in,
    text_key,
    text_keys,
    training_row_set,
)

TINY_LISTING = {"bootstrap_samples": 0, "text_oof_folds": 2, "text_hash_features": 2**12, "real_checks": False,
                "num_boost_round": 50}


# -- row identity -------------------------------------------------------------------------------

def test_text_identity_is_nfkc_with_white_space_collapsed() -> None:
    assert text_key("  ＡＢＣ１２３\u3000正品   保证\n") == "ABC123 正品 保证"
    assert text_key("一比一 高仿") == text_key("一比一\t\t高仿 ")
    assert text_key("Chanel") != text_key("chanel")  # no case folding: NFKC only


def test_row_hashes_are_stable_blake2b_and_membership_is_exact() -> None:
    expected = int.from_bytes(hashlib.blake2b("正品".encode(), digest_size=8).digest(), "big")
    assert row_hashes(["正品"])[0] == np.uint64(expected)  # the same in every process, unlike hash()
    training = training_row_set(["a", "b", "b", "c"])
    assert training.dtype == np.uint64 and len(training) == 3 and (np.diff(training.astype(np.float64)) > 0).all()
    assert rows_in(row_hashes(["b", "z", "a", "b"]), training).tolist() == [True, False, True, True]
    assert rows_in(row_hashes(["a"]), training_row_set([])).tolist() == [False]


# -- "met" --------------------------------------------------------------------------------------

def _check(value: float, low: float | None, high: float | None, target: float, direction: str) -> RealCheck:
    return RealCheck(key="k", description="d", metric="rate", rows=9, value=value, low=low, high=high,
                     target=target, direction=direction)


@pytest.mark.parametrize(("value", "low", "high", "target", "direction", "verdict"), [
    (0.0, 0.0, 0.30, 0.08, "at_most", "not shown"),  # 0 of 9 flagged: the interval reaches 30%
    (0.02, 0.01, 0.05, 0.08, "at_most", "yes"),
    (0.10, 0.07, 0.13, 0.08, "at_most", "no"),
    (0.966, 0.70, 1.0, 0.80, "at_least", "not shown"),
    (0.90, 0.85, 0.95, 0.80, "at_least", "yes"),
    (0.80, 0.80, 0.90, 0.80, "at_least", "yes"),  # the bound on the target counts
    (0.70, 0.60, 0.85, 0.80, "at_least", "no"),
    (0.95, None, None, 0.80, "at_least", "not shown"),  # no interval: nothing shown
])
def test_met_is_said_only_when_the_interval_is_on_the_targets_side(value, low, high, target, direction,
                                                                    verdict) -> None:
    check = _check(value, low, high, target, direction)
    assert check.verdict == verdict
    assert check.met is (verdict == "yes")


def test_tables_print_the_three_states() -> None:
    from registry.metrics import RealWorldChecks
    from training.card_parts import checks_rows

    checks = RealWorldChecks(available=True, note="n", checks=[
        _check(0.0, 0.0, 0.30, 0.08, "at_most"), _check(0.02, 0.01, 0.05, 0.08, "at_most"),
        _check(0.10, 0.07, 0.13, 0.08, "at_most")])
    assert [row[-1] for row in checks_rows(checks, "file")] == ["not shown", "yes", "NO"]


# -- a home with two tiny listing-quality versions ----------------------------------------------

@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """production trained on a.parquet, candidate on b.parquet (600 listings each), and
    held_out.parquet: generated listings whose titles trained neither."""
    from kinds.listing_quality.generator import ListingGenerationConfig, generate_listings

    folder = tmp_path_factory.mktemp("honest-gate")
    frames = {name: generate_listings(ListingGenerationConfig(n=n, seed=seed), progress=False)
              for name, n, seed in (("a", 600, 1), ("b", 600, 2), ("fresh", 1500, 3))}
    seen = set(text_keys(frames["a"]["title"])) | set(text_keys(frames["b"]["title"]))
    fresh = frames.pop("fresh")
    frames["held_out"] = fresh[[key not in seen for key in text_keys(fresh["title"])]]
    files = {}
    for name, frame in frames.items():
        files[name] = folder / f"{name}.parquet"
        frame.to_parquet(files[name], index=False)
    config = folder / "tiny.json"
    config.write_text(json.dumps(TINY_LISTING))
    home = folder / "home"
    tags = []
    for name in ("a", "b"):
        printed = run_cli("train", "listing-quality", "--data", str(files[name]), "--config", str(config),
                          home=home).stdout
        tags.append(next(w for w in printed.split() if w.startswith("listing-quality:v")))
        if name == "a":
            run_cli("models", "promote", "listing-quality:candidate", "--reason", "first", home=home)
    return SimpleNamespace(home=home, folder=folder, files=files, production=tags[0], candidate=tags[1])


def _copy_home(gate: SimpleNamespace, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(gate.home, home)
    return home


def _subset(gate: SimpleNamespace, name: str, rows: int, tmp_path: Path, seed: int = 0) -> Path:
    out = tmp_path / f"{name}-{rows}.parquet"
    pd.read_parquet(gate.files[name]).sample(rows, random_state=seed).to_parquet(out, index=False)
    return out


def _promote(home: Path, data: Path, *extra: str):
    return run_cli("models", "promote", "listing-quality:candidate", "--reason", "gate", "--data", str(data),
                   "--bootstrap", "20", *extra, home=home, check=False)


def test_bundle_lists_and_verifies_its_training_rows(gate, tmp_path, monkeypatch) -> None:
    from common.decisions import Thresholds
    from registry.bundle import BundleIntegrityError
    from registry.store import ModelRegistry

    point_at_home(monkeypatch, _copy_home(gate, tmp_path))
    registry = ModelRegistry()
    bundle = registry.load(gate.candidate)
    assert TRAINING_ROWS_FILE in bundle.manifest.files  # hashed into the manifest like every bundle file
    titles = pd.read_parquet(gate.files["b"])["title"]
    stored = read_training_rows(bundle.path, bundle.manifest.files)
    np.testing.assert_array_equal(stored, training_row_set(text_keys(titles)))
    assert bundle.manifest.metrics.details["training_rows"]["rows"] == 600
    derived = registry.derive_with_thresholds(gate.candidate, {"default": Thresholds(block=0.9, review=0.5)},
                                              reason="test")
    assert derived.files[TRAINING_ROWS_FILE] == bundle.manifest.files[TRAINING_ROWS_FILE]  # carried along
    path = registry.load(derived.tag).path / TRAINING_ROWS_FILE
    np.save(path, stored[:-1], allow_pickle=False)  # a training row taken out of the record
    with pytest.raises(BundleIntegrityError, match="training_rows.npy"):
        registry.load(derived.tag)


def test_gate_refuses_the_candidates_training_file_and_any_subset_of_it(gate, tmp_path) -> None:
    for data, found in ((gate.files["b"], "600 of 600 rows"), (_subset(gate, "b", 300, tmp_path), "300 of 300 rows")):
        refused = _promote(gate.home, data, "--force")  # --force does not make training rows held out
        assert refused.returncode == 2, refused.stdout
        message = refused.stderr.strip()
        assert len(message.splitlines()) == 1 and message.startswith("error: ")
        assert "overlaps training rows" in message and f"candidate {gate.candidate}: {found}" in message
        assert re.search(rf"production {gate.production}: [\d,]+ of {found.split(' of ')[1]}", message)  # titles repeat


def test_gate_refuses_a_few_of_productions_rows_among_held_out_ones(gate, tmp_path) -> None:
    mixed = tmp_path / "mixed.parquet"
    held_out = pd.read_parquet(gate.files["held_out"])
    pd.concat([held_out, pd.read_parquet(gate.files["a"]).head(5)]).to_parquet(mixed, index=False)
    refused = _promote(gate.home, mixed)
    assert refused.returncode == 2
    assert f"production {gate.production}: 5 of {len(held_out) + 5:,} rows" in refused.stderr


def test_gate_needs_enough_rows_of_each_class(gate, tmp_path) -> None:
    held_out = pd.read_parquet(gate.files["held_out"])
    small = tmp_path / "small.parquet"
    pd.concat([held_out[held_out.is_inferior == 1].head(12), held_out[held_out.is_inferior == 0].head(8)]
              ).to_parquet(small, index=False)
    refused = _promote(gate.home, small)
    assert refused.returncode == 2
    assert "too small for the promotion gate" in refused.stderr
    assert "at least 30 positive and 30 negative" in refused.stderr
    assert "is_inferior: 12 positive, 8 negative" in refused.stderr
    lowered = _promote(_copy_home(gate, tmp_path), small, "--min-per-class", "5", "--tolerance", "1")
    assert lowered.returncode == 0, lowered.stderr


def test_gate_compares_on_rows_neither_version_trained_on(gate, tmp_path) -> None:
    held_out = pd.read_parquet(gate.files["held_out"])
    assert min(held_out.is_inferior.sum(), (held_out.is_inferior == 0).sum()) >= 30
    home = _copy_home(gate, tmp_path)
    promoted = _promote(home, gate.files["held_out"], "--tolerance", "1")
    assert promoted.returncode == 0, promoted.stderr
    assert f"production {gate.production.split(':')[1]} -> {gate.candidate.split(':')[1]}" in promoted.stdout


def test_an_older_bundle_without_row_hashes_falls_back_to_the_whole_file(gate, tmp_path, monkeypatch) -> None:
    from registry.store import ModelRegistry

    home = point_at_home(monkeypatch, _copy_home(gate, tmp_path))
    registry = ModelRegistry()
    bundle = registry.load(gate.candidate)
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in bundle.manifest.files:
        if name != TRAINING_ROWS_FILE:  # as bundles were written before
            shutil.copy2(bundle.path / name, staging / name)
    older = registry.register(staging, bundle.manifest.model_copy(update={"version": "", "files": {}}))
    refused = _promote(home, gate.files["b"])
    assert refused.returncode == 2
    assert f"candidate {older.tag}: the whole file (same sha256 as a training file)" in refused.stderr
    assert f"{older.tag} records no training-row hashes" in refused.stdout + refused.stderr
    b_only = tmp_path / "b_only.parquet"  # rows of b whose titles did not also train production
    b = pd.read_parquet(gate.files["b"])
    seen = set(text_keys(pd.read_parquet(gate.files["a"])["title"]))
    b[[key not in seen for key in text_keys(b["title"])]].to_parquet(b_only, index=False)
    subset = _promote(home, b_only, "--min-per-class", "1", "--tolerance", "1")
    assert "records no training-row hashes" in subset.stdout + subset.stderr and "whole-file identity" in subset.stdout + subset.stderr
    assert subset.returncode == 0, subset.stderr  # by whole file, a subset passes: what the note warns of


def test_evaluate_warns_and_reports_the_overlap(gate, tmp_path) -> None:
    subset = _subset(gate, "b", 300, tmp_path)
    out = tmp_path / "evaluation.json"
    evaluated = run_cli("evaluate", gate.candidate, "--data", str(subset), "--out", str(out), home=gate.home)
    assert "overlaps training rows: 300 of 300" in evaluated.stdout  # in the report's titles
    warned = " ".join((evaluated.stdout + evaluated.stderr).split())  # on stderr, or wrapped
    assert "WARNING" in warned and "not held-out figures" in warned
    report = json.loads(out.read_text())
    assert report["overlaps_training_rows"] == 300
    assert report["training_overlap"] == "overlaps training rows: 300 of 300"
    held_out = run_cli("evaluate", gate.candidate, "--data", str(gate.files["held_out"]), home=gate.home)
    assert "overlaps training rows: 0 of" in held_out.stdout and "WARNING" not in held_out.stdout + held_out.stderr


# -- the other kinds' identities ----------------------------------------------------------------

def test_a_real_training_file_is_recorded_row_by_row_for_false_marketing(tmp_path) -> None:
    from kinds.false_marketing.pipeline import load_training_data
    from kinds.false_marketing.training import segment_row_keys

    generated, real = tmp_path / "generated.csv", tmp_path / "rooms.csv"
    pd.DataFrame({"text": [f"这款面霜第{i}次回购" for i in range(40)], "labels": [""] * 40}).to_csv(generated, index=False)
    pd.DataFrame({"text": [f"家人们今天{i}号链接 最后一波" for i in range(20)], "labels": ["false_scarcity"] * 20,
                  "room": ["r1"] * 10 + ["r2"] * 10}).to_csv(real, index=False)
    data = load_training_data([generated], [real])
    training = training_row_set(text_keys(data.texts))  # what train_and_register records
    assert rows_in(row_hashes(segment_row_keys(real)), training).all()  # the 20-row --real file
    respaced = tmp_path / "respaced.csv"
    pd.DataFrame({"text": [f"家人们今天{i}号链接\u3000\u3000最后一波 " for i in range(5)]}).to_csv(respaced, index=False)
    assert rows_in(row_hashes(segment_row_keys(respaced)), training).all()


def test_merchant_risk_records_its_merchants_by_id(tmp_path, isolated_home) -> None:
    from kinds.merchant_risk.generator import MerchantGenerationConfig, generate_merchants
    from kinds.merchant_risk.pipeline import (
        MerchantRiskConfig,
        MerchantRiskTrainer,
        load_merchant_table,
    )
    from kinds.merchant_risk.training import merchant_row_keys
    from registry.store import ModelRegistry

    merchants, links = generate_merchants(MerchantGenerationConfig(n=400, seed=4))
    data, link_file = tmp_path / "merchants.parquet", tmp_path / "links.parquet"
    merchants.to_parquet(data, index=False)
    links.to_parquet(link_file, index=False)
    registry = ModelRegistry()
    config = MerchantRiskConfig(bootstrap_samples=0, ensemble_size=1, num_boost_round=30)
    result = MerchantRiskTrainer(config, registry).fit(load_merchant_table(data, link_file))
    bundle = registry.load(result.manifest.tag)
    training = read_training_rows(bundle.path, bundle.manifest.files)
    assert training is not None and len(training) == 400
    re_export = merchants.sample(50, random_state=1).assign(  # refreshed aggregates, ids as typed elsewhere
        merchant_id=lambda f: f.merchant_id.str.lower() + " ", orders_30d=lambda f: f.orders_30d + 7)
    subset = tmp_path / "re_export.csv"
    re_export.to_csv(subset, index=False)
    assert rows_in(row_hashes(merchant_row_keys(subset)), training).all()
    other = tmp_path / "other.parquet"
    generate_merchants(MerchantGenerationConfig(n=100, seed=5))[0].to_parquet(other, index=False)
    assert not rows_in(row_hashes(merchant_row_keys(other)), training).any()  # another seed, other merchants


def test_a_random_split_row_that_a_real_file_holds_is_left_out_and_said(tmp_path) -> None:
    # The same rows given to --data and --real trained every fold that held their rooms out:
    # the headline F1 rose from 0.54 to 0.88 with no warning.
    import json

    from kinds.false_marketing.data import load_training_data

    rows = [{"text": f"第{i}句话 家人们全网最低价" if i % 2 else f"第{i}句话 今天天气不错", "labels": "absolute_claim" if i % 2
             else "", "room": f"r{i % 4}"} for i in range(40)]
    real = tmp_path / "real.jsonl"
    real.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:20]) + "\n", encoding="utf-8")
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"text": r["text"] + (" " if i == 0 else ""), "labels": r["labels"]},
                                         ensure_ascii=False) for i, r in enumerate(rows)) + "\n", encoding="utf-8")
    said: list[str] = []
    loaded = load_training_data([data], [real], warn=said.append)
    assert len(loaded.texts) == 40 and int(loaded.real.sum()) == 20  # 20 real rows, 20 random-split rows kept
    assert len(said) == 1 and "20 rows whose text a --real file holds" in said[0]


def test_a_file_given_as_both_data_and_real_is_refused_in_a_sentence(tmp_path) -> None:
    # Every --data row dropped as held out left nothing to split: a numpy traceback.
    from kinds.false_marketing.data import load_training_data
    from training.data.loaders import DataValidationError

    real = tmp_path / "real.jsonl"
    real.write_text('{"text": "家人们全网最低价", "labels": "absolute_claim", "room": "r1"}\n'
                    '{"text": "今天天气不错", "labels": "", "room": "r2"}\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match="every --data row is also in a --real file"):
        load_training_data([real], [real])
