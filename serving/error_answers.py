"""The front door's own answers and small error bodies: JSON straight from ASGI, ``503`` with
the fallback, validation errors capped at their first ``MAX_ERRORS`` (with the total count),
and client errors logged at INFO without a traceback (``ClientErrorLogFilter``)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import ERROR_CODES, error_body
from common.words import counted
from policy.calls import FALLBACK_DECISION

MAX_ERRORS = 20
# BentoML answers "2 validation error for Input" whatever the count.
_COUNTED_ERRORS = re.compile(r"^(\d+) validation errors? for ")
_ERROR_CODE = re.compile(r"[a-z][a-z_]*")  # an error code, not a sentence
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Answer with a JSON body straight from ASGI (before or instead of the app)."""
    payload = json.dumps(body, ensure_ascii=False).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def send_unavailable(send: Send, error: str, message: str, close: bool = False) -> None:
    """``503`` with ``Retry-After`` and ``fallback_decision: review``: every answer that
    refuses a call for load, a time budget or storage."""
    headers = {"Retry-After": "1", **({"Connection": "close"} if close else {})}
    await send_json(send, 503, {"error": error, "message": f"{message}; retry after the delay given, and treat "
                                "the items as 'review' meanwhile", "fallback_decision": FALLBACK_DECISION}, headers)


def field_error(status: int, loc: list[str], message: str, kind: str) -> dict[str, Any]:
    """An error body naming the header or the body at fault (``common.errors.error_body``)."""
    return error_body(status, loc, message, kind)


def cap_errors(body: dict[str, Any], limit: int = MAX_ERRORS) -> dict[str, Any]:
    """The error body with at most ``limit`` errors listed and the total count."""
    detail = body.get("detail")
    if not isinstance(detail, list):
        return body
    capped = {**body, "detail": [_short(e) for e in detail[:limit]], "errors_total": len(detail)}
    summary = capped.get("message") or capped.get("error")
    if isinstance(summary, str) and not _ERROR_CODE.fullmatch(summary):
        # BentoML's validation answer carries pydantic's summary as ``error``: the summary becomes
        # the message and ``error`` the code, as in every other 4xx answer.
        capped["message"] = _COUNTED_ERRORS.sub(lambda m: counted(int(m[1]), "validation error") + " for ",
                                                summary)[:200]
    code = capped.get("error")
    if not (isinstance(code, str) and _ERROR_CODE.fullmatch(code)):
        capped["error"] = ERROR_CODES[400]  # a route's own code (a 422's unprocessable) is kept
    return capped


def _short(error: Any) -> Any:
    """One validation error without the echoed input (which can be megabytes); an error of the
    whole body (pydantic's empty ``loc``: not JSON, not an object) names ``["body"]``."""
    if isinstance(error, dict):
        short = {k: (str(v)[:300] if k == "msg" else v) for k, v in error.items() if k not in ("input", "ctx", "url")}
        return {**short, "loc": ["body"]} if short.get("loc") == [] else short
    return error


class ErrorCapper:
    """Passes responses through; a 400/422 JSON body is capped (first errors + count)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: dict[str, Any] | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] in (400, 422):
            self._start = message
            return
        if self._start is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        payload = b"".join(self._chunks)
        with contextlib.suppress(ValueError, TypeError):
            payload = json.dumps(cap_errors(json.loads(payload)), ensure_ascii=False).encode()
        headers = [(k, v) for k, v in self._start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        await self._send({**self._start, "headers": headers})
        await self._send({"type": "http.response.body", "body": payload})


def query_refusal(request: Any, known: set[str]) -> Any:
    """A ``400`` JSON response naming a query parameter the route does not take, or one given
    twice (never ignored, never the last one kept); None when the query is fine."""
    from starlette.responses import JSONResponse

    names = [name for name, _ in request.query_params.multi_items()]
    unknown = sorted(set(names) - known)
    if unknown:
        message = f"unknown parameter {unknown[0]!r}" + (f"; use {', '.join(sorted(known))}" if known else "")
        return JSONResponse(error_body(400, unknown[0], message), status_code=400)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return JSONResponse(error_body(400, repeated[0], f"{repeated[0]!r} is given more than once"), status_code=400)
    return None


class JsonRoutingErrors:
    """Passes responses through; the router's own plain-text ``404`` (no such path: ``loc`` ``["url"]``) and
    ``405`` (a method the path does not take) of an API call become the API's JSON error
    shape, naming the path or the method (``Allow`` kept)."""

    def __init__(self, send: Send, scope: dict[str, Any]) -> None:
        self._send, self._scope = send, scope
        self._start: dict[str, Any] | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] in (404, 405) and not any(
                k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in message["headers"]):
            self._start = message
            return
        if self._start is None:
            await self._send(message)
            return
        if message["type"] != "http.response.body" or message.get("more_body"):
            return  # the plain-text body, dropped
        start, method, path = self._start, self._scope.get("method", ""), self._scope.get("path", "")
        allowed = next((v.decode() for k, v in start["headers"] if k.lower() == b"allow"), None)
        if start["status"] == 405:
            body = error_body(405, ["method"], f"{method} is not allowed on {path}"
                              + (f"; it takes {allowed}" if allowed else ""), error="method_not_allowed")
        else:
            body = error_body(404, ["url"], f"no endpoint {path}; the API's paths are listed at /docs")
        payload = json.dumps(body, ensure_ascii=False).encode()
        kept = [(k, v) for k, v in start["headers"] if k.lower() not in (b"content-type", b"content-length")]
        headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await self._send({**start, "headers": headers})  # the app's other headers (Allow, ids) kept
        await self._send({"type": "http.response.body", "body": payload})


class ClientErrorLogFilter(logging.Filter):
    """Turns the server's ERROR + traceback for a client's bad input into one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_client_error(error):
            record.levelno, record.levelname = logging.INFO, "INFO"
            if hasattr(record, "levelname_bracketed"):  # BentoML's trace filter ran first
                record.levelname_bracketed = "[INFO]"
            where = record.getMessage().removeprefix("Exception on ")
            record.msg = f"{where}: client error, answered 4xx ({type(error).__name__})"
            record.args = ()
            record.exc_info, record.exc_text = None, None
        return True


def _is_client_error(error: BaseException) -> bool:
    from pydantic import ValidationError

    status = getattr(error, "status_code", None) or getattr(error, "error_code", None)
    status = int(status) if isinstance(status, int) or (isinstance(status, str) and status.isdigit()) else None
    return isinstance(error, ValidationError) or (status is not None and 400 <= status < 500)


def install_log_filter() -> None:
    """Add the filter to every handler that could print a client error's traceback."""
    log_filter = ClientErrorLogFilter()
    for name in ("", "bentoml", "bentoml.serve"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, ClientErrorLogFilter) for f in handler.filters):
                handler.addFilter(log_filter)


class QuietLog:
    """Log lines that a client can cause by the thousand, at most one per kind and
    ``every_seconds``, with the number left out since the last."""

    def __init__(self, every_seconds: float = 60.0) -> None:
        self.every_seconds = every_seconds
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def note(self, kind: str, message: str, *args: Any, logger_name: str = "shopguard.guard",
             level: int = logging.INFO) -> None:
        """Log ``message`` at ``level`` unless a line of ``kind`` was logged within ``every_seconds``."""
        now = time.monotonic()
        if now - self._last.get(kind, -math.inf) < self.every_seconds:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        skipped = self._skipped.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({skipped:,} more since the last such line)" if skipped else ""
        logging.getLogger(logger_name).log(level, message + suffix, *args)


QUIET_LOG = QuietLog()
