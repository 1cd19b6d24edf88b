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
