"""The first-character lookahead leaves every match of a pattern as it was."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from features.first_chars import first_character_class, with_first_character_check
from features.marketing import RULES


def test_every_lexicon_rule_gets_a_first_character_check() -> None:
    assert all(first_character_class(rule.pattern) is not None for rule in RULES)


def test_first_characters_follow_groups_optional_parts_and_lookarounds() -> None:
    assert first_character_class(r"(?<!按)(a|bc)?\d+x") == r"[\dab]"
    assert first_character_class(r"(?=q)(微信|qq)(号)?") == "[q微]"
    assert first_character_class("a*") is None  # can match the empty string
    assert first_character_class(".x") is None  # any character
    assert first_character_class("[^a]b") is None
    assert first_character_class("(?i)ab") is None


# Text built from the characters the rules are written in, so that many of them match.
RULE_CHARACTERS = sorted({c for rule in RULES for c in rule.pattern if c not in "()|?!<=:[]\\+*{}^$.-"} | set("0123456789 "))


# Each rule and their alternation, compiled plain and with the check (once, not per example).
PATTERN_PAIRS = [(re.compile(pattern), re.compile(with_first_character_check(pattern)))
                 for pattern in [rule.pattern for rule in RULES] + ["|".join(f"(?:{rule.pattern})" for rule in RULES)]]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(RULE_CHARACTERS), max_size=60).map("".join))
def test_checked_patterns_find_the_same_matches(text: str) -> None:
    for plain_pattern, checked_pattern in PATTERN_PAIRS:
        plain = [m.span() for m in plain_pattern.finditer(text)]
        assert [m.span() for m in checked_pattern.finditer(text)] == plain


def test_generated_sales_talk_matches_the_same(transcript_file) -> None:
    import pandas as pd

    from features.text import normalize_many

    texts = normalize_many(pd.read_parquet(transcript_file)["text"].astype(str).tolist()[:2000])
    combined = "|".join(f"(?:{rule.pattern})" for rule in RULES)
    checked = re.compile(with_first_character_check(combined))
    plain = [[m.span() for m in re.finditer(combined, t)] for t in texts]
    assert [[m.span() for m in checked.finditer(t)] for t in texts] == plain
    assert sum(map(len, plain)) > 100
