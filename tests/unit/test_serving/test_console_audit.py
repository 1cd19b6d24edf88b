"""The console's audit side says what it means (Starlette's test client over a real SQLite
home): the version page leads with the real held-out figures and labels the synthetic
ones, a threshold above 1 reads "the model alone never blocks", the review charts count
items, and verdicts can be exported from the audit page (``shopguard models show`` says
the threshold in words too)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from common.decisions import Thresholds
from common.settings import load_settings
from database.engine import make_engine
from registry.bundle import FeatureSetRef, Lineage, Manifest
from registry.cards import CardSection, CardTable, ModelCard
from registry.metrics import (
    AtThreshold,
    BinaryMetrics,
    ModelMetrics,
    RealCheck,
    RealWorldChecks,
)
from serving.auth import TokenStore
from serving.decision_log import decision_log_table
from serving.feedback import feedback_table
from tests.conftest import run_cli
from tests.unit.test_serving.test_verdict_export import FORMULA, store_verdicts


@pytest.fixture()
def console(isolated_home):
    """A signed-out client of the console at /console, its engine and the tokens."""
    from serving.console import state as state_module
    from serving.console.app import console_app

    state_module.state.cache_clear()
    engine = make_engine(load_settings().database_url)
    tokens = TokenStore(engine)
    secrets = {"reader": tokens.create("otto", ("read",), "test"),
               "feedback": tokens.create("fay", ("feedback",), "test")}
    client = TestClient(Starlette(routes=[Mount("/console", console_app)]), base_url="http://testserver")
    yield client, engine, secrets
    state_module.state.cache_clear()


def _sign_in(client: TestClient, token: str) -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/signin").text).group(1)
    assert client.post("/console/signin", data={"csrf": csrf, "token": token, "next": "/console/audit"},
                       follow_redirects=False).status_code == 303


def _register(tmp_path) -> str:
    """A listing-quality version that never blocks on its own, measured on real and synthetic rows."""
    from registry.store import ModelRegistry

    at = AtThreshold(threshold=0.5, precision=0.9, recall=0.5, f1=0.6, flagged=10)
    real = RealWorldChecks(available=True, note="held-out part of /work/shared/data/real/rooms.jsonl", checks=[
        RealCheck(key="binary_f1", description="binary F1 on real held-out rooms", metric="f1", rows=1200,
                  value=0.634, low=0.61, high=0.66, target=0.8, direction="at_least")])
    metrics = ModelMetrics(test=BinaryMetrics(rows=100, positives=20, roc_auc=0.99, pr_auc=0.933, block=at,
                                              review=at), real_heldout=real)
    manifest = Manifest(model_name="listing-quality", task="test", label_map={"1": "inferior"},
                        feature_set=FeatureSetRef(name="fs", version=1, features=["a"]),
                        thresholds={"default": Thresholds(block=1.01, review=0.2)}, metrics=metrics,
                        lineage=Lineage(training_files=[], git_commit=None, parameters={}, library_versions={},
                                        seed=0))
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "model.txt").write_text("weights")
    card = ModelCard(model_name="listing-quality", version="", sections=[
        CardSection(key="model_details", title="Model details", bullets=["labels: {'0': 'ok', '1': 'inferior'}"]),
        CardSection(key="thresholds", title="Thresholds", tables=[CardTable(
            columns=["decision", "threshold"], rows=[["block", 1.01], ["review", 0.2]])])])
    (staging / "card.json").write_text(card.model_dump_json())
    return ModelRegistry().register(staging, manifest).version


def test_the_version_page_leads_with_real_held_out_figures(console, tmp_path, isolated_home) -> None:
    client, _, secrets = console
    version = _register(tmp_path)
    _sign_in(client, secrets["reader"])
    page = client.get(f"/console/models/listing-quality/{version}").text
    real, synthetic = page.index("binary F1 on real held-out rooms"), page.index("<em>synthetic test split</em>")
    assert real < synthetic < page.index("Alias history")  # the real figure first, the synthetic one labelled
    assert re.search(r"<strong>0\.6340</strong>.*≥ 0\.8.*NO", page, re.S)
    assert "0.9330" in page and "/work/shared" not in page  # the synthetic PR-AUC beside it; no machine path
    assert "block: the model alone never blocks (threshold 1.0100 &gt; 1)" in page and "block ≥ 1.0100" not in page
    assert "A threshold above 1 is above every score" in page
    card = client.get(f"/console/models/listing-quality/{version}/card").text
    assert "1.0100: the model alone never blocks" in card and "{&#x27;" not in card and "0: ok; 1: inferior" in card
    shown = run_cli("models", "show", f"listing-quality:{version}", home=isolated_home).stdout
    assert "the model alone never blocks" in " ".join(shown.split()) and "block>=1.0100" not in shown
    flat = " ".join(shown.split())
    assert flat.index("real: binary F1") < flat.index("synthetic test") and "target >= 0.8: no" in flat


def _decision(i: int, entity_type: str, decision: str, **inputs: object) -> dict:
    model = {"listing": "listing-quality:v1", "stream": "false-marketing:v1"}[entity_type]
    return {"request_id": f"req{i}", "at": datetime.now(UTC) - timedelta(minutes=10 - i), "entity_type": entity_type,
            "entity_id": f"E{i}", "decision": decision, "score": 0.5, "model": model, "record_id": f"rec{i}",
            "reasons": [], "inputs": inputs}


def test_review_charts_count_items_not_verdict_rows(console) -> None:
    from serving.console import queries, review_stats

    client, engine, secrets = console
    stream = {"segments": [{"text": "a"}, {"text": "b"}], "segment_labels": [["absolute_claim"], ["price_fraud"]]}
    with engine.begin() as conn:
        conn.execute(decision_log_table.insert(), [_decision(1, "stream", "review", **stream),
                                                   _decision(2, "listing", "allow", title="x")])
        verdict = {"entity_type": "stream", "entity_id": "E1", "request_id": "req1", "model": "false-marketing:v1",
                   "reviewer": "rita", "note": ""}
        conn.execute(feedback_table.insert(), [  # one stream verdict stored as two segment rows, then a listing
            {**verdict, "at": datetime.now(UTC), "segment_index": 0, "label": "absolute_claim"},
            {**verdict, "at": datetime.now(UTC), "segment_index": 1, "label": "price_fraud"},
            {**verdict, "at": datetime.now(UTC), "entity_type": "listing", "entity_id": "E2", "request_id": "req2",
             "model": "listing-quality:v1", "segment_index": None, "label": "ok"}])
    rows = queries.reviewed_decisions(engine)
    assert review_stats.reviewer_agreement(rows) == {"rita": review_stats.Agreement(1, 1, 1, 1)}
    assert review_stats.confirmation_by_category(rows) == {"stream: absolute_claim": (1, 1),
                                                           "stream: price_fraud": (1, 1)}
    _sign_in(client, secrets["reader"])
    for chart in ("agreement", "confirmed"):
        answer = client.get(f"/console/charts/{chart}.png")
        assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG"), chart
    audit = client.get("/console/audit").text
    assert "agreement = the verdict is a violation where the model said block, or ok where it said allow" in audit
    assert "sent to review" in audit and 'href="/console/verdicts/export.csv"' in audit


def test_verdicts_export_from_the_console_needs_read_and_a_slot(console) -> None:
    from serving.console.state import state

    client, _, secrets = console
    store_verdicts()
    _sign_in(client, secrets["feedback"])
    assert client.get("/console/verdicts/export.csv").status_code == 403  # the read scope, like decisions
    _sign_in(client, secrets["reader"])
    answer = client.get("/console/verdicts/export.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert 'filename="verdicts-' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 3 and rows[0]["note"] == "'" + FORMULA.replace("|", "\\|")
    lines = client.get("/console/verdicts/export.jsonl?reviewer=otto&since=2026-12-03").text.splitlines()
    assert [json.loads(line)["entity_id"] for line in lines] == ["E3"]
    table = pq.read_table(io.BytesIO(client.get("/console/verdicts/export.parquet").content))
    assert table.column("note").to_pylist()[0] == FORMULA
    assert client.get("/console/verdicts/export.xlsx").status_code == 404
    bad = client.get("/console/verdicts/export.csv?since=yesterday")
    assert bad.status_code == 400 and "<code>since</code>" in bad.text
    assert client.get("/console/verdicts/export.csv?colour=red").status_code == 400
    slots = state().exports
    assert slots.running() == 0  # every finished export gave its slot back
    assert slots.claim("otto") is None and slots.claim("otto") is None
    refused = client.get("/console/verdicts/export.csv")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    slots.release("otto")
    slots.release("otto")
