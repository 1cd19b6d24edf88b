"""Ids as the service compares them (features/ids.py): what a scoring call's ids may hold."""

from __future__ import annotations

import re

import pytest

from features.ids import checked_id, checked_scored_id, merchant_key


@pytest.mark.parametrize(("value", "named"), [
    ("M1\ufe0f", "invisible character U+FE0F"), ("U\u034f1", "invisible character U+034F"),
    ("M1\u3164", "invisible character U+3164"),  # named as sent, not as its NFKC form U+1160
    ("M\U00016fe41", "invisible character U+16FE4"), ("\u2800", "invisible character U+2800"),
    ("S\x00x", "control character U+0000"), ("\x1b[31m", "control character U+001B"),
    ("M\u20281", "line separator character U+2028"), ("M\u20291", "line separator character U+2029"),
])
def test_a_scored_id_with_a_hidden_character_is_refused_naming_it(value: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        checked_scored_id(value)
    assert checked_id(value) == value or not merchant_key(value)  # reads and feedback still take it


@pytest.mark.parametrize("value", ["M1", "Ｍ１", " m1\u200b", "❤room", "店铺-12"])
def test_ordinary_ids_and_format_characters_pass(value: str) -> None:
    assert checked_scored_id(value) == value
