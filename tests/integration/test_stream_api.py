"""The stream endpoint on a real ``bentoml serve`` process."""

from __future__ import annotations

import time

import pytest

from features.marketing import MARKETING_CATEGORIES
from tests.integration.server import api_post, error_detail

pytestmark = pytest.mark.integration



def _segments(*texts: str, step_ms: int = 4000) -> list[dict]:
    return [{"text": t, "start_ms": i * step_ms, "end_ms": (i + 1) * step_ms} for i, t in enumerate(texts)]


def test_a_stream_with_a_blocking_claim_is_blocked_with_spans(server) -> None:
    texts = ("欢迎宝宝们来到直播间", "这款面霜的质地非常细腻", "家人们 加 薇 信 私聊下单 便宜")
    response = api_post(f"{server}/v1/streams/score", timeout=60,
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


# Each matches a ``review`` lexicon rule, so each segment is at least at review; the tiny
# test model raises many of them to block (its block and review thresholds often coincide),
# so the test scores a varied pool first and builds its streams from three left at review.
DOUBTFUL = ("这是全网最低价", "跳楼价了家人们", "我们是行业第一品牌", "马上下架了宝宝们", "专家推荐的好东西",
            "明星同款面霜", "出厂价给到大家", "库存只剩最后几件", "外贸原单质量很好", "立竿见影的效果",
            "咱们家的衣服面料是纯棉的 外贸原单 尺码齐全", "好的 下一个问题 这个锅是不粘的 立竿见影",
            "这款包包是大牌同厂的 颜色有三个", "宝宝们这双鞋是尾单 码数不全 看好再拍",
            "欢迎新来的宝宝 这个杯子是专柜同款 容量五百毫升", "家人们这个是原厂原标的 点点关注",
            "今天讲完这个就下播了 手慢无 明天见", "这个颜色很显白 网红都在用 链接在三号")


def _score(server: str, stream_id: str, segments: list[dict]) -> dict:
    response = api_post(f"{server}/v1/streams/score", timeout=60,
                          json={"stream_id": stream_id, "segments": segments})
    assert response.status_code == 200, response.text
    return response.json()


def test_review_segments_close_together_block_the_stream(server) -> None:
    singles = _score(server, "S2", _segments(*DOUBTFUL, step_ms=600_000))["segments"]
    assert all(s["decision"] in ("review", "block") for s in singles)
    at_review = [DOUBTFUL[s["index"]] for s in singles if s["decision"] == "review"][:3]
    assert len(at_review) == 3, singles
    close = _score(server, "S3", _segments(*at_review, step_ms=5000))
    assert [s["decision"] for s in close["segments"]] == ["review"] * 3
    assert close["decision"] == "block" and close["reasons"][0]["code"] == "review_burst"
    apart = _score(server, "S4", _segments(*at_review, step_ms=120_000))
    assert apart["decision"] == "review" and apart["reasons"][0]["code"] == "review_segment"


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
        ({**GOOD, "segments": [{"text": "\ufdfa" * 200, "start_ms": 0, "end_ms": 1}]}, ["segments", 0, "text"]),
        ({**GOOD, "segments": [{"text": " \u200b ", "start_ms": 0, "end_ms": 1}]}, ["segments", 0, "text"]),
    ],
    ids=["missing-stream-id", "empty", "too-long", "negative-time", "end-before-start", "mistyped", "oversize",
         "nfkc-expanding", "blank"],
)
def test_bad_stream_input_is_a_4xx_naming_the_field(server, body, field) -> None:
    response = api_post(f"{server}/v1/streams/score", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert field in [d["loc"] for d in response.json()["detail"]]


def test_a_stream_over_the_character_budget_is_refused_up_front(server) -> None:
    segments = [{"text": "今天只要九十九加微信" * 200, "start_ms": i, "end_ms": i + 1} for i in range(60)]
    started = time.monotonic()
    response = api_post(f"{server}/v1/streams/score", json={"stream_id": "S-big", "segments": segments}, timeout=60)
    assert time.monotonic() - started < 5
    detail = error_detail(response, 413)
    assert detail[0]["loc"] == ["segments"] and "100,000" in detail[0]["msg"]
    assert response.json()["error"] == "too_large"


def test_model_spans_are_budgeted_and_the_answer_says_so(server) -> None:
    claim = "这个产品吃了以后三天就能把高血压降下来 医院都不用去了 "
    segments = [{"text": (claim * 20)[:1600], "start_ms": i * 1000, "end_ms": i * 1000 + 900} for i in range(50)]
    started = time.monotonic()
    response = api_post(f"{server}/v1/streams/score", json={"stream_id": "S-spans", "segments": segments}, timeout=60)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    flagged = [s for s in body["segments"] if s["decision"] != "allow"]
    assert flagged and elapsed < 30
    assert body["spans_cut_short"] == any(not s["spans_complete"] for s in body["segments"])
