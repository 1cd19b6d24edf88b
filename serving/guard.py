"""The service's front door, as one ASGI middleware around the BentoML app:

- **bounded input**: scoring and feedback calls must send JSON (415 otherwise) of at most
  ``MAX_BODY_BYTES`` (413, checked on the declared length and on the bytes received), and
  the whole body within ``body_timeout_seconds`` (``408`` otherwise: a slow or stalled
  client cannot hold its connection longer);
- **overload sheds instead of queueing**: at most ``max_open_requests`` calls are open at
  once per worker (bodies still arriving included) and at most ``max_in_flight`` are worked
  on; the next ones get ``503`` with ``Retry-After`` and ``fallback_decision: review`` at
  once. BentoML's own concurrency limit (an undocumented ``429``) is off: this guard is the
  only one, so slow clients cannot use up a limit before it answers;
- **a time budget per call** (``budget_seconds``): a call not answered by then gets ``503``
  with the fallback and its work is **cancelled**, not abandoned (``serving/admission.py``):
  the work stops at its next checkpoint, stores no decision, and holds its in-flight slot
  until it has stopped. A caller that disconnects cancels its work the same way. Never a
  ``504``;
- **small error bodies**: a validation error lists its first ``MAX_ERRORS`` errors and the
  total count;
- **honest readiness**: ``/readyz`` is 200 only when every model with a production version
  is loaded and the decision-log writer runs, and its body lists each one's state.

Client errors are logged at INFO without a traceback (``ClientErrorLogFilter``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from model_registry.policy import FALLBACK_DECISION
from serving.admission import CURRENT, Admission

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_ERRORS = 20
GUARDED_PREFIX = "/v1/"
READY_PATH = "/readyz"
OPENAPI_PATH = "/docs.json"
HEALTH_PATHS = frozenset({READY_PATH, "/livez", "/healthz"})
TIMED_OUT, DISCONNECTED, TOO_LARGE = "timed_out", "disconnected", "too_large"
logger = logging.getLogger("shopguard.guard")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServiceHealth:
    """What ``/readyz`` reports: each model's state, set by the service once it has loaded,
    and the decision-log writer's (``decision_log``: a probe returning its ``health()``)."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] | None = None  # None: still starting
        self.decision_log: Callable[[], dict[str, Any]] | None = None

    def report(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service is ready, and the body of ``/readyz``: every model with a
        production version is loaded and the decision-log writer runs."""
        models_ready = self.models is not None and all(
            m["loaded"] for m in self.models.values() if m["production"] is not None)
        body: dict[str, Any] = {"models": self.models or {}}
        log_ready = True
        if self.decision_log is not None:
            body["decision_log"] = self.decision_log()
            log_ready = bool(body["decision_log"]["running"])
        ready = models_ready and log_ready
        return ready, {"ready": ready, **body}

    def ready(self) -> bool:
        """Every model with a production version is loaded and decisions can be stored."""
        return self.report()[0]


HEALTH = ServiceHealth()


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
    """The middleware (``ShopGuard.add_asgi_middleware(RequestGuard)``); its limits are set by
    the service from the settings."""

    max_in_flight = 8  # SHOPGUARD_MAX_IN_FLIGHT
    max_open_requests = 1024  # SHOPGUARD_MAX_OPEN_REQUESTS
    body_timeout_seconds = 15.0  # SHOPGUARD_BODY_TIMEOUT_SECONDS
    budget_seconds = 30.0  # SHOPGUARD_REQUEST_BUDGET_SECONDS

    def __init__(self, app: Any) -> None:
        self.app = app
        self._in_flight = 0
        self._open = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == READY_PATH:
            await self._readyz(send)
            return
        if scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        if not self._open_request():
            await send_unavailable(send, "overloaded", f"the service has {self.max_open_requests:,} calls open",
                                   close=True)
            return
        try:
            await self._route(scope, receive, send)
        finally:
            self._close_request()

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == OPENAPI_PATH and scope["method"] == "GET":
            await self.app(scope, receive, _OpenApiPatcher(send))
        elif scope["method"] != "POST" or not scope["path"].startswith(GUARDED_PREFIX):
            await self.app(scope, receive, send)
        else:
            await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope)
        if refusal is not None:
            await send_json(send, *refusal)
            return
        body = await self._read_body(receive)
        if body == TOO_LARGE:
            await send_json(send, 413, _field_error("body", "body", f"the body is over {MAX_BODY_BYTES:,} bytes; "
                                                    "send smaller batches", "too_large"))
            return
        if body == TIMED_OUT:
            logger.info("%s %s: body not received within %g s; answered 408", scope["method"], scope["path"],
                        self.body_timeout_seconds)
            await send_json(send, 408, _field_error("body", "body", f"the body did not arrive within "
                                                    f"{self.body_timeout_seconds:g} s; send it at once",
                                                    "timeout"), {"Connection": "close"})
            return
        if body == DISCONNECTED:  # nobody to answer; still an answer, or BentoML's timeout waits for one
            await send_json(send, 400, _field_error("body", "body", "the connection closed before the whole "
                                                    "body arrived", "incomplete"))
            return
        if not self._enter():
            await send_unavailable(send, "overloaded", "the service is at capacity")
            return
        await self._work(scope, body, receive, send)

    async def _work(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """Run the app within the call's time budget; the in-flight slot is released when the
        app's work ends, which may be after this call has answered."""
        admission = Admission(self.budget_seconds)
        gone = asyncio.Event()
        reply = _Reply(_ErrorCapper(send))
        token = CURRENT.set(admission)  # copied into the work's task and its API thread
        try:
            task = asyncio.ensure_future(self.app(scope, _replay(body, gone), reply))
        finally:
            CURRENT.reset(token)
        task.add_done_callback(self._work_done)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, admission, gone))
        try:
            finished, _ = await asyncio.wait({task}, timeout=admission.remaining())
            if not finished and not reply.started and admission.abandon(
                    f"its time budget of {self.budget_seconds:g} s ran out"):
                reply.closed = True
                logger.warning("%s %s: not answered within the time budget of %g s; answered 503 with the "
                               "fallback, its work is cancelled and its decisions are not stored",
                               scope["method"], scope["path"], self.budget_seconds)
                await send_unavailable(send, "time_budget_exceeded", f"the call could not be answered within "
                                       f"its time budget of {self.budget_seconds:g} s (send smaller batches)")
                return
            await asyncio.shield(task)  # the answer is on its way (its decisions are being stored)
        finally:
            watcher.cancel()
            gone.set()  # the call is over for this side: a later receive() of the work ends at once

    def _work_done(self, task: asyncio.Future[Any]) -> None:
        self._leave()
        if not task.cancelled() and task.exception() is not None:  # retrieved: raised to uvicorn if awaited
            logger.debug("work ended with %r", task.exception())

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

    async def _read_body(self, receive: Receive) -> bytes | str:
        """The whole body, or why not: ``TOO_LARGE``, ``TIMED_OUT`` (not all there within
        ``body_timeout_seconds``), ``DISCONNECTED``."""
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return DISCONNECTED
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        return TOO_LARGE
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        return b"".join(chunks)
        except TimeoutError:
            return TIMED_OUT

    def _open_request(self) -> bool:
        with self._lock:
            if self._open >= self.max_open_requests:
                return False
            self._open += 1
            return True

    def _close_request(self) -> None:
        with self._lock:
            self._open -= 1

    def _enter(self) -> bool:
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def in_flight(self) -> int:
        """Calls whose work has not ended."""
        return self._in_flight

    @staticmethod
    async def _readyz(send: Send) -> None:
        ready, body = HEALTH.report()
        await send_json(send, 200 if ready else 503, body)


