"""Counts in words: ``1 row``, ``2 rows``, ``1,500 verdicts``."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` with ``noun`` in the number it takes (thousands separated): ``1 row``,
    ``0 rows``, ``2 validation errors``; ``plural`` for a noun not made plural by ``s``."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
