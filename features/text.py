"""Text normalization against evasion, keeping a map back to the original offsets.

Every step works on a list of (character, original offset) pairs, so any span found in
the normalized text can be pointed back at the characters the user actually saw.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# Characters that carry no meaning but are used to split words apart.
_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"}
# Unicode categories dropped everywhere: format chars, marks, modifier and other symbols
# (emoji, hearts, stars), which evaders sprinkle inside words.
_DROPPED_CATEGORIES = {"Cf", "Mn", "Me", "Sk", "So", "Co", "Cn"}
# Separator-like categories removed when they sit next to a CJK character.
_SEPARATOR_CATEGORIES = {"Zs", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc"}

Chars = list[tuple[str, int]]


@dataclass(frozen=True)
class NormalizedText:
    """Normalized text with ``offsets[i]`` = index in ``original`` of normalized char ``i``."""

    original: str
    text: str
    offsets: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalized text back to the original text."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span ({start}, {end}) is outside the normalized text")
        return self.offsets[start], self.offsets[end - 1] + 1


def is_cjk(char: str) -> bool:
    """True for CJK unified ideographs (the Han characters of Chinese text)."""
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF


Script = Literal["traditional", "latin_mixed", "simplified", "other"]


def script_of(text: str) -> Script:
    """The writing of a text, for slicing metrics: ``traditional`` when any Han character
    changes under traditional-to-simplified conversion, else ``latin_mixed`` when it holds
    Latin letters (pinyin, brand names, contact handles), else ``simplified`` when it holds
    Han characters, else ``other``."""
    han = "".join(c for c in text if is_cjk(c))
    if han and _t2s_converter().convert(han) != han:
        return "traditional"
    if any("a" <= c.lower() <= "z" for c in unicodedata.normalize("NFKC", text)):
        return "latin_mixed"
    return "simplified" if han else "other"


@lru_cache(maxsize=1)
def _t2s_converter():  # opencc has no type stubs
    import opencc

    return opencc.OpenCC("t2s")


def _fold_width_and_case(chars: Chars) -> Chars:
    out: Chars = []
    for char, offset in chars:
        for folded in unicodedata.normalize("NFKC", char).lower():
            out.append((folded, offset))
    return out


def _to_simplified(chars: Chars) -> Chars:
    text = "".join(c for c, _ in chars)
    converted = _t2s_converter().convert(text)
    if len(converted) == len(text):
        return [(c, offset) for c, (_, offset) in zip(converted, chars, strict=True)]
    # A phrase conversion changed the length: fall back to character by character.
    converter = _t2s_converter()
    out: Chars = []
    for char, offset in chars:
        out.extend((c, offset) for c in converter.convert(char))
    return out


def _drop_decorations(chars: Chars) -> Chars:
    return [
        (c, o)
        for c, o in chars
        if c not in _ZERO_WIDTH and unicodedata.category(c) not in _DROPPED_CATEGORIES
    ]


# Punctuation that carries meaning in claims (100%, 1:1) and is never treated as a separator.
_MEANINGFUL_PUNCTUATION = {"%", ":"}


def _is_separator(char: str) -> bool:
    if char in _MEANINGFUL_PUNCTUATION:
        return False
    return char.isspace() or unicodedata.category(char) in _SEPARATOR_CATEGORIES


def _remove_separators_inside_words(chars: Chars) -> Chars:
    """Drop runs of spaces/punctuation that touch a CJK character (全 网-最.低 -> 全网最低);
    collapse other whitespace runs to one space; trim."""
    out: Chars = []
    i = 0
    while i < len(chars):
        char, offset = chars[i]
        if not _is_separator(char):
            out.append((char, offset))
            i += 1
            continue
        j = i
        while j < len(chars) and _is_separator(chars[j][0]):
            j += 1
        before = out[-1][0] if out else ""
        after = chars[j][0] if j < len(chars) else ""
        run = [c for c, _ in chars[i:j]]
        touches_cjk = (before and is_cjk(before)) or (after and is_cjk(after))
        if before and after and not touches_cjk:
            keep = next((p for p in chars[i:j] if not p[0].isspace()), None)
            if keep is None and any(c.isspace() for c in run):
                out.append((" ", offset))
            elif keep is not None:
                out.extend(p for p in chars[i:j] if not p[0].isspace())
        i = j
    return out


# Filler characters inserted inside words to dodge filters (血某压, 治什么疗).
FILLERS: tuple[str, ...] = ("什么", "某", "那个", "嗯", "啊", "呃")
# Words whose inside is protected against filler removal: a filler is removed only when the
# characters on both sides form a bigram of one of these words.
PROTECTED_BIGRAM_SOURCE: tuple[str, ...] = (
    "血压", "血糖", "血脂", "治疗", "根治", "治愈", "失眠", "祛斑", "美白", "减肥", "瘦身", "消炎",
    "抗癌", "防癌", "免疫", "见效", "退款", "保证", "高仿", "复刻", "原单", "微信", "私聊", "下单",
    "认证", "推荐", "同款", "最低", "第一", "顶级", "国家", "原价", "清仓", "亏本", "下架", "特效",
)
# Homophones, pinyin and letter variants of contact words, mapped to one spelling.
CONTACT_VARIANTS: dict[str, str] = {
    "weixin": "微信", "wei信": "微信", "微xin": "微信", "薇信": "微信", "威信": "微信", "维信": "微信",
    "v信": "微信", "vx": "微信", "wx": "微信", "徽信": "微信", "微芯": "微信", "围信": "微信",
    "扣扣": "qq", "企鹅号": "qq", "抠抠": "qq", "whatsapp": "whatsapp", "dd我": "私聊我", "滴滴我": "私聊我",
    "私我": "私聊我", "私信我": "私聊我", "胃信": "微信", "微❤": "微信",
}
CHINESE_DIGITS: dict[str, int] = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
CHINESE_UNITS: dict[str, int] = {"十": 10, "百": 100, "千": 1000, "万": 10000}
# A single numeral is converted only before one of these measure words (三单, 七天, 五折).
MEASURE_WORDS = set("单件天元块折个瓶盒斤份套台号次分秒人箱")


@lru_cache(maxsize=1)
def _protected_bigrams() -> frozenset[str]:
    return frozenset(w[i:i + 2] for w in PROTECTED_BIGRAM_SOURCE for i in range(len(w) - 1))


def _remove_fillers(chars: Chars) -> Chars:
    """Drop a filler sitting between two characters that form a protected bigram."""
    bigrams = _protected_bigrams()
    text = "".join(c for c, _ in chars)
    drop: set[int] = set()
    for filler in FILLERS:
        start = text.find(filler, 1)
        while start != -1:
            end = start + len(filler)
            if end < len(text) and text[start - 1] + text[end] in bigrams:
                drop.update(range(start, end))
            start = text.find(filler, start + 1)
    return [pair for i, pair in enumerate(chars) if i not in drop]


def _collapse_reduplication(chars: Chars) -> Chars:
    """AABB -> AB for runs of at least two doubled CJK characters (全全网网最最低低)."""
    out: Chars = []
    i = 0
    while i < len(chars):
        j = i
        while (j + 1 < len(chars) and chars[j][0] == chars[j + 1][0] and is_cjk(chars[j][0])
               and (j == i or chars[j][0] != chars[j - 1][0])):
            j += 2
        pairs = (j - i) // 2
        if pairs >= 2:
            out.extend(chars[k] for k in range(i, j, 2))
            i = j
        else:
            out.append(chars[i])
            i += 1
    return out


def _replace_variants(chars: Chars) -> Chars:
    """Map contact-word variants to one spelling, keeping offsets of the replaced span."""
    text = "".join(c for c, _ in chars)
    pattern = _variant_pattern()
    out: Chars = []
    last = 0
    for match in pattern.finditer(text):
        out.extend(chars[last:match.start()])
        span = chars[match.start():match.end()]
        out.extend(_spread(span, CONTACT_VARIANTS[match.group(0)]))
        last = match.end()
    out.extend(chars[last:])
    return out


def _spread(span: Chars, replacement: str) -> Chars:
    """Offsets for a replacement: first and last output characters keep the first and last
    original offsets, the rest are spread evenly in between."""
    if len(replacement) == 1:
        return [(replacement, span[0][1])]
    last = len(span) - 1
    return [(c, span[round(k * last / (len(replacement) - 1))][1]) for k, c in enumerate(replacement)]


@lru_cache(maxsize=1)
def _variant_pattern() -> re.Pattern[str]:
    ordered = sorted(CONTACT_VARIANTS, key=len, reverse=True)
    # Latin variants only as whole tokens: "vx" in "vxyz" is not a contact word.
    parts = [rf"(?<![a-z]){re.escape(v)}(?![a-z])" if v.isascii() else re.escape(v) for v in ordered]
    return re.compile("|".join(parts))


def chinese_numeral_value(numeral: str) -> int:
    """Value of a Chinese numeral such as 九百九十九, 三, 十五, 两万."""
    total, section, digit = 0, 0, 0
    for char in numeral:
        if char in CHINESE_DIGITS:
            digit = CHINESE_DIGITS[char]
        elif char == "万":
            total += (section + digit) * 10000
            section, digit = 0, 0
        else:
            section += (digit or 1) * CHINESE_UNITS[char]
            digit = 0
    return total + section + digit


_NUMERAL_CHARS = "".join(CHINESE_DIGITS) + "".join(CHINESE_UNITS)
_NUMERAL_RUN = re.compile(f"[{_NUMERAL_CHARS}]+")


def _convert_numerals(chars: Chars) -> Chars:
    """Chinese numerals to Arabic digits: runs of two or more numeral characters, or one
    before a measure word (最后三单 -> 最后3单, 原价九百九十九 -> 原价999)."""
    text = "".join(c for c, _ in chars)
    out: Chars = []
    last = 0
    for match in _NUMERAL_RUN.finditer(text):
        run = match.group(0)
        after = text[match.end()] if match.end() < len(text) else ""
        if (len(run) < 2 and after not in MEASURE_WORDS) or run in ("万", "千", "百"):
            continue
        digits = str(chinese_numeral_value(run))
        span = chars[match.start():match.end()]
        out.extend(chars[last:match.start()])
        out.extend(_spread(span, digits))
        last = match.end()
    out.extend(chars[last:])
    return out


def normalize_text(text: str) -> NormalizedText:
    """Normalize ``text`` for matching and modelling: NFKC (full-width to half-width),
    lower case, traditional to simplified Chinese, zero-width and decoration removal,
    removal of spaces or symbols inserted between Chinese characters, filler characters
    inside words, AABB reduplication, contact-word homophones and pinyin, and Chinese
    numerals to Arabic digits. ``offsets`` map every output character to the original."""
    chars: Chars = [(c, i) for i, c in enumerate(text)]
    for step in (
        _fold_width_and_case,
        _to_simplified,
        _drop_decorations,
        _remove_separators_inside_words,
        _replace_variants,
        _remove_fillers,
        _collapse_reduplication,
        _convert_numerals,
    ):
        chars = step(chars)
    return NormalizedText(
        original=text,
        text="".join(c for c, _ in chars),
        offsets=tuple(o for _, o in chars),
    )
