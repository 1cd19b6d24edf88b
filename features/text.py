"""Text normalization against evasion, keeping a map back to the original offsets.

Every step works on a list of (character, original offset) pairs, so any span found in
the normalized text can be pointed back at the characters the user actually saw.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Sequence
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


def spoken_digits(numeral: str) -> str:
    """Arabic digits for a run of Chinese numerals: a run of three or more digits without a
    unit is read digit by digit, as years and codes are said (二零零五 -> 2005, 九九九 -> 999),
    any other run by value (九百九十九 -> 999, 两万 -> 20000)."""
    if len(numeral) >= 3 and not any(char in CHINESE_UNITS for char in numeral):
        return "".join(str(CHINESE_DIGITS[char]) for char in numeral)
    return str(chinese_numeral_value(numeral))


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
# Names that begin with a numeral character: a run of numerals stops before them, so that
# 一比一百达翡丽 keeps its 一比一 (not 一比100达翡丽) and 买一块万宝龙 its brand.
NUMERAL_LED_NAMES = ("百达翡丽", "百雀羚", "百草味", "百岁山", "万宝龙", "万国表", "千禾")
# The leading class check keeps the names' lookahead off every other character (half the cost).
_NUMERAL_RUN = re.compile(
    f"(?=[{_NUMERAL_CHARS}])(?:(?!{'|'.join(map(re.escape, NUMERAL_LED_NAMES))})[{_NUMERAL_CHARS}])+")


def _is_spoken_number(run: str, after: str) -> bool:
    """Whether a run of numeral characters is a number: two or more characters, or one before
    a measure word; never a run that starts with 千, 万 or 百 (千万别错过 "by all means",
    万一 "in case": words, not amounts)."""
    if run[0] in "千万百":
        return False
    return len(run) >= 2 or after in MEASURE_WORDS


def _convert_numerals(chars: Chars) -> Chars:
    """Chinese numerals to Arabic digits: runs of two or more numeral characters, or one
    before a measure word (最后三单 -> 最后3单, 原价九百九十九 -> 原价999)."""
    text = "".join(c for c, _ in chars)
    out: Chars = []
    last = 0
    for match in _NUMERAL_RUN.finditer(text):
        run = match.group(0)
        after = text[match.end()] if match.end() < len(text) else ""
        if not _is_spoken_number(run, after):
            continue
        digits = spoken_digits(run)
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
    for step, may_change in _steps_with_guards():
        if may_change("".join(c for c, _ in chars)):
            chars = step(chars)
    return NormalizedText(
        original=text,
        text="".join(c for c, _ in chars),
        offsets=tuple(o for _, o in chars),
    )


NORMALIZATION_STEPS = (
    _fold_width_and_case,
    _to_simplified,
    _drop_decorations,
    _remove_separators_inside_words,
    _replace_variants,
    _remove_fillers,
    _collapse_reduplication,
    _convert_numerals,
)


@lru_cache(maxsize=1)
def _steps_with_guards() -> tuple[tuple[Callable[[Chars], Chars], Callable[[str], object]], ...]:
    """Each step with a check that is false only where the step would change nothing (a
    third of ``normalize_text``'s time went to steps that changed nothing)."""
    fold, dropped, separator_runs = _patterns()
    converter = _t2s_converter()
    guards = {
        _fold_width_and_case: fold.search,
        _to_simplified: lambda text: converter.convert(text) != text,
        _drop_decorations: dropped.search,
        _remove_separators_inside_words: lambda text: separator_runs.search(text) or _ASTRAL.search(text),
        _replace_variants: _variant_pattern().search,
        _remove_fillers: _FILLER.search,
        _collapse_reduplication: _DOUBLED_CJK.search,
        _convert_numerals: _NUMERAL_RUN.search,
    }
    return tuple((step, guards[step]) for step in NORMALIZATION_STEPS)


# -- the same normalization on plain strings, many at once -----------------------------------
# ``normalize_many`` gives exactly ``[normalize_text(t).text for t in texts]`` without the offset
# maps, about 10x faster: the texts are joined with a boundary character that every step treats
# as the end of a text, and each per-character step is a regular expression over the characters
# it changes (found once per process over the Basic Multilingual Plane; characters beyond it are
# always checked one by one), so Python only runs where something changes. Listings (which show
# no spans) use it; a property test holds it equal to ``normalize_text``.

_BOUNDARY = "\x00"


def _folded(char: str) -> str:
    return unicodedata.normalize("NFKC", char).lower()


def _dropped(char: str) -> bool:
    return char in _ZERO_WIDTH or unicodedata.category(char) in _DROPPED_CATEGORIES


def _char_class(predicate: Callable[[str], bool], with_astral: bool = True) -> re.Pattern[str]:
    """A pattern matching one character for which ``predicate`` holds (or may hold: with
    ``with_astral`` every character beyond the BMP matches and is decided by the caller)."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF or not predicate(chr(code)):
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    parts = [re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges]
    astral = "\U00010000-\U0010ffff" if with_astral else ""
    return re.compile("[" + "".join(parts) + astral + "]")


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Characters folding to something else, characters dropped, separator runs."""
    fold = _char_class(lambda c: _folded(c) != c)
    dropped = _char_class(_dropped)
    separator = _char_class(lambda c: c != _BOUNDARY and _is_separator(c), with_astral=False)
    return fold, dropped, re.compile(separator.pattern + "+")


def _fold_match(match: re.Match[str]) -> str:
    return _folded(match.group(0))


def _drop_match(match: re.Match[str]) -> str:
    char = match.group(0)
    return "" if _dropped(char) else char


def _plain_simplified(joined: str) -> str:
    converter = _t2s_converter()
    converted = converter.convert(joined)
    if len(converted) == len(joined):
        return converted
    # Some text changed length under phrase conversion: that one goes character by character.
    pieces = joined.split(_BOUNDARY)
    return _BOUNDARY.join(
        piece_out if len(piece_out := converter.convert(piece)) == len(piece)
        else "".join(converter.convert(c) for c in piece) for piece in pieces)


def _plain_separators(text: str, separator_runs: re.Pattern[str]) -> str:
    if _ASTRAL.search(text):  # separator runs were found over the BMP only
        return _plain_separators_slow(text)
    out: list[str] = []
    last, length = 0, len(text)
    for run in separator_runs.finditer(text):
        start, end = run.span()
        out.append(text[last:start])
        if start and end < length:
            before, after = text[start - 1], text[end]
            if before != _BOUNDARY and after != _BOUNDARY and not is_cjk(before) and not is_cjk(after):
                out.append("".join(run.group(0).split()) or " ")  # split(): the isspace() characters
        last = end
    out.append(text[last:])
    return "".join(out)


def _plain_separators_slow(text: str) -> str:
    return _BOUNDARY.join("".join(c for c, _ in _remove_separators_inside_words([(c, 0) for c in piece]))
                          for piece in text.split(_BOUNDARY))


def _plain_fillers(text: str) -> str:
    return "".join(c for c, _ in _remove_fillers([(c, 0) for c in text]))


def _plain_numeral(match: re.Match[str]) -> str:
    run, text, end = match.group(0), match.string, match.end()
    after = text[end] if end < len(text) else ""
    if not _is_spoken_number(run, after):
        return run
    return spoken_digits(run)


_FILLER = re.compile("|".join(FILLERS))
_BOUNDARY_RE = re.compile(_BOUNDARY)
_ASTRAL = re.compile("[\\U00010000-\\U0010ffff]")
_DOUBLED_CJK = re.compile("([\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002a6df])\\1")


def _rare_steps(text: str) -> str:
    """Fillers and reduplication, character by character, only on a text that has them."""
    if _FILLER.search(text):
        text = _plain_fillers(text)
    if _DOUBLED_CJK.search(text):
        text = "".join(c for c, _ in _collapse_reduplication([(c, 0) for c in text]))
    return text


def normalize_many(texts: Sequence[str]) -> list[str]:
    """``[normalize_text(t).text for t in texts]``, computed on joined strings without offsets:
    for texts whose spans are never shown, such as listings in bulk."""
    if not texts:
        return []
    joined = _BOUNDARY.join(texts)
    if joined.count(_BOUNDARY) != len(texts) - 1:  # a text holds the boundary itself
        return [normalize_text(t).text for t in texts]
    fold, dropped, separator_runs = _patterns()
    text = dropped.sub(_drop_match, _plain_simplified(fold.sub(_fold_match, joined)))
    text = _plain_separators(text, separator_runs)
    text = _in_pieces_with(_variant_candidates(), text, _replace_variants_plain)
    text = _in_pieces_with(_RARE_TRIGGER, text, _rare_steps)
    return _NUMERAL_RUN.sub(_plain_numeral, text).split(_BOUNDARY)


_RARE_TRIGGER = re.compile(_FILLER.pattern + "|" + _DOUBLED_CJK.pattern)  # its one group: the doubled


@lru_cache(maxsize=1)
def _variant_candidates() -> re.Pattern[str]:
    """Contact-word variants without their word-boundary conditions: a cheap first look."""
    return re.compile("|".join(re.escape(v) for v in sorted(CONTACT_VARIANTS, key=len, reverse=True)))


def _replace_variants_plain(text: str) -> str:
    return _variant_pattern().sub(lambda m: CONTACT_VARIANTS[m.group(0)], text)


def _in_pieces_with(trigger: re.Pattern[str], joined: str, step: Callable[[str], str]) -> str:
    """Apply ``step`` to each joined text in which ``trigger`` occurs, leaving the rest."""
    hits = [m.start() for m in trigger.finditer(joined)]
    if not hits:
        return joined
    boundaries = [m.start() for m in _BOUNDARY_RE.finditer(joined)]
    pieces = joined.split(_BOUNDARY)
    for piece in {bisect.bisect(boundaries, hit) for hit in hits}:
        pieces[piece] = step(pieces[piece])
    return _BOUNDARY.join(pieces)
