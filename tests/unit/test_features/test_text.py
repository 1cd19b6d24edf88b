from features.text import normalize_text


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
    assert normalized.text.startswith("加vx")
    begin, end = normalized.original_span(0, 3)
    assert original[begin:end] == "加❤ＶＸ"
