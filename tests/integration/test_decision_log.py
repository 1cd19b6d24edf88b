"""The decision log on a real server: records are findable by request id."""

from __future__ import annotations

import json

import pytest

from policy.document import load_policy
from tests.conftest import run_cli
from tests.integration.server import api_post

pytestmark = pytest.mark.integration

LISTING = {"listing_id": "L-log", "merchant_id": "M-log", "title": "加厚保温杯", "category": "home",
           "price": 59.0, "image_count": 4}


def test_a_response_request_id_finds_its_records(server, trained_home, tmp_path) -> None:
    listings = [{**LISTING, "listing_id": f"L-log-{i}"} for i in range(3)]
    body = api_post(f"{server}/v1/listings/score", json={"listings": listings}, timeout=30).json()
    export = tmp_path / "audit.csv"
    for _ in range(20):  # the writer flushes within a fraction of a second
        printed = run_cli("audit", "decisions", "--request-id", body["request_id"], "--out", str(export),
                          home=trained_home).stdout
        if "3 decisions" in printed:
            break
    assert "3 decisions" in printed
    assert body["request_id"] in printed  # in full: what --request-id takes
    import pandas as pd

    frame = pd.read_csv(export)
    assert sorted(frame["entity_id"]) == ["L-log-0", "L-log-1", "L-log-2"]
    assert set(frame["decision"]) <= {"allow", "review", "block"}
    assert frame["model"].str.startswith("listing-quality:v").all()
    inputs = [json.loads(i) for i in frame["inputs"]]  # each row's own listing, as the request sent it
    assert [i["listing_id"] for i in inputs] == list(frame["entity_id"])
    assert all(i["title"] == LISTING["title"] for i in inputs)
    assert frame["at"].str.endswith("+00:00").all() and "reason_codes" in frame.columns
    # Each decision names the policy whose per-call rules applied (auditors could not tell before).
    assert set(frame["policy"]) == {load_policy().version}
    before = run_cli("audit", "decisions", "--request-id", body["request_id"], "--until", "2000-01-01",
                     home=trained_home).stdout
    assert "0 decisions" in before
