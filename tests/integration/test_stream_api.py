"""The stream endpoint on a real ``bentoml serve`` process."""

from __future__ import annotations

import httpx
import pytest

from features.marketing import MARKETING_CATEGORIES

pytestmark = pytest.mark.integration



def _segments(*texts: str, step_ms: int = 4000) -> list[dict]:
    return [{"text": t, "start_ms": i * step_ms, "end_ms": (i + 1) * step_ms} for i, t in enumerate(texts)]


def test_a_stream_with_a_blocking_claim_is_blocked_with_spans(server) -> None:
    texts = ("欢迎宝宝们来到直播间", "这款面霜的质地非常细腻", "家人们 加 薇 信 私聊下单 便宜")
    response = httpx.post(f"{server}/v1/streams/score", timeout=60,
                          json={"stream_id": "S1", "merchant_id": "M-x", "segments": _segments(*texts)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stream_id"] == "S1" and body["model"].startswith("false-marketing:v")
    assert body["decision"] == "block"
    assert body["reasons"][0]["code"] == "blocking_segment"
    third = body["segments"][2]
    assert third["decision"] == "block" and "off_platform" in third["labels"]
    assert set(third["categories"]) == set(MARKETING_CATEGORIES)
    span = next(s for s in third["spans"] if s["source"] == "lexicon" and s["category"] == "off_platform")
    assert texts[2][span["start"]:span["end"]] == span["text"]
    assert [s["index"] for s in body["segments"]] == [0, 1, 2]


def test_review_segments_close_together_block_the_stream(server) -> None:
    doubtful = ("这是全网最低价", "跳楼价了家人们", "我们是行业第一品牌")
    close = httpx.post(f"{server}/v1/streams/score", timeout=60,
                       json={"stream_id": "S2", "segments": _segments(*doubtful, step_ms=5000)}).json()
    assert all(s["decision"] == "review" for s in close["segments"]), close
    assert close["decision"] == "block" and close["reasons"][0]["code"] == "review_burst"
    apart = httpx.post(f"{server}/v1/streams/score", timeout=60,
                       json={"stream_id": "S3", "segments": _segments(*doubtful, step_ms=120_000)}).json()
    assert apart["decision"] == "review"


GOOD = {"stream_id": "S", "segments": [{"text": "欢迎", "start_ms": 0, "end_ms": 1000}]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"segments": GOOD["segments"]}, ["stream_id"]),
        ({**GOOD, "segments": []}, ["segments"]),
        ({**GOOD, "segments": [{"text": "好" * 2001, "start_ms": 0, "end_ms": 1}]}, ["segments", 0, "text"]),
        ({**GOOD, "segments": [{"text": "好", "start_ms": -1, "end_ms": 1}]}, ["segments", 0, "start_ms"]),
        ({**GOOD, "segments": [{"text": "好", "start_ms": 5, "end_ms": 1}]}, ["segments", 0]),
        ({**GOOD, "segments": [{"text": 3, "start_ms": 0, "end_ms": 1}]}, ["segments", 0, "text"]),
        ({**GOOD, "segments": GOOD["segments"] * 1001}, ["segments"]),
    ],
    ids=["missing-stream-id", "empty", "too-long", "negative-time", "end-before-start", "mistyped", "oversize"],
)
def test_bad_stream_input_is_a_4xx_naming_the_field(server, body, field) -> None:
    response = httpx.post(f"{server}/v1/streams/score", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert field in [d["loc"] for d in response.json()["detail"]]
