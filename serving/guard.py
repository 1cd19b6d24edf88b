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
- **small error bodies** (``serving/error_answers.py``), **honest readiness**
  (``serving/health.py``) and the **documented errors** of ``/docs.json``
  (``serving/openapi_errors.py``) are answered here too, each by its own module.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from serving.admission import CURRENT, Admission
from serving.error_answers import ErrorCapper, field_error, send_json, send_unavailable
from serving.health import HEALTH, HEALTH_PATHS, READY_PATH
from serving.openapi_errors import GUARDED_PREFIX, OPENAPI_PATH, OpenApiPatcher

MAX_BODY_BYTES = 10 * 1024 * 1024
TIMED_OUT, DISCONNECTED, TOO_LARGE = "timed_out", "disconnected", "too_large"
logger = logging.getLogger("shopguard.guard")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


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
            await self.app(scope, receive, OpenApiPatcher(send))
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
            await send_json(send, 413, field_error("body", "body", f"the body is over {MAX_BODY_BYTES:,} bytes; "
                                                    "send smaller batches", "too_large"))
            return
        if body == TIMED_OUT:
            logger.info("%s %s: body not received within %g s; answered 408", scope["method"], scope["path"],
                        self.body_timeout_seconds)
            await send_json(send, 408, field_error("body", "body", f"the body did not arrive within "
                                                    f"{self.body_timeout_seconds:g} s; send it at once",
                                                    "timeout"), {"Connection": "close"})
            return
        if body == DISCONNECTED:  # nobody to answer; still an answer, or BentoML's timeout waits for one
            await send_json(send, 400, field_error("body", "body", "the connection closed before the whole "
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
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if content_type != "application/json":
            return 415, field_error("header", "content-type", f"content-type must be application/json, not "
                                     f"{content_type or 'missing'!r}", "unsupported_media_type")
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return 413, field_error("header", "content-length", f"the body may hold at most {MAX_BODY_BYTES:,} "
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
