"""The front door (``RequestGuard``) around a small ASGI app standing in for BentoML's: slow
bodies are cut off, load is refused with 503 + Retry-After + the fallback, and a call whose
time budget runs out is answered 503 while its work is cancelled and keeps its slot until
it stops."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from serving.admission import BudgetExceeded, claim_answer, current_admission
from serving.error_answers import send_unavailable
from serving.guard import RequestGuard

HEADERS = [(b"content-type", b"application/json")]


def _scope(path: str = "/v1/listings/score") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": HEADERS}


class Client:
    """One call's receive (body chunks, then optionally a disconnect) and what it was sent."""

    def __init__(self, chunks: list[bytes], delay: float = 0.0, disconnect_after: float | None = None,
                 truncated: bool = False) -> None:
        self.chunks, self.delay, self.disconnect_after = list(chunks), delay, disconnect_after
        self.truncated = truncated  # the body stops short: more_body stays true
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.chunks:
            await asyncio.sleep(self.delay)
            chunk = self.chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks) or self.truncated}
        if self.disconnect_after is None:
            await asyncio.Event().wait()  # the caller waits for its answer
        await asyncio.sleep(self.disconnect_after)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(next(m["headers"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


def _answering_app(work_seconds: float, log: list[str], first_checkpoint: float = 0.0) -> Any:
    """An app whose work runs in a thread (as BentoML runs a sync API), checks its budget
    between steps (the first check after ``first_checkpoint`` seconds: a step that cannot be
    interrupted, such as one model batch), claims its answer and 'stores' a decision, then
    answers 200."""

    def work() -> None:
        admission = current_admission()
        time.sleep(first_checkpoint)
        for _ in range(int(work_seconds / 0.02)):
            if admission is not None and admission.cancelled():
                log.append("cancelled")
                raise BudgetExceeded("cancelled")
            time.sleep(0.02)
        claim_answer()
        log.append("stored")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        try:
            await asyncio.to_thread(work)  # copies the context, as anyio does
        except BudgetExceeded:
            # As the service does (serving.service.budget_exceeded): the work may notice the end of
            # its budget before the front door's timer fires; the caller gets the same answer.
            await send_unavailable(send, "time_budget_exceeded", "the call was cancelled")
            log.append("answered 503")
            return
        payload = json.dumps({"ok": True}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
        log.append("answered 200")

    return app


def _guard(app: Any, **limits: Any) -> RequestGuard:
    guard = RequestGuard(app)
    for name, value in limits.items():
        setattr(guard, name, value)
    return guard


def test_a_slow_body_is_cut_off_with_408_naming_the_body() -> None:
    guard = _guard(_answering_app(0, []), body_timeout_seconds=0.3)
    client = Client([b"{", b'"a"', b": 1}"], delay=0.2)  # one byte every 0.2 s: over 0.3 s in all
    started = time.monotonic()
    asyncio.run(guard(_scope(), client.receive, client.send))
    assert client.status == 408 and time.monotonic() - started < 1
    assert client.body["detail"][0]["loc"] == ["body"]
    assert client.headers[b"connection"] == b"close"
    assert guard._open == 0 and guard.in_flight() == 0


def test_calls_over_the_open_limit_get_503_with_retry_after_and_the_fallback() -> None:
    guard = _guard(_answering_app(0, []), body_timeout_seconds=2, max_open_requests=2)

    async def scenario() -> Client:
        slow = [Client([b"{}", b""], delay=1.0) for _ in range(2)]  # hold both open slots
        tasks = [asyncio.ensure_future(guard(_scope(), c.receive, c.send)) for c in slow]
        await asyncio.sleep(0.1)
        refused = Client([b"{}"])
        await guard(_scope(), refused.receive, refused.send)
        await asyncio.gather(*tasks)
        return refused

    refused = asyncio.run(scenario())
    assert refused.status == 503 and refused.headers[b"retry-after"] == b"1"
    assert refused.body["fallback_decision"] == "review" and refused.body["error"] == "overloaded"


def test_a_call_over_its_budget_is_answered_503_and_its_work_cancelled_holding_its_slot() -> None:
    log: list[str] = []
    # The work's first checkpoint comes after the budget: the front door answers, and the work,
    # still running, holds its slot until that checkpoint stops it.
    guard = _guard(_answering_app(5.0, log, first_checkpoint=0.8), budget_seconds=0.3, max_in_flight=1)

    async def scenario() -> tuple[Client, Client, float, list[str]]:
        late = Client([b"{}"])
        started = time.monotonic()
        await guard(_scope(), late.receive, late.send)
        answered_after = time.monotonic() - started
        shed = Client([b"{}"])
        await guard(_scope(), shed.receive, shed.send)  # the cancelled work still holds the only slot
        while guard.in_flight():
            await asyncio.sleep(0.01)
        return late, shed, answered_after, list(log)

    late, shed, answered_after, seen = asyncio.run(scenario())
    assert late.status == 503 and late.body["error"] == "time_budget_exceeded"
    assert late.body["fallback_decision"] == "review" and late.headers[b"retry-after"] == b"1"
    assert 0.25 < answered_after < 1.0
    assert shed.status == 503 and shed.body["error"] == "overloaded"
    assert seen == ["cancelled", "answered 503"]  # stopped at its next checkpoint; nothing stored
    assert [m for m in late.sent if m["type"] == "http.response.start"] == [late.sent[0]]  # one answer only


def test_work_that_claimed_its_answer_is_delivered_even_past_the_budget() -> None:
    log: list[str] = []

    def work() -> None:
        claim_answer()  # decisions are being stored: the answer will be sent
        time.sleep(0.5)
        log.append("stored")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.to_thread(work)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = _guard(app, budget_seconds=0.2)
    client = Client([b"{}"])
    asyncio.run(guard(_scope(), client.receive, client.send))
    assert client.status == 200 and log == ["stored"]


def test_a_caller_that_disconnects_cancels_its_work() -> None:
    log: list[str] = []
    guard = _guard(_answering_app(5.0, log), budget_seconds=30)

    async def scenario() -> None:
        client = Client([b"{}"], disconnect_after=0.2)
        await guard(_scope(), client.receive, client.send)
        while guard.in_flight():
            await asyncio.sleep(0.01)

    started = time.monotonic()
    asyncio.run(scenario())
    assert "cancelled" in log and "stored" not in log
    assert time.monotonic() - started < 2


def test_claiming_after_the_deadline_refuses_to_store() -> None:
    from serving.admission import CURRENT, Admission

    admission = Admission(0.2)
    token = CURRENT.set(admission)
    try:
        time.sleep(0.25)
        assert admission.cancelled()
        with pytest.raises(BudgetExceeded, match="time budget"):
            claim_answer()
        assert admission.abandon("late") is True
    finally:
        CURRENT.reset(token)
    fresh = Admission(5)
    fresh.claim_answer()
    assert fresh.abandon("too late") is False and not fresh.cancelled()


def test_an_abandoned_call_whose_app_listens_for_disconnect_still_frees_its_slot() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(0.4)  # past the budget
        assert (await receive())["type"] == "http.disconnect"  # as a streaming response listens
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = _guard(app, budget_seconds=0.1)

    async def scenario() -> float:
        client = Client([b"{}"])
        await guard(_scope(), client.receive, client.send)
        assert client.status == 503
        started = time.monotonic()
        while guard.in_flight():
            await asyncio.sleep(0.01)
            assert time.monotonic() - started < 3, "the slot was never freed"
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1


def test_a_caller_gone_before_its_body_is_complete_still_gets_an_answer() -> None:
    """BentoML's timeout middleware waits for a first message: without one, the call would
    linger until that timeout and hold up the worker's shutdown."""
    guard = _guard(_answering_app(0, []), body_timeout_seconds=5)
    client = Client([b'{"listings": ['], disconnect_after=0.05, truncated=True)
    started = time.monotonic()
    asyncio.run(guard(_scope(), client.receive, client.send))
    assert client.status == 400 and client.body["detail"][0]["type"] == "incomplete"
    assert time.monotonic() - started < 1 and guard.in_flight() == 0


FORM = {"type": "http", "method": "POST", "path": "/console/signin",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")]}


def test_every_route_has_the_body_limits_forms_included() -> None:
    from serving.guard import MAX_FORM_BYTES

    guard = _guard(_answering_app(0, []), body_timeout_seconds=0.3)
    slow = Client([b"token=", b"x", b"y"], delay=0.2)
    big = Client([b"&" * (MAX_FORM_BYTES // 2)] * 3)
    declared = Client([b""])
    small = Client([b"token=abc"])

    async def scenario() -> None:
        await guard(dict(FORM), slow.receive, slow.send)
        await guard(dict(FORM), big.receive, big.send)
        await guard({**FORM, "headers": [(b"content-length", b"200000000")]}, declared.receive, declared.send)
        await guard(dict(FORM), small.receive, small.send)

    asyncio.run(scenario())
    assert (slow.status, big.status, declared.status, small.status) == (408, 413, 413, 200)
    assert declared.body["detail"][0]["loc"] == ["header", "content-length"]
    assert guard._open == 0


def test_slow_bodies_holding_every_open_slot_are_cut_for_a_scoring_call() -> None:
    guard = _guard(_answering_app(0, []), body_timeout_seconds=10, max_open_requests=3)

    async def scenario() -> tuple[list[Client], Client, float]:
        slow = [Client([b"token=", b"x"], delay=8.0) for _ in range(3)]  # a byte now and then
        tasks = [asyncio.ensure_future(guard(dict(FORM), c.receive, c.send)) for c in slow]
        await asyncio.sleep(1.2)  # older than SLOW_BODY_SECONDS
        scoring = Client([b"{}"])
        started = time.monotonic()
        await guard(_scope(), scoring.receive, scoring.send)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return slow, scoring, elapsed

    slow, scoring, elapsed = asyncio.run(scenario())
    assert scoring.status == 200 and elapsed < 1
    cut = [c for c in slow if c.sent]
    assert len(cut) == 1 and cut[0].status == 408 and cut[0] is slow[0]  # the oldest


def test_the_service_answers_work_stopped_at_its_budget_as_the_front_door_does() -> None:
    from serving.service import budget_exceeded

    answer = budget_exceeded("listing-quality", BudgetExceeded("its time budget of 0.3 s ran out"))
    front_door = Client([])
    asyncio.run(send_unavailable(front_door.send, "time_budget_exceeded", "late"))
    body = json.loads(answer.body)
    assert answer.status_code == front_door.status == 503
    assert answer.headers["retry-after"] == front_door.headers[b"retry-after"].decode() == "1"
    assert (body["error"], body["fallback_decision"]) == (front_door.body["error"], front_door.body["fallback_decision"])
