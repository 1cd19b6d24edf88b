"""The service's front door, as one ASGI middleware around the BentoML app:

- **bounded input on every route**: scoring and feedback calls must send JSON (415 otherwise)
  of at most ``MAX_BODY_BYTES``; any other body (the console's forms) at most
  ``MAX_FORM_BYTES`` (413, checked on the declared length and on the bytes received); every
  body must arrive whole within ``body_timeout_seconds`` (``408`` otherwise: a slow or
  stalled client cannot hold its connection longer). Headers are bounded before any of this
  (``serving/protocol_errors.py``: 431);
- **overload sheds instead of queueing**: at most ``max_open_requests`` calls are open at
  once per worker and at most ``max_in_flight`` are worked on; the next ones get ``503`` with
  ``Retry-After`` and ``fallback_decision: review`` at once. When the open calls are full,
  the oldest body still arriving for over ``SLOW_BODY_SECONDS`` is cut (``408``) to make room:
  a thousand slow clients cannot keep scoring calls out. BentoML's own concurrency limit (an
  undocumented ``429``) is off: this guard is the only one, so slow clients cannot use up a
  limit before it answers;
- **a time budget per call** (``budget_seconds``): a call not answered by then gets ``503``
  with the fallback and its work is **cancelled**, not abandoned (``serving/admission.py``):
  the work stops at its next checkpoint, stores no decision, and holds its in-flight slot
  until it has stopped. A caller that disconnects cancels its work the same way. Never a
  ``504``;
- **small error bodies** (``serving/error_answers.py``), **honest readiness**
  (``serving/health.py``) and the **documented errors** of ``/docs.json``
  (``serving/openapi_errors.py``) are answered here too, each by its own module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from serving.admission import CURRENT, Admission
from serving.error_answers import (
    QUIET_LOG,
    ErrorCapper,
    JsonRoutingErrors,
    field_error,
    send_json,
    send_unavailable,
)
from serving.health import HEALTH_PATHS, READY_PATH, ServiceHealth
from serving.openapi_errors import GUARDED_PREFIX, OPENAPI_PATH, OpenApiPatcher

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_FORM_BYTES = 64 * 1024  # the console's largest form (a verdict with a 4,000-character note) is a few KiB
SLOW_BODY_SECONDS = 1.0  # a body arriving for longer may be cut to make room for other calls
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TIMED_OUT, DISCONNECTED, TOO_LARGE = "timed_out", "disconnected", "too_large"
logger = logging.getLogger("shopguard.guard")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(key)
        found[key] = value
    return found


def repeated_key(body: bytes) -> str | None:
    """The first key a JSON body gives twice in one object, else None (a body that is not JSON
    is left to the API's own answer). JSON parsers keep the last value of a repeated key, so
    the service and a proxy or log reading the first would see two different requests."""
    try:
        json.loads(body, object_pairs_hook=_pairs_once)
    except _RepeatedKey as exc:
        return exc.key
    except (ValueError, RecursionError):
        return None
    return None


class RequestGuard:
    """The middleware, its limits given as options:
    ``ShopGuard.add_asgi_middleware(RequestGuard, max_in_flight=..., ...)`` (the service passes
    ``SHOPGUARD_MAX_IN_FLIGHT``, ``_MAX_OPEN_REQUESTS``, ``_BODY_TIMEOUT_SECONDS`` and
    ``_REQUEST_BUDGET_SECONDS``)."""

    def __init__(self, app: Any, *, max_in_flight: int = 8, max_open_requests: int = 1024,
                 body_timeout_seconds: float = 15.0, budget_seconds: float = 30.0,
                 health: ServiceHealth | None = None) -> None:
        self.app = app
        self.health = health if health is not None else ServiceHealth()  # what /readyz reports
        self.max_in_flight, self.max_open_requests = max_in_flight, max_open_requests
        self.body_timeout_seconds, self.budget_seconds = body_timeout_seconds, budget_seconds
        self._in_flight = 0
        self._open = 0
        self._lock = threading.Lock()
        self._arriving: dict[int, tuple[float, asyncio.Timeout]] = {}  # bodies being read, oldest first

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
        if scope["path"].startswith(GUARDED_PREFIX) or scope["path"] == GUARDED_PREFIX.rstrip("/"):
            # the API (and /v1 itself): its routing errors in its JSON shape
            send = JsonRoutingErrors(send, scope)
        if scope["path"] == OPENAPI_PATH and scope["method"] == "GET":
            await self.app(scope, receive, OpenApiPatcher(send))
        elif scope["method"] == "POST" and scope["path"].startswith(GUARDED_PREFIX):
            await self._guarded(scope, receive, send)
        elif scope["method"] in BODY_METHODS or _declares_body(scope):
            await self._bounded(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any other call with a body (the console's forms): read whole, within the body
        timeout and ``MAX_FORM_BYTES``, before the app sees it."""
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
            await send_json(send, 413, field_error(413, ["header", "content-length"], f"a form holds at most "
                                                    f"{MAX_FORM_BYTES:,} bytes", "too_large"), {"Connection": "close"})
            return
        body = await self._read_body(receive, MAX_FORM_BYTES)
        if isinstance(body, bytes):
            gone = asyncio.Event()
            try:
                await self.app(scope, _replay(body, gone), send)
            finally:
                gone.set()
        else:  # a disconnect too is answered: BentoML's timeout would otherwise wait for an answer
            await self._refuse_body(scope, send, body, MAX_FORM_BYTES)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope)
        if refusal is not None:
            await send_json(send, *refusal)
            return
        body = await self._read_body(receive, MAX_BODY_BYTES)
        if not isinstance(body, bytes):
            await self._refuse_body(scope, send, body, MAX_BODY_BYTES)
            return
        repeated = repeated_key(body)
        if repeated is not None:
            await send_json(send, 400, field_error(400, ["body", repeated], f"the key {repeated!r} is given twice in "
                                                    "one object; give each key once", "duplicate_key"))
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
        reply = _Reply(ErrorCapper(send))
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
        content_type, *parameters = headers.get(b"content-type", b"").decode("latin-1").split(";")
        content_type = content_type.strip().lower()
        if content_type != "application/json":
            return 415, field_error(415, ["header", "content-type"], f"content-type must be application/json, not "
                                     f"{content_type or 'missing'!r}", "unsupported_media_type")
        charset = next((v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in parameters)
                        if k.strip().lower() == "charset"), "utf-8")
        if charset not in ("utf-8", "utf8", "us-ascii", "ascii"):  # ASCII is UTF-8
            return 415, field_error(415, ["header", "content-type"], f"the body must be UTF-8 JSON, not charset "
                                     f"{charset!r}", "unsupported_media_type")
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if encoding not in ("", "identity"):
            return 415, field_error(415, ["header", "content-encoding"], f"send the body uncompressed, not "
                                     f"{encoding!r}", "unsupported_media_type")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return 413, field_error(413, ["header", "content-length"], f"the body may hold at most {MAX_BODY_BYTES:,} "
                                     "bytes; send smaller batches", "too_large")
        return None

    async def _refuse_body(self, scope: Scope, send: Send, why: str, limit: int) -> None:
        """The answer to a body that did not arrive whole: 413, 408, or (disconnected) a short
        400 nobody reads, since BentoML's timeout would otherwise wait for an answer."""
        if why == TOO_LARGE:
            await send_json(send, 413, field_error(413, ["body"], f"the body is over {limit:,} bytes; "
                                                    "send smaller batches", "too_large"), {"Connection": "close"})
        elif why == TIMED_OUT:
            slow_body(scope, self.body_timeout_seconds)
            await send_json(send, 408, field_error(408, ["body"], f"the body did not arrive within "
                                                    f"{self.body_timeout_seconds:g} s; send it at once",
                                                    "timeout"), {"Connection": "close"})
        else:
            client_gone(scope)
            await send_json(send, 400, field_error(400, ["body"], "the connection closed before the whole "
                                                    "body arrived", "incomplete"))

    async def _read_body(self, receive: Receive, limit: int) -> bytes | str:
        """The whole body, or why not: ``TOO_LARGE`` (over ``limit`` bytes), ``TIMED_OUT`` (not
        all there within ``body_timeout_seconds``, or cut to make room), ``DISCONNECTED``."""
        chunks, size = [], 0
        key = id(chunks)
        try:
            async with asyncio.timeout(self.body_timeout_seconds) as timeout:
                self._arriving[key] = (asyncio.get_running_loop().time(), timeout)
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return DISCONNECTED
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        return TOO_LARGE
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        return b"".join(chunks)
        except TimeoutError:
            return TIMED_OUT
        finally:
            self._arriving.pop(key, None)

    def _open_request(self) -> bool:
        with self._lock:
            if self._open >= self.max_open_requests and not self._cut_slowest_body():
                return False
            self._open += 1
            return True

    def _cut_slowest_body(self) -> bool:
        """Make the oldest body arriving for over ``SLOW_BODY_SECONDS`` time out now (it is
        answered 408 and its call closes); False when none is that slow."""
        loop_time = asyncio.get_running_loop().time()
        for key, (started, timeout) in self._arriving.items():
            if loop_time - started < SLOW_BODY_SECONDS:
                return False  # the oldest is recent: so are the others
            del self._arriving[key]
            timeout.reschedule(loop_time)
            return True
        return False

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

    async def _readyz(self, send: Send) -> None:
        ready, body = self.health.report()
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


def _declares_body(scope: Scope) -> bool:
    headers = dict(scope.get("headers") or [])
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") not in (b"0", b"")


def client_gone(scope: Scope) -> None:
    """A caller that left before its body arrived: one short line, at most one a minute."""
    QUIET_LOG.note("client-gone", "%s %s: the caller disconnected before its body arrived", scope["method"],
                   scope["path"])


def slow_body(scope: Scope, seconds: float) -> None:
    """A body cut for taking too long: one short line, at most one a minute."""
    QUIET_LOG.note("slow-body", "%s %s: body not received within %g s (or cut for a faster call); answered 408",
                   scope["method"], scope["path"], seconds)




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
