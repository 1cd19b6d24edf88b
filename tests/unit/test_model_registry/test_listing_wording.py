import pytest

from features.reasons import Reason
from kinds.listing_quality.runtime import wording_matches
from policy.calls import wording_rule


def _columns(titles: list[str], descriptions: list[str | None] | None = None) -> dict:
    return {"title": titles, "description": descriptions or [None] * len(titles)}


def test_replica_wording_and_contact_handles_are_found_in_titles_and_descriptions() -> None:
    matches = wording_matches(_columns(
        ["LV家新款老花手袋 原版皮", "加厚珊瑚绒毛毯 冬季午睡盖毯", "秋冬卫衣", "日单原单 卫衣", "翡翠吊坠a货"],
        [None, None, "质量好 加微信 lily2024 拿货", "", "天然翡翠"]))
    assert {m.category for m in matches[0]} == {"counterfeit"}
    assert matches[1] == [] and matches[4] == []  # an ordinary title; jade "A货" is a grade, not a copy
    assert {m.category for m in matches[2]} == {"off_platform"}
    assert [m.text for m in matches[3]] == ["原单"]


def test_the_rule_raises_to_review_and_names_the_words() -> None:
    [matches] = wording_matches(_columns(["香奈儿 一比一 口红 高仿"]))
    decision, reasons = wording_rule("allow", [], matches)
    assert decision == "review"
    assert reasons[0].code == "counterfeit_wording" and "一比一" in reasons[0].detail and "高仿" in reasons[0].detail
    kept = Reason("implausible_discount", "x")
    assert wording_rule("block", [kept], matches) == ("block", [reasons[0], kept])  # only raises


def test_replica_wording_with_a_brand_at_an_implausible_price_blocks_and_says_why() -> None:
    [matches] = wording_matches(_columns(["香奈儿 一比一 口红"]))
    decision, reasons = wording_rule("allow", [], matches, "brand 香奈儿 at 29.9, 3% of its list price")
    assert decision == "block"
    assert reasons[0].code == "replica_brand_price" and "香奈儿" in reasons[0].detail
    assert reasons[1].code == "counterfeit_wording"
    [handle] = wording_matches(_columns(["加微信 lily2024 拿货"]))  # a contact handle is not replica wording
    assert wording_rule("allow", [], handle, "brand 香奈儿 at 29.9, 3% of its list price")[0] == "review"


@pytest.mark.parametrize("text", [
    "纯原版本 细节对比正品 区别市场通货", "原厂皮料 五金 和专柜一模一样", "肉眼看不出区别 可过得物", "驴家老花包 新款",
    "堪比正品的做工 正确鞋型", "完美复刻 还原度99%", "工厂流出 尾货", "正品级品质 私模开发"])
def test_replica_sellers_talk_is_counterfeit_wording(text: str) -> None:
    [matches] = wording_matches(_columns([text]))
    assert any(m.category == "counterfeit" for m in matches), text


@pytest.mark.parametrize("text", [
    "收到平板 感觉像山寨的 分辨率太差", "正品保证 假一赔十 支持专柜验货", "专柜同价 官方正品", "复古风连衣裙 原创设计",
    "驴打滚 传统糕点 新款包装", "一家人的新款睡衣"])
def test_buyers_complaints_and_authenticity_promises_are_not_replica_wording(text: str) -> None:
    [matches] = wording_matches(_columns([text]))
    assert not any(m.category == "counterfeit" for m in matches), (text, [m.text for m in matches])
