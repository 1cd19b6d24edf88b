"""The service's front door, as one ASGI middleware around the BentoML app:

- **bounded input**: scoring and feedback calls must send JSON (415 otherwise) of at most
  ``MAX_BODY_BYTES`` (413, checked on the declared length and on the bytes received);
- **overload sheds instead of queueing**: at most ``max_in_flight`` calls are worked on at
  once per worker; the next ones get ``503`` with ``Retry-After`` and
  ``fallback_decision: review`` at once, never a late ``504``;
- **small error bodies**: a validation error lists its first ``MAX_ERRORS`` errors and the
  total count;
- **honest readiness**: ``/readyz`` is 200 only when every model with a production version
  is loaded, and its body lists each model's state.

Client errors are logged at INFO without a traceback (``ClientErrorLogFilter``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_ERRORS = 20
FALLBACK_DECISION = "review"
GUARDED_PREFIX = "/v1/"
READY_PATH = "/readyz"
OPENAPI_PATH = "/docs.json"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServiceHealth:
    """What ``/readyz`` reports: each model's state, set by the service once it has loaded."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] | None = None  # None: still starting

    def ready(self) -> bool:
        """Every model with a production version is loaded."""
        return self.models is not None and all(
            m["loaded"] for m in self.models.values() if m["production"] is not None)


HEALTH = ServiceHealth()


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Answer with a JSON body straight from ASGI (before or instead of the app)."""
    payload = json.dumps(body, ensure_ascii=False).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _field_error(where: str, field: str, message: str, kind: str) -> dict[str, Any]:
    return {"error": message, "detail": [{"loc": [where, field], "msg": message, "type": kind}]}


def cap_errors(body: dict[str, Any], limit: int = MAX_ERRORS) -> dict[str, Any]:
    """The error body with at most ``limit`` errors listed and the total count."""
    detail = body.get("detail")
    if not isinstance(detail, list):
        return body
    capped = {**body, "detail": [_short(e) for e in detail[:limit]], "errors_total": len(detail)}
    if isinstance(capped.get("error"), str):
        capped["error"] = capped["error"][:200]
    return capped


def _short(error: Any) -> Any:
    """One validation error without the echoed input (which can be megabytes)."""
    if isinstance(error, dict):
        return {k: (str(v)[:300] if k == "msg" else v) for k, v in error.items() if k not in ("input", "ctx", "url")}
    return error


class RequestGuard:
    """The middleware (``ShopGuard.add_asgi_middleware(RequestGuard)``)."""

    max_in_flight = 8  # set by the service from SHOPGUARD_MAX_IN_FLIGHT

    def __init__(self, app: Any) -> None:
        self.app = app
        self._in_flight = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == READY_PATH:
            await self._readyz(send)
            return
        if scope["path"] == OPENAPI_PATH and scope["method"] == "GET":
            await self.app(scope, receive, _OpenApiPatcher(send))
            return
        if scope["method"] != "POST" or not scope["path"].startswith(GUARDED_PREFIX):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await send_json(send, *refusal)
            return
        body = await self._read_body(receive)
        if body is None:
            await send_json(send, 413, _field_error("body", "body", f"the body is over {MAX_BODY_BYTES:,} bytes; send "
                                                f"smaller batches", "too_large"))
            return
        if not self._enter():
            await send_json(send, 503, {"error": "overloaded", "message": "the service is at capacity; retry after "
                                    "the delay given, and treat the items as 'review' meanwhile",
                                    "fallback_decision": FALLBACK_DECISION}, {"Retry-After": "1"})
            return
        try:
            await self.app(scope, _replay(body, receive), _ErrorCapper(send))
        finally:
            self._leave()

    def _refusal(self, scope: Scope) -> tuple[int, dict[str, Any]] | None:
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if content_type != "application/json":
            return 415, _field_error("header", "content-type", f"content-type must be application/json, not "
                                     f"{content_type or 'missing'!r}", "unsupported_media_type")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return 413, _field_error("header", "content-length", f"the body may hold at most {MAX_BODY_BYTES:,} "
                                     "bytes; send smaller batches", "too_large")
        return None

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _enter(self) -> bool:
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @staticmethod
    async def _readyz(send: Send) -> None:
        status = 200 if HEALTH.ready() else 503
        await send_json(send, status, {"ready": status == 200, "models": HEALTH.models or {}})


def _replay(body: bytes, original: Receive) -> Receive:
    """The body already read, then the client's own messages (its disconnect)."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


class _ErrorCapper:
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


ERROR_DETAIL_SCHEMA = {
    "type": "object", "title": "ErrorDetail", "required": ["msg"],
    "properties": {"loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                   "msg": {"type": "string"}, "type": {"type": "string"}},
}
CLIENT_ERROR_SCHEMA = {
    "type": "object", "title": "ClientError",
    "description": "A refused call: ``detail`` names each offending field (the first 20; ``errors_total`` counts all)",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                   "detail": {"anyOf": [{"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
                                        {"type": "string"}]},
                   "errors_total": {"type": "integer"}},
}
UNAVAILABLE_SCHEMA = {
    "type": "object", "title": "Unavailable", "required": ["error", "message", "fallback_decision"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                   "fallback_decision": {"type": "string", "enum": ["review"]}},
}
DOCUMENTED_ERRORS = {
    "400": "invalid input: each error names its field",
    "401": "no or unknown bearer token",
    "403": "the token lacks the route's scope",
    "404": "the entity or request the feedback names was not scored",
    "413": "the body, or a stream's text, is over its limit",
    "415": "the body is not JSON",
    "422": "the feedback's label or segment does not fit the scored entity",
}


def document_errors(openapi: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the error answers the service really gives on each call."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({"ErrorDetail": ERROR_DETAIL_SCHEMA, "ClientError": CLIENT_ERROR_SCHEMA,
                    "Unavailable": UNAVAILABLE_SCHEMA})
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ClientError"}}}
    for path, operations in openapi.get("paths", {}).items():
        post = operations.get("post")
        if post is None or not path.startswith(GUARDED_PREFIX):
            continue
        responses = post.setdefault("responses", {})
        for status, description in DOCUMENTED_ERRORS.items():
            responses[status] = {"description": description, "content": error}
        responses["503"] = {"description": "cannot answer now (model missing, overloaded, storage down): "
                                           "retry after Retry-After and treat the items as 'review'",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Unavailable"}}}}
        responses.pop("500", None)  # a 500 is a bug, never a documented answer
    return openapi


class _OpenApiPatcher:
    """Buffers the OpenAPI document and sends it with ``document_errors`` applied."""

    def __init__(self, send: Send) -> None:
        self._send, self._start, self._chunks = send, None, []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        payload = b"".join(self._chunks)
        with contextlib.suppress(ValueError, TypeError):
            payload = json.dumps(document_errors(json.loads(payload))).encode()
        headers = [(k, v) for k, v in (self._start or {}).get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        await self._send({**(self._start or {"type": "http.response.start", "status": 200}), "headers": headers})
        await self._send({"type": "http.response.body", "body": payload})


class ClientErrorLogFilter(logging.Filter):
    """Turns the server's ERROR + traceback for a client's bad input into one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_client_error(error):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.getMessage()}: rejected bad input ({type(error).__name__})"
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
