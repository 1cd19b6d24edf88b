"""Auditors' read-only model endpoints on a real ``bentoml serve`` process."""

from __future__ import annotations

import pytest

from tests.integration.server import api_get, error_detail

pytestmark = pytest.mark.integration



def test_models_lists_production_versions_thresholds_and_metrics(server) -> None:
    body = api_get(f"{server}/v1/models", timeout=30).json()
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"listing-quality", "false-marketing", "merchant-risk"}
    listing = by_name["listing-quality"]
    assert listing["production"].startswith("v")
    assert listing["thresholds"]["default"]["block"] >= listing["thresholds"]["default"]["review"]
    assert 0.5 < listing["metrics"]["test_roc_auc"] <= 1.0
    assert "test_macro_pr_auc" in by_name["false-marketing"]["metrics"]


@pytest.mark.parametrize(("accept", "query", "needle", "media"), [
    ("text/html", "", "<html", "text/html"),
    ("text/markdown", "", "# Model card: merchant-risk:", "text/markdown"),
    ("*/*", "?format=json", '"model_name": "merchant-risk"', "application/json"),
])
def test_card_by_accept_header_or_format(server, accept, query, needle, media) -> None:
    response = api_get(f"{server}/v1/models/merchant-risk/card{query}", headers={"accept": accept}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media)
    assert needle in response.text


def test_card_errors_name_the_field(server) -> None:
    unknown = api_get(f"{server}/v1/models/no-such-model/card", timeout=30)
    assert error_detail(unknown, 404)[0]["loc"] == ["name"] and unknown.json()["field"] == "name"
    bad_format = api_get(f"{server}/v1/models/listing-quality/card?format=pdf", timeout=30)
    assert error_detail(bad_format, 400)[0]["loc"] == ["format"] and bad_format.json()["field"] == "format"
    bad_version = api_get(f"{server}/v1/models/listing-quality/card?version=v0", timeout=30)
    assert error_detail(bad_version, 404)[0]["loc"] == ["version"] and bad_version.json()["field"] == "version"
    # A parameter the route does not take, or one given twice, is named (was silently ignored / the last kept).
    for query, field in (("?foo=1", "foo"), ("?format=md&format=html", "format")):
        refused = api_get(f"{server}/v1/models/listing-quality/card{query}", timeout=30)
        assert error_detail(refused, 400)[0]["loc"] == [field], query
    assert error_detail(api_get(f"{server}/v1/models?x=1", timeout=30), 400)[0]["loc"] == ["x"]
