"""A fourth model kind, defined in the test tree only (``tests/fourth_kind``) and registered in
the kinds table through ``SHOPGUARD_KINDS``, goes the whole way with no edit to any shared
file: trained, registered, promoted, served over HTTP, batch-scored, evaluated and carded."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from kinds import PLUGINS_ENV, plugin_kinds
from tests.conftest import REPO, run_cli
from tests.fourth_kind.kind import REVIEW_SPAM
from tests.fourth_kind.training import generate_reviews
from tests.integration.server import running_server

pytestmark = pytest.mark.integration
PLUGIN = "tests.fourth_kind.kind:REVIEW_SPAM"


def test_the_plugin_joins_the_table() -> None:
    assert plugin_kinds(PLUGIN) == [REVIEW_SPAM]


def test_a_fourth_kind_trains_serves_batches_evaluates_and_cards(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(PLUGINS_ENV, PLUGIN)  # every CLI and server below reads it
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # where they import the plug-in from (an installed package's job)
    home = tmp_path / "home"
    data = tmp_path / "reviews.csv"
    generate_reviews(900, seed=1).to_csv(data, index=False)
    # The entry point a user's shell runs, in a fresh process reading the plug-in (the other
    # commands run in the session's CLI process for this plug-in: tests/cli_worker.py).
    trained = run_cli("train", "review-spam", "--data", str(data), home=home, process=True).stdout
    assert "registered review-spam:" in trained
    run_cli("models", "promote", "review-spam:candidate", "--reason", "fourth kind", home=home)
    listed = run_cli("models", "list", "review-spam", home=home).stdout
    assert "production" in listed
    token = run_cli("tokens", "create", "--name", "t", "--scopes", "score,feedback,read", home=home).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    reviews = [{"review_id": "a", "text": "cheap followers click the link winner promo"},
               {"review_id": "b", "text": "fits well soft colour arrived quickly"}]
    with running_server(home) as base:
        ready = httpx.get(f"{base}/readyz", timeout=10).json()
        assert ready["models"]["review-spam"]["loaded"] is True
        answer = httpx.post(f"{base}{REVIEW_SPAM.route}", json={"records": reviews}, headers=headers,
                            timeout=60).json()
        repeated = httpx.post(f"{base}{REVIEW_SPAM.route}", json={"records": [reviews[0], reviews[0]]},
                              headers=headers, timeout=60)
        feedback = httpx.post(f"{base}/v1/feedback", headers=headers, timeout=60, json={
            "entity_id": "a", "model": "review-spam", "label": "spam"})
    results = {r["review_id"]: r for r in answer["results"]}
    assert results["a"]["decision"] == "block" and results["b"]["decision"] == "allow"
    assert results["a"]["reasons"][0]["code"] == "spam_word"
    assert repeated.status_code == 400 and repeated.json()["detail"][0]["loc"] == ["records", 0, "review_id"]
    assert feedback.status_code == 200 and feedback.json()["entity_type"] == "review"

    pd.DataFrame(reviews).to_parquet(tmp_path / "reviews.parquet", index=False)
    run_cli("batch", "score", "review-spam", "--input", str(tmp_path / "reviews.parquet"),
            "--output", str(tmp_path / "out"), home=home)
    batch = pd.read_parquet(tmp_path / "out" / "reviews.parquet").set_index("id")
    assert [(batch.loc[i, "decision"], batch.loc[i, "score"]) for i in "ab"] == \
        [(results[i]["decision"], results[i]["score"]) for i in "ab"]

    evaluated = tmp_path / "evaluate.json"
    run_cli("evaluate", "review-spam", "--data", str(data), "--out", str(evaluated), home=home)
    checks = {c["key"]: c for c in json.loads(evaluated.read_text())["decisions"]["checks"]}
    assert checks["positives_caught"]["value"] > 0.9 and checks["clean_flagged"]["value"] < 0.1

    card = run_cli("models", "card", "review-spam", home=home).stdout
    assert "a test-tree kind" in card and "Registry history" in card
