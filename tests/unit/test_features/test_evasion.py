"""Evasion resolution (features/evasion.py) and its use by the false-marketing runtime."""

from __future__ import annotations

import numpy as np
import pytest

from common.decisions import Thresholds
from features.evasion import find_evasions, resolve_text  # pypinyin: a dependency (pyproject.toml)
from features.marketing import MARKETING_CATEGORIES
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
