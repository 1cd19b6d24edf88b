"""The merchant endpoint and the merchant rule on a real ``bentoml serve`` process."""

from __future__ import annotations

import pandas as pd
import pytest

from kinds.merchant_risk.features import MERCHANT_BEHAVIOUR_FEATURES
from tests.integration.server import api_post

pytestmark = pytest.mark.integration



def merchant_records(path) -> list[dict]:
    frame = pd.read_parquet(path)
    records = []
    for row in frame[["merchant_id", *MERCHANT_BEHAVIOUR_FEATURES]].to_dict(orient="records"):
        records.append({k: (v if k == "merchant_id" else None if v != v else float(v)) for k, v in row.items()})
    return records


def score_all(server: str, records: list[dict]) -> list[dict]:
    results = []
    for start in range(0, len(records), 1000):
        response = api_post(f"{server}/v1/merchants/score", timeout=60,
                              json={"merchants": records[start:start + 1000]})
        assert response.status_code == 200, response.text
        results += response.json()["results"]
    return results


def test_merchants_are_scored_with_ring_evidence_and_the_rule_raises_listings(server, merchant_files) -> None:
    records = merchant_records(merchant_files[0])
    results = score_all(server, records)
    assert [r["merchant_id"] for r in results] == [r["merchant_id"] for r in records]
    assert all(r["model"].startswith("merchant-risk:v") for r in results)
    blocked = [r for r in results if r["decision"] == "block"]
    assert blocked, "the generated data has rings the model must block"
    codes = {reason["code"] for r in blocked for reason in r["reasons"]}
    assert any(code.startswith("linked") or code.startswith("many_links") for code in codes)

    merchant = blocked[0]
    listing = {"listing_id": "L-rule", "merchant_id": merchant["merchant_id"], "title": "家用保温杯 简约款",
               "description": "这款保温杯做工精细，实物与图片一致，顺丰发货", "category": "home",
               "price": 89.0, "list_price": 99.0, "image_count": 6, "sales": 300, "rating": 4.8,
               "review_count": 90, "negative_review_rate": 0.02, "return_rate": 0.03,
               "complaint_rate": 0.004}
    other = {**listing, "listing_id": "L-control", "merchant_id": "M-unknown"}
    response = api_post(f"{server}/v1/listings/score", json={"listings": [listing, other]}, timeout=30)
    raised, control = response.json()["results"]
    assert control["decision"] == "allow"
    assert raised["decision"] == "review"
    assert raised["reasons"][0]["code"] == "merchant_blocked"
    assert merchant["model"] in raised["reasons"][0]["detail"]


def test_links_in_the_request_are_used(server, merchant_files) -> None:
    records = merchant_records(merchant_files[0])
    target = {**records[0], "merchant_id": "M-new-shop"}
    alone = api_post(f"{server}/v1/merchants/score", json={"merchants": [target]}, timeout=30).json()
    blocked = [r["merchant_id"] for r in score_all(server, records) if r["decision"] == "block"][:5]
    linked = {**target, "links": [{"merchant_id": m, "link_type": "shared_payout_account"} for m in blocked]}
    with_links = api_post(f"{server}/v1/merchants/score", json={"merchants": [linked]}, timeout=30).json()
    assert with_links["results"][0]["score"] > alone["results"][0]["score"]


GOOD = {"merchant_id": "M1", **{f: 0.1 for f in MERCHANT_BEHAVIOUR_FEATURES}}


@pytest.mark.parametrize(
    ("merchants", "field"),
    [
        ([{k: v for k, v in GOOD.items() if k != "refund_rate"}], ["merchants", 0, "refund_rate"]),
        ([{**GOOD, "refund_rate": 1.5}], ["merchants", 0, "refund_rate"]),
        ([{**GOOD, "orders_30d": "many"}], ["merchants", 0, "orders_30d"]),
        ([{**GOOD, "links": [{"merchant_id": "M2", "link_type": "friends"}]}],
         ["merchants", 0, "links", 0, "link_type"]),
        ([], ["merchants"]),
    ],
    ids=["missing", "out-of-range", "mistyped", "bad-link-type", "empty"],
)
def test_bad_merchant_input_is_a_4xx_naming_the_field(server, merchants, field) -> None:
    response = api_post(f"{server}/v1/merchants/score", json={"merchants": merchants}, timeout=30)
    assert response.status_code == 400, response.text
    assert field in [d["loc"] for d in response.json()["detail"]]


def test_a_block_stands_until_a_reviewer_lifts_it(server, merchant_files) -> None:
    records = merchant_records(merchant_files[0])[:3000]
    results = score_all(server, records)
    blocked_id = next(r["merchant_id"] for r in results if r["decision"] == "block")
    clean_id = next(r["merchant_id"] for r in results if r["decision"] == "allow")
    clean_figures = {**next(r for r in records if r["merchant_id"] == clean_id), "merchant_id": blocked_id}
    listing = {"listing_id": "L-standing", "merchant_id": blocked_id, "title": "家用保温杯 简约款",
               "category": "home", "price": 89.0, "list_price": 99.0, "image_count": 6}

    def listing_reasons() -> list[str]:
        response = api_post(f"{server}/v1/listings/score", json={"listings": [listing]}, timeout=30)
        return [reason["code"] for reason in response.json()["results"][0]["reasons"]]

    rescored = api_post(f"{server}/v1/merchants/score", json={"merchants": [clean_figures]}, timeout=30).json()
    assert rescored["results"][0]["decision"] != "block"  # the new score is answered and logged ...
    assert "merchant_blocked" in listing_reasons()  # ... but does not lower the standing block
    lifted = api_post(f"{server}/v1/feedback", timeout=30,
                      json={"entity_id": blocked_id, "entity_type": "merchant", "label": "ok",
                            "note": "checked the shop"})
    assert lifted.status_code == 200, lifted.text
    assert "merchant_blocked" not in listing_reasons()
