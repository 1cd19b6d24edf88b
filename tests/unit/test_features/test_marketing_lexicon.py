import pytest

from features.marketing import MARKETING_CATEGORIES, RULES, lexicon_scores, match_lexicon


@pytest.mark.parametrize(
    ("text", "category", "rule_id"),
    [
        ("家人们这个是全网最低价", "absolute_claim", "ABS-001"),
        ("我们是行业第一品牌", "absolute_claim", "ABS-002"),
        ("这个能治疗失眠", "efficacy_claim", "EFF-001"),
        ("吃了降血某压", "efficacy_claim", "EFF-002"),
        ("无效退款的", "guarantee_claim", "GUA-001"),
        ("七天见效", "guarantee_claim", "GUA-002"),
        ("原价九百九十九今天只要九十九", "price_fraud", "PRI-001"),
        ("最后三单了", "false_scarcity", "SCA-001"),
        ("高 仿 包包", "counterfeit", "CNT-001"),
        ("加薇信私聊", "off_platform", "OFF-001"),
        ("央视推荐过", "fake_endorsement", "END-002"),
    ],
)
def test_rules_match_claims_and_their_evasions(text: str, category: str, rule_id: str) -> None:
    matches = match_lexicon(text)
    assert any(m.category == category and m.rule_id == rule_id for m in matches), matches


@pytest.mark.parametrize(
    "text",
    ["第一次来直播间的宝宝", "最近天气冷了", "最后一个问题我回答一下", "不满意可以按原价退款", "最好先看一下尺码",
     "第一个颜色是黑色", "价格以下单页面为准"],
)
def test_hard_negatives_do_not_match(text: str) -> None:
    assert match_lexicon(text) == []


def test_spans_point_at_the_original_characters() -> None:
    text = "宝宝们 加 薇 信 私聊"
    [match] = [m for m in match_lexicon(text) if m.rule_id == "OFF-001"]
    assert text[match.start:match.end] == match.text == "加 薇 信"


def test_rule_ids_are_unique_and_categories_known() -> None:
    assert len({r.rule_id for r in RULES}) == len(RULES)
    assert {r.category for r in RULES} == set(MARKETING_CATEGORIES)


def test_lexicon_scores_distinguish_block_and_review_rules() -> None:
    scores = lexicon_scores(match_lexicon("高仿的，全网最低"))
    assert scores["counterfeit"] == 1.0
    assert scores["absolute_claim"] == 0.5
    assert scores["off_platform"] == 0.0


def test_spoken_efficacy_guarantees_with_refunds_block_but_ordinary_refunds_do_not() -> None:
    for text in ("这个面霜用了斑去不掉全额退款", "吃完没效果全额退", "没效果的话我给你退钱"):
        assert any(m.rule_id == "GUA-004" and m.severity == "block" for m in match_lexicon(text)), text
    for text in ("七天无理由退款", "不满意可以退款", "质量问题包退", "洗了不掉色包退"):
        assert not any(m.category == "guarantee_claim" for m in match_lexicon(text)), text
