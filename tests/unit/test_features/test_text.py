import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.text import (
    CONTACT_VARIANTS,
    FILLERS,
    NORMALIZATION_STEPS,
    NormalizedText,
    normalize_many,
    normalize_text,
    script_of,
)


def test_full_width_letters_and_digits_fold_to_ascii() -> None:
    assert normalize_text("ＶＩＰ１００％有效").text == "vip100%有效"


def test_traditional_characters_become_simplified() -> None:
    assert normalize_text("國家級頂級療效").text == "国家级顶级疗效"


def test_spaces_and_symbols_inside_chinese_words_are_removed() -> None:
    assert normalize_text("全 网-最.低 价").text == "全网最低价"
    assert normalize_text("高★仿♥包").text == "高仿包"


def test_zero_width_characters_are_removed() -> None:
    assert normalize_text("高\u200b仿\u200d品").text == "高仿品"


def test_spaces_between_latin_words_are_kept_once() -> None:
    assert normalize_text("nike   air  max").text == "nike air max"


def test_offsets_point_back_to_original_characters() -> None:
    original = "今天 全 網 最 低！"
    normalized = normalize_text(original)
    start = normalized.text.index("全网最低")
    begin, end = normalized.original_span(start, start + 4)
    assert original[begin:end] == "全 網 最 低"


def test_offsets_survive_full_width_and_decoration() -> None:
    original = "加❤ＶＸ：abc"
    normalized = normalize_text(original)
    assert normalized.text.startswith("加微信:")
    begin, end = normalized.original_span(0, 3)
    assert original[begin:end] == "加❤ＶＸ"


def test_fillers_inside_protected_words_are_removed() -> None:
    assert normalize_text("降血某压").text == "降血压"
    assert normalize_text("治什么疗失眠").text == "治疗失眠"
    assert normalize_text("某些朋友").text == "某些朋友"  # not inside a protected word


def test_aabb_reduplication_collapses() -> None:
    assert normalize_text("全全网网最最低低").text == "全网最低"
    assert normalize_text("好好").text == "好好"  # a single pair is ordinary speech


def test_contact_word_homophones_and_pinyin_map_to_one_spelling() -> None:
    for variant in ("加wei信", "加薇信", "加V信", "加vx", "加威信", "加 微 xin"):
        assert normalize_text(variant).text == "加微信", variant
    assert normalize_text("hello vxyz").text == "hello vxyz"


def test_a_numeral_run_stops_before_a_name_that_begins_with_a_numeral() -> None:
    """百达翡丽 and 万宝龙 are brands, not amounts: 一比一百达翡丽 keeps its 一比一, in both paths."""
    texts = ["一比一百达翡丽", "一万宝龙", "三百达翡丽", "一百块"]
    assert [normalize_text(t).text for t in texts] == ["一比一百达翡丽", "一万宝龙", "三百达翡丽", "100块"]
    assert normalize_many(texts) == [normalize_text(t).text for t in texts]


def test_digits_said_one_by_one_stay_digits() -> None:
    """A year or a code is said digit by digit: 二零零五 is 2005, not 5."""
    texts = ["二零零五年复刻", "九九九", "一千零八"]
    assert [normalize_text(t).text for t in texts] == ["2005年复刻", "999", "1008"]
    assert normalize_many(texts) == [normalize_text(t).text for t in texts]


def test_chinese_numerals_become_digits_only_where_they_count() -> None:
    assert normalize_text("原价九百九十九今天只要九十九").text == "原价999今天只要99"
    assert normalize_text("最后三单").text == "最后3单"
    assert normalize_text("一模一样").text == "一模一样"
    assert normalize_text("两万块").text == "20000块"


def test_offsets_survive_every_step() -> None:
    original = "家人們加 薇 信，原價九百九十九"
    normalized = normalize_text(original)
    start = normalized.text.index("微信")
    begin, end = normalized.original_span(start, start + 2)
    assert original[begin:end] == "薇 信"
    start = normalized.text.index("999")
    begin, end = normalized.original_span(start, start + 3)
    assert original[begin:end] == "九百九十九"


@pytest.mark.parametrize(("text", "script"), [
    ("這款產品真的很好用", "traditional"), ("加wei信私聊", "latin_mixed"), ("这款产品很好用", "simplified"),
    ("12345 !!", "other"), ("ＶＸ联系", "latin_mixed"),
])
def test_script_of_names_the_writing_for_slices(text, script) -> None:
    assert script_of(text) == script


# -- normalize_many: the offset-free fast path must equal normalize_text exactly ------------------



# Characters every step reacts to: full-width and upper-case forms, traditional characters,
# decorations and zero-width characters, separators, fillers, doubled characters, numerals,
# contact-word variants, combining marks, final sigma, characters beyond the BMP, the boundary.
_TRICKY = list("ＶＩＰ１００％ＡΣσ國家級頂級療效全网最低价高仿原单微信血压治疗三单九百九十九万千百两"
               " \t\n　-.,!！，。、:%★♥\u200b\u200d\u00ad\u0301\ufdfa\ufeffé") + \
    ["\U0001F600", "\U00020000", "\U0002A6D6", "\x00"] + list(FILLERS) + list(CONTACT_VARIANTS)
_TEXTS = st.lists(st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8")), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(_TEXTS, min_size=1, max_size=8))
def test_normalize_many_equals_normalize_text(texts: list[str]) -> None:
    assert normalize_many(texts) == [normalize_text(t).text for t in texts]


def test_normalize_many_equals_normalize_text_on_generated_listings_and_transcripts() -> None:
    from kinds.false_marketing.generator import TranscriptGenerationConfig, generate_transcripts
    from kinds.listing_quality.generator import (
        ListingGenerationConfig,
        generate_listings,
        to_api_records,
    )

    listings = to_api_records(generate_listings(ListingGenerationConfig(n=2000, seed=11), progress=False))
    texts = [r["title"] for r in listings] + [r.get("description") or "" for r in listings]
    texts += list(generate_transcripts(TranscriptGenerationConfig(n=2000, seed=3, use_real_text=False),
                                       progress=False)["text"])
    assert normalize_many(texts) == [normalize_text(t).text for t in texts]


def _every_step(text: str) -> NormalizedText:
    chars = [(c, i) for i, c in enumerate(text)]
    for step in NORMALIZATION_STEPS:
        chars = step(chars)
    return NormalizedText(text, "".join(c for c, _ in chars), tuple(o for _, o in chars))


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_skipping_steps_that_change_nothing_keeps_text_and_offsets(text: str) -> None:
    assert normalize_text(text) == _every_step(text)


def test_the_steps_still_change_the_text_they_are_for() -> None:
    text = "全 网-最.低 ＶＸ１２３ 國家 血某压 全全网网 三单 \u200b"
    assert normalize_text(text) == _every_step(text)
    assert normalize_text(text).text != text
