"""The root of every error ShopGuard raises on purpose."""

from __future__ import annotations


class ShopGuardError(Exception):
    """Base class of all ShopGuard errors. Messages say what happened and what to do."""


class InvalidInputError(ShopGuardError):
    """Input data a user supplied is wrong. ``field`` names the offending field or column."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
