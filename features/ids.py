"""Identifiers as the service compares them.

An id is compared in its **normalized form**: Unicode NFKC (full-width and compatibility
variants folded), format characters removed (zero-width spaces and joiners, BOM, direction
marks: Unicode category Cf), surrounding white space trimmed. Merchant ids are also
**case-folded** (``str.casefold``): ``M1``, ``m1``, ``Ｍ１`` and ``"M1 "`` are one merchant, so
that a variant of a blocked merchant's id cannot slip past the merchant rule; live rooms' and
creators' ids are compared the same way. Listing ids keep their case; ``DUP4``, ``ＤＵＰ4`` and
``" DUP4\u200b"`` are one listing (in one call's duplicate check, in the decision log, in
feedback).

An id whose normalized form is empty (``""``, spaces, zero-width characters only) is refused.
A scoring call's ids (``ScoredId``) are also refused when they hold a control character
(``\x00``, an escape sequence) or another invisible character (a variation selector, the
combining grapheme joiner, a Hangul filler, the braille blank): ``M1`` with one of them would
otherwise be scored as a merchant apart from ``M1``, past its hold.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_ID_CHARS = 128


def id_key(value: str) -> str:
    """``value`` normalized for comparison: NFKC, format characters removed, trimmed."""
    folded = unicodedata.normalize("NFKC", value)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf").strip()


def merchant_key(value: str) -> str:
    """A merchant id as every comparison sees it: ``id_key`` and case-folded."""
    return id_key(value).casefold()


def principal_key(name: str) -> str:
    """A person's name as identity is compared (a token's name, a reviewer, who filed an
    appeal): ``Filer``, ``filer`` and ``ｆｉｌｅｒ`` are one person, as merchant ids are one merchant."""
    return merchant_key(name)


# Characters that show nothing but are not format characters (Cf, removed by ``id_key``): the
# combining grapheme joiner, Hangul fillers, variation selectors, Mongolian and Khmer
# vowel-inherent signs, the braille blank. A scored id holding one is refused rather than
# folded: ids stored before kept them (reads, feedback and appeals still find those), and a
# variant of a held merchant's id must not be scored as a new merchant.
_INVISIBLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0, 0x16FE4, *range(0x180B, 0x1810),
     *range(0xFE00, 0xFE10), *range(0xFFF0, 0xFFF9), *range(0xE0100, 0xE01F0)])


def _hidden(character: str) -> str | None:
    """What keeps ``character`` out of a scored id: "control" (Cc), "line separator" (Zl, Zp),
    "invisible" (``_INVISIBLE``), else None."""
    category = unicodedata.category(character)
    if category == "Cc":
        return "control"
    if category in ("Zl", "Zp"):
        return "line separator"
    return "invisible" if ord(character) in _INVISIBLE else None


def checked_id(value: str) -> str:
    """``value`` unchanged if its normalized form is neither empty nor longer than
    ``MAX_ID_CHARS`` (NFKC and case folding can lengthen a text), else ``ValueError``."""
    key = merchant_key(value)
    if not key:
        raise ValueError("is empty after normalization (only spaces or zero-width characters); "
                         "send the entity's id")
    if len(key) > MAX_ID_CHARS:
        raise ValueError(f"is {len(key):,} characters after normalization (NFKC, case folding); "
                         f"at most {MAX_ID_CHARS} are accepted")
    return value


def checked_scored_id(value: str) -> str:
    """``checked_id``, and no control character (``\\x00``, an escape sequence) nor invisible
    one (``_INVISIBLE``) once normalized, else ``ValueError``: the ids a scoring call brings."""
    for text in (value, merchant_key(value)):  # as sent first, so that the message names what was sent
        odd = next((c for c in text if _hidden(c)), None)
        if odd is not None:
            raise ValueError(f"holds the {_hidden(odd)} character U+{ord(odd):04X}; send the id as printable "
                             "text without it")
    return checked_id(value)


# An identifier field of a request: 1 to 128 characters, also once normalized, not empty.
EntityId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(checked_id)]
# An id a scoring call brings (a listing, merchant, stream or creator): also printable and visible.
ScoredId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(checked_scored_id)]
