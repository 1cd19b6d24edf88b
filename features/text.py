"""Text normalization against evasion, keeping a map back to the original offsets.

Every step works on a list of (character, original offset) pairs, so any span found in
the normalized text can be pointed back at the characters the user actually saw.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

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


@lru_cache(maxsize=1)
def _t2s_converter():  # noqa: ANN202 - opencc has no type stubs
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


def normalize_text(text: str) -> NormalizedText:
    """Normalize ``text`` for matching and modelling: NFKC (full-width to half-width),
    lower case, traditional to simplified Chinese, zero-width and decoration removal, and
    removal of spaces or symbols inserted between Chinese characters."""
    chars: Chars = [(c, i) for i, c in enumerate(text)]
    for step in (
        _fold_width_and_case,
        _to_simplified,
        _drop_decorations,
        _remove_separators_inside_words,
    ):
        chars = step(chars)
    return NormalizedText(
        original=text,
        text="".join(c for c, _ in chars),
        offsets=tuple(o for _, o in chars),
    )
