"""What every kind's record schema shares: text limits measured as the text models see them,
size limits, and the column specs of training files. Each kind's record lives in its folder
(``kinds/<kind>/record.py``)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

MAX_COUNT = 10**12  # sales, review counts, orders: far above any real figure, far below overflow
MAX_AMOUNT = 1e12  # prices, GMV, minutes, ratios


def normalized_length(value: str) -> int:
    """Characters of ``value`` after Unicode normalization (NFKC), what the text models work
    on: NFKC can expand a character many times (U+FDFA becomes 18 characters), and the other
    normalization steps (``features/text.py``) do not lengthen a text further."""
    return len(unicodedata.normalize("NFKC", value))


def checked_text(value: str, limit: int, required: bool) -> str:
    """The text if its Unicode-normalized (NFKC) form fits ``limit`` characters and, when
    ``required``, holds a letter or digit; else ``ValueError`` saying which rule failed.
    (NFKC can expand a character many times: U+FDFA becomes 18 characters.)"""
    normalized = unicodedata.normalize("NFKC", value)
    if len(normalized) > limit:
        raise ValueError(f"is {len(normalized):,} characters after Unicode normalization (NFKC); "
                         f"at most {limit:,} are accepted")
    if required and not any(unicodedata.category(c)[0] in "LN" for c in normalized):
        raise ValueError("has no letter or digit (empty after normalization: only spaces, "
                         "zero-width or symbol characters)")
    return value


ColumnKind = Literal["text", "number", "integer", "label"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a training file: its kind and whether a file must have it."""

    name: str
    kind: ColumnKind
    required: bool
