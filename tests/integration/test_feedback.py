"""Reviewer feedback on a real server, exported by the CLI into files ``shopguard train``
accepts, and a retrain on them: the analysts' loop."""

from __future__ import annotations

import json
import shutil

import httpx
import pandas as pd
import pytest

from common.errors import ERROR_CODES
from kinds.false_marketing.pipeline import load_marketing_file
from registry.store import ModelRegistry
from tests.conftest import FAST_LISTING_CONFIG, point_at_home, run_cli
from tests.integration.server import api_post, error_detail

pytestmark = pytest.mark.integration

LISTING_FIELDS = ("listing_id", "merchant_id", "title", "description", "category", "price", "list_price",
                  "image_count", "sales", "rating", "review_count")


def _listings(listing_file, n: int) -> pd.DataFrame:
    return pd.read_parquet(listing_file).sample(n, random_state=11)


def _feedback(server: str, **body) -> httpx.Response:
    return api_post(f"{server}/v1/feedback", json=body, timeout=30)


def test_feedback_is_exported_as_a_training_file_and_retrained_on(server, trained_home, listing_file,
                                                                  tmp_path, monkeypatch) -> None:
    chosen = _listings(listing_file, 40)
    records = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if pd.notna(v)}
               for row in chosen[list(LISTING_FIELDS)].to_dict("records")]
    scored = api_post(f"{server}/v1/listings/score", json={"listings": records}, timeout=60).json()
    truth = dict(zip(chosen["listing_id"], chosen["is_inferior"], strict=True))
    for k, result in enumerate(scored["results"]):
        label = "inferior" if truth[result["listing_id"]] else "ok"
        body = {"entity_id": result["listing_id"], "entity_type": "listing", "label": label, "note": "checked"}
        if k % 2:
            body["request_id"] = scored["request_id"]
        response = _feedback(server, **body)
        assert response.status_code == 200, response.text
        stored = response.json()
        assert stored["request_id"] == scored["request_id"] and stored["model"] == result["model"]

    home = tmp_path / "home"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    out = tmp_path / "retrain.parquet"
    wrong = tmp_path / "merchants.parquet"  # another model's training file: was merged, then failed to train
    pd.DataFrame({"merchant_id": ["M1"], "is_suspicious": [1]}).to_parquet(wrong)
    refused = run_cli("data", "export-feedback", "listing-quality", "--out", str(out), "--base", str(wrong), home=home,
                      check=False)
    assert refused.returncode == 2 and "no column is_inferior, listing_id" in refused.stderr and not out.exists()
    run_cli("data", "export-feedback", "listing-quality", "--out", str(out), "--base", str(listing_file), home=home)
    exported = pd.read_parquet(out)
    base = pd.read_parquet(listing_file)
    # Other tests on the shared server may have sent listing feedback too (ids outside the base).
    others = set(exported["listing_id"]) - set(base["listing_id"])
    assert len(exported) == len(base) + len(others) and exported["listing_id"].is_unique
    from_feedback = exported.dropna(subset=["feedback_id"]).set_index("listing_id").drop(index=list(others))
    assert len(from_feedback) == 40
    assert all(from_feedback.loc[i, "is_inferior"] == truth[i] for i in truth)
    assert (from_feedback["feedback_reviewer"] == "test-reviewer").all()  # the token's name

    config = tmp_path / "config.json"
    config.write_text(json.dumps(FAST_LISTING_CONFIG))
    printed = run_cli("train", "listing-quality", "--data", str(out), "--config", str(config), "--threads", "1",
                      home=home).stdout
    assert "registered listing-quality:" in printed
    shown = run_cli("models", "show", "listing-quality:candidate", home=home).stdout
    assert "retrain.parquet" in shown
    point_at_home(monkeypatch, home)
    assert ModelRegistry().load("listing-quality:candidate").manifest.lineage.parameters["num_threads"] == 1


def test_stream_feedback_labels_segments_for_the_text_model(server, trained_home, tmp_path) -> None:
    segments = [{"text": t, "start_ms": 4000 * i, "end_ms": 4000 * (i + 1)}
                for i, t in enumerate(("大家好欢迎来到直播间", "原价999今天只要99 全网最低", "这款杯子是不锈钢的"))]
    scored = api_post(f"{server}/v1/streams/score", json={"stream_id": "S-fb", "segments": segments},
                        timeout=60).json()
    assert _feedback(server, entity_id="S-fb", entity_type="stream", label="ok").status_code == 200
    labelled = _feedback(server, entity_id="S-fb", model="false-marketing", label="price_fraud | absolute_claim",
                         segment_index=1, request_id=scored["request_id"])
    assert labelled.status_code == 200, labelled.text
    assert labelled.json()["label"] == "absolute_claim|price_fraud"

    out = tmp_path / "segments.parquet"
    run_cli("data", "export-feedback", "false-marketing", "--out", str(out), home=trained_home)
    rows = pd.read_parquet(out).query("stream_id == 's-fb'").set_index("segment_index")  # logged normalized
    assert rows.loc[1, "labels"] == "absolute_claim|price_fraud"
    assert rows.loc[0, "labels"] == "" and rows.loc[2, "labels"] == ""
    data = load_marketing_file(out)
    assert len(data.texts) == len(pd.read_parquet(out))
    row = data.texts.index(segments[1]["text"])
    assert data.labels[row].sum() == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"entity_id": "never-scored", "label": "ok"}, 404, "entity_id"),
        ({"entity_id": "never-scored\ufe0f", "label": "ok"}, 404, "entity_id"),  # looked up, not refused
        ({"entity_id": "S-fb-bad", "label": "ok", "request_id": "0" * 32}, 404, "request_id"),
        ({"entity_id": "S-fb-bad", "label": "fake_news", "segment_index": 0}, 422, "label"),
        ({"entity_id": "S-fb-bad", "label": "counterfeit"}, 422, "segment_index"),
        ({"entity_id": "S-fb-bad", "label": "ok", "segment_index": 7}, 422, "segment_index"),
        ({"entity_id": "S-fb-bad", "label": "ok", "segment_index": -1}, 400, "segment_index"),
    ],
    ids=["unknown-entity", "unknown-entity-with-a-variation-selector", "wrong-request", "unknown-category", "no-segment", "segment-out-of-range",
         "negative-segment"],
)
def test_bad_feedback_is_refused_naming_the_field(server, body, status, field) -> None:
    segment = {"text": "欢迎来到直播间", "start_ms": 0, "end_ms": 1000}
    scored = api_post(f"{server}/v1/streams/score", json={"stream_id": "S-fb-bad", "segments": [segment]},
                        timeout=60)
    assert scored.status_code == 200
    response = _feedback(server, entity_type="stream", **body)
    assert [field] in [d["loc"] for d in error_detail(response, status)]
    assert response.json()["error"] == ERROR_CODES[status]  # a 422 said invalid_input (the capper's code)


def test_a_listing_label_must_be_inferior_or_ok(server) -> None:
    listing = {"listing_id": "L-fb-label", "title": "保温杯", "category": "home", "price": 30.0}
    assert api_post(f"{server}/v1/listings/score", json={"listings": [listing]}, timeout=30).status_code == 200
    response = _feedback(server, entity_id="L-fb-label", entity_type="listing", label="suspicious")
    assert error_detail(response, 422)[0]["loc"] == ["label"]