async def _watch_disconnect(receive: Receive, admission: Admission, gone: asyncio.Event) -> None:
    """Cancel the call's work when its caller disconnects before the answer."""
    while (await receive())["type"] != "http.disconnect":
        pass
    admission.abandon("the caller disconnected")
    gone.set()


class _Reply:
    """Passes the app's answer on until the front door answered instead (``closed``)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.closed = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _replay(body: bytes, gone: asyncio.Event) -> Receive:
    """The body already read, then the client's disconnect once it happens."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

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
    "400": "invalid input, an unknown field, or an id given twice: each error names its field",
    "401": "no or unknown bearer token",
    "403": "the token lacks the route's scope",
    "404": "the entity or request the feedback names was not scored",
    "408": "the body did not arrive within the read timeout (SHOPGUARD_BODY_TIMEOUT_SECONDS)",
    "413": "the body, or a stream's text, is over its limit",
    "415": "the body is not JSON",
    "422": "the feedback's label or segment does not fit the scored entity",
}


UNAVAILABLE_DESCRIPTION = (
    "cannot answer now: model missing, overloaded (too many calls open or in flight), the call's time "
    "budget ran out, or decisions cannot be stored. Retry after Retry-After and treat the items as "
    "'review' meanwhile. The service never answers 429 or 504.")
RETRY_AFTER_HEADER = {"Retry-After": {"description": "seconds to wait before retrying",
                                      "schema": {"type": "integer"}}}


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
        responses["503"] = {"description": UNAVAILABLE_DESCRIPTION, "headers": RETRY_AFTER_HEADER,
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
