"""Evasion resolution (features/evasion.py) and its use by the false-marketing runtime."""

from __future__ import annotations

import numpy as np
import pytest

from common.decisions import Thresholds
from features.evasion import (  # pypinyin: a dependency (pyproject.toml)
    find_evasions,
    masked_evasions,
    resolve_text,
)
from features.marketing import MARKETING_CATEGORIES, RULES
from features.text import normalize_text
from kinds.false_marketing.runtime import FalseMarketingModel


@pytest.mark.parametrize(
    ("text", "resolved", "shown"),
    [
        ("吃了能提高免役力", "吃了能提高免疫力", "免役力"),  # homophone
        ("降血鸭效果好", "降血压效果好", "降血鸭"),  # homophone
        ("这个能冶疗失眠", "这个能治疗失眠", "冶疗"),  # look-alike
        ("降皿压的", "降血压的", "降皿压"),  # look-alike
        ("免某粒", "免疫力", "免某粒"),  # mask + homophone
        ("治x疗关节", "治疗关节", "治x疗"),  # filler letter
        ("减fei必备", "减肥必备", "减fei"),  # Latin pinyin
        ("我们能zhiliao", "我们能治疗", "zhiliao"),  # the whole word in pinyin
        ("治 疗", "治疗", "治 疗"),  # space (features.text)
        ("治*疗", "治疗", "治*疗"),  # symbol (features.text)
        ("治.疗", "治疗", "治.疗"),  # punctuation (features.text)
        ("治❤疗", "治疗", "治❤疗"),  # emoji (features.text)
        ("治療", "治疗", "治療"),  # traditional form (features.text)
    ],
)
def test_each_evasion_resolves_to_the_word_with_offsets_on_the_original(text: str, resolved: str,
                                                                         shown: str) -> None:
    result = resolve_text(text)
    assert result.text == resolved
    word = next(w for w in ("免疫力", "降血压", "治疗", "减肥") if w in resolved)
    start = resolved.index(word)
    original_start, original_end = result.original_span(start, start + len(word))
    assert text[original_start:original_end] == shown


@pytest.mark.parametrize(
    "text",
    ["我这一生都在做这个", "下家再说吧", "胶原蛋白肽一天两粒", "益生菌每天一包", "报名啊来享受国家补贴",
     "真的很好用的宝宝们", "主播马上下拨了", "今天天气不错我们聊聊天", "治疗", "全网最低价"],
)
def test_ordinary_sentences_and_the_words_themselves_are_left_alone(text: str) -> None:
    assert find_evasions(resolve_text(text).text) == []


class _ZeroEncoder:
    """An encoder stub: the model half says nothing, so only the rules decide."""

    model_path = None

    def predict_pieces(self, pieces):  # noqa: ANN001, ANN201
        return np.zeros((len(pieces), len(MARKETING_CATEGORIES)))


def _model(resolve: bool) -> FalseMarketingModel:
    never = Thresholds(block=1.01, review=1.01)
    return FalseMarketingModel(_ZeroEncoder(), dict.fromkeys(MARKETING_CATEGORIES, never),  # type: ignore[arg-type]
                               resolve_evasions=resolve)


def test_a_homophone_evaded_lexicon_phrase_is_flagged_with_its_span_on_the_original() -> None:
    text = "家人们这个能冶疗关节疼"
    [off] = _model(False).analyze([text], spans_from_model=False)
    assert off.decision == "allow"
    [on] = _model(True).analyze([text], spans_from_model=False)
    assert on.decision == "block"
    [span] = [s for s in on.spans if s.source == "lexicon"]
    assert (span.category, span.rule_id) == ("efficacy_claim", "EFF-001")
    assert text[span.start:span.end] == span.text == "冶疗"
    text = "吃了降血鸭很快"
    [on] = _model(True).analyze([text], spans_from_model=False)
    assert on.decision == "block"
    assert [s.text for s in on.spans if s.source == "lexicon"] == ["降血鸭"]


@pytest.mark.parametrize("resolve", [False, True])
def test_a_masked_word_is_reviewed_whether_or_not_evasions_are_resolved(resolve: bool) -> None:
    """Resolution reads 关某节 as 关节 for the model; the masked-word rule still reads the mask."""
    text = "吃了以后关某节不疼了"
    [result] = _model(resolve).analyze([text], spans_from_model=False)
    assert result.decision == "review"
    assert [(s.rule_id, text[s.start:s.end]) for s in result.spans if s.source == "lexicon"] == [("EFF-013", "关某节")]


@pytest.mark.parametrize("text", [
    "国家某部门规定", "我们不加某些添加剂", "某厂家生产的", "起到某作用", "存在某风险", "关节某处酸", "去下某家店看看",
    "虽然没有某果屏幕好", "N年前某县的招待所", "iphone x效果很好", "小米x 效果", "这件有效xxl码", "免疫xx1号",
])
def test_some_a_brand_stand_in_and_latin_x_are_not_masks(text: str) -> None:
    """A mask at a word's edge (某厂家 is not 出厂价), 某 as "some" or a stand-in (某些, 某果) and an
    x that is not between two Chinese characters find no masked word."""
    normalized = normalize_text(text).text
    assert find_evasions(normalized)  # the resolver reads a word there: the mask guard is what refuses it
    assert masked_evasions(normalized) == []


@pytest.mark.parametrize("text", ["能提x免某力的", "吃了关某节x不疼", "降〇高〇仿", "手x无效〇退款"])
def test_resolution_leaves_the_masked_word_rules_reading_the_text_as_said(text: str) -> None:
    """With resolution on the other rules read the resolved text; the masked-word rules give the
    same matches either way (resolving one word frees no overlapping masked window)."""
    masked = {rule.rule_id for rule in RULES if rule.masked_word}

    def masked_spans(resolve: bool) -> list[tuple[str, int, int]]:
        [result] = _model(resolve).analyze([text], spans_from_model=False)
        return [(s.rule_id, s.start, s.end) for s in result.spans if s.rule_id in masked]

    assert masked_spans(False) and masked_spans(True) == masked_spans(False)
