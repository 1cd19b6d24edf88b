"""Spoken evasions generated from real sentences: what hosts do to slip a claim past a filter.

A sensitive word of a sentence (a span a lexicon rule matches, else a word of the resolver's
vocabulary, else any two Han characters) is rewritten one way:

- ``homophone``: one character replaced by a common character (GB2312 level 1) of the same
  toneless pinyin (pypinyin's table, packaged);
- ``filler``: a filler inserted between two characters (*, ., space, an emoji, x, 某, ~);
- ``look_alike``: the word in traditional characters, or one character written as a shape
  look-alike from this module's own table;
- ``mask``: one character replaced by 某, *, x or □;
- ``pinyin``: one character written in Latin pinyin.

Training uses it to teach the models that a disguised claim is still the claim
(``FalseMarketingConfig.evasion_copies``); ``benchmarks/marketing_evasions.py`` uses the same
generator, with another seed, on sentences of held-out rooms.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from features.evasion import VOCABULARY, is_han
from features.marketing import match_lexicon

KINDS = ("homophone", "filler", "look_alike", "mask", "pinyin")
FILLER_CHARS = ("*", ".", " ", "\u2764", "x", "某", "~")
MASK_CHARS = ("某", "*", "x", "\u25a1")
# Shape look-alikes the generator uses (its own table, not the resolver's).
SHAPES = {"治": "冶", "血": "皿", "效": "郊", "减": "咸", "瘦": "廋", "肥": "吧", "免": "兔", "失": "矢",
          "低": "氐", "第": "弟", "顶": "项", "级": "圾", "微": "徽", "最": "蕞", "癌": "嵒", "疗": "疔",
          "价": "阶", "播": "潘", "限": "恨", "仿": "访", "推": "椎", "专": "传", "家": "冢"}


@dataclass(frozen=True)
class Evasion:
    """One disguised sentence: the row it came from, how and where it was disguised."""

    row: int
    kind: str
    source: str  # lexicon | vocabulary | other: what picked the disguised word
    text: str


def _common(char: str) -> bool:
    try:
        code = char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return len(code) == 2 and 0xB0A1 <= int.from_bytes(code, "big") <= 0xD7F9


@lru_cache(maxsize=1)
def homophone_table() -> tuple[dict[str, str], dict[str, list[str]]]:
    """Character -> toneless main reading; reading -> common characters (GB2312 level 1)."""
    from pypinyin import Style, lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    reading = {}
    for code in pinyin_dict:
        char = chr(code)
        if _common(char):
            reading[char] = lazy_pinyin(char, style=Style.NORMAL)[0]
    by_reading: dict[str, list[str]] = {}
    for char, r in sorted(reading.items()):
        by_reading.setdefault(r, []).append(char)
    return reading, by_reading


def common_characters() -> list[str]:
    """The common Han characters (GB2312 level 1) pypinyin reads, sorted."""
    return sorted(homophone_table()[0])


@lru_cache(maxsize=1)
def _to_traditional():  # noqa: ANN202 - opencc has no type hints
    import opencc  # a dependency (features.text)

    return opencc.OpenCC("s2t")


def _occurrences(text: str, word: str) -> list[int]:
    """Every start of ``word`` in ``text`` (overlapping ones too), in order."""
    starts, i = [], text.find(word)
    while i >= 0:
        starts.append(i)
        i = text.find(word, i + 1)
    return starts


def target_span(text: str, rng: random.Random) -> tuple[int, int, str] | None:
    """(start, end, source) of the sensitive word to disguise, in the original text (a word a
    host already masked, 关某节, is not disguised again)."""
    hits = [(m.start, m.end) for m in match_lexicon(text, masked_words=False)
            if m.end - m.start >= 2 and all(is_han(c) for c in text[m.start:m.end])]
    if hits:
        start, end = rng.choice(hits)
        if end - start > 4:  # a long rule match: disguise a word of it
            start = rng.randrange(start, end - 1)
            end = min(end, start + rng.choice((2, 3)))
        return start, end, "lexicon"
    words = [(i, i + len(w)) for w in VOCABULARY for i in _occurrences(text, w)]
    if words:
        start, end = rng.choice(words)
        return start, end, "vocabulary"
    windows = [i for i in range(len(text) - 1) if is_han(text[i]) and is_han(text[i + 1])]
    if not windows:
        return None
    start = rng.choice(windows)
    return start, start + 2, "other"


def disguise(word: str, kind: str, rng: random.Random) -> str | None:
    """``word`` rewritten by one evasion of ``kind`` (None when that kind cannot apply)."""
    reading, by_reading = homophone_table()
    positions = list(range(len(word)))
    rng.shuffle(positions)
    if kind == "homophone":
        for i in positions:
            options = [c for c in by_reading.get(reading.get(word[i], ""), []) if c != word[i]]
            if options:
                return word[:i] + rng.choice(options) + word[i + 1:]
        return None
    if kind == "filler":
        i = rng.randrange(1, len(word))
        return word[:i] + rng.choice(FILLER_CHARS) + word[i:]
    if kind == "look_alike":
        traditional = _to_traditional().convert(word)
        if traditional != word:
            return traditional
        for i in positions:
            if word[i] in SHAPES:
                return word[:i] + SHAPES[word[i]] + word[i + 1:]
        return None
    if kind == "mask":
        i = rng.choice(positions)
        return word[:i] + rng.choice(MASK_CHARS) + word[i + 1:]
    if kind == "pinyin":
        i = rng.choice(positions)
        return word[:i] + reading.get(word[i], "") + word[i + 1:] if word[i] in reading else None
    raise ValueError(f"unknown evasion kind {kind!r}; kinds are {', '.join(KINDS)}")


def _evade(text: str, row: int, kinds: Sequence[str], rng: random.Random) -> list[Evasion]:
    span = target_span(text, rng)
    if span is None:
        return []
    start, end, source = span
    out = []
    for kind in kinds:
        evaded = disguise(text[start:end], kind, rng)
        if evaded is not None and evaded != text[start:end]:
            out.append(Evasion(row, kind, source, text[:start] + evaded + text[end:]))
    return out


def generate(texts: Sequence[str], seed: int) -> list[Evasion]:
    """One evasion of each kind per sentence where that kind applies (benchmarks)."""
    rng = random.Random(seed)
    return [e for row, text in enumerate(texts) for e in _evade(text, row, KINDS, rng)]


def sample_evasions(texts: Sequence[str], copies: int, seed: int) -> list[Evasion]:
    """``copies`` evasions per sentence, each of a kind drawn at random (training)."""
    rng = random.Random(seed)
    out = []
    for row, text in enumerate(texts):
        kinds = rng.sample(KINDS, k=min(copies, len(KINDS)))
        out.extend(_evade(text, row, kinds, rng))
    return out


def evasion_rows(texts: Sequence[str], labels: np.ndarray, copies: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Evaded copies of the violating rows (``labels`` rows x categories), with their labels."""
    violating = np.flatnonzero(labels.any(axis=1))
    evasions = sample_evasions([texts[i] for i in violating], copies, seed)
    rows = np.array([violating[e.row] for e in evasions], dtype=np.int64)
    return [e.text for e in evasions], labels[rows] if len(rows) else labels[:0]
