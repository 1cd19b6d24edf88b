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


# An identifier field of a request: 1 to 128 characters, also once normalized, not empty.
EntityId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(checked_id)]
