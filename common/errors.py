"""The root of every error ShopGuard raises on purpose, and the one shape of the API's 4xx bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ShopGuardError(Exception):
    """Base class of all ShopGuard errors. Messages say what happened and what to do."""


class InvalidInputError(ShopGuardError):
    """Input data a user supplied is wrong. ``field`` names the offending field or column."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# The ``error`` code of a 4xx answer by status, where its producer names none more precise.
ERROR_CODES: dict[int, str] = {
    400: "invalid_input", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 408: "request_timeout",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "unprocessable",
    431: "request_header_fields_too_large",
}


def error_body(status: int, loc: str | Sequence[str | int], message: str, kind: str | None = None,
               error: str | None = None, **extra: Any) -> dict[str, Any]:
    """The body of every 4xx answer of the API: ``error`` (a code: ``ERROR_CODES[status]``
    unless ``error`` names one), ``message``, and ``detail``, a list of objects each naming the
    field at fault in ``loc`` (its path in the body, as validation errors name it, e.g.
    ``["segments"]`` or ``["listings", 0, "price"]``; a query or path parameter by its name;
    ``["body"]`` for the body as a whole; ``["header", NAME]`` for a header) with ``msg`` and
    ``type`` (``kind``, else the code). ``extra``: fields a route kept from before."""
    code = error or ERROR_CODES.get(status, "invalid_input")
    path = [loc] if isinstance(loc, str) else list(loc)
    return {"error": code, "message": message, **extra,
            "detail": [{"loc": path, "msg": message, "type": kind or code}]}
