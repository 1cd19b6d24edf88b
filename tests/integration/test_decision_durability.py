"""No answered decision is ever lost: an exclusive lock of seconds held by another process
(records go to the journal and are replayed), SIGKILL of the worker under load, and SIGTERM
under load. Each test counts the listings whose answers reached the client and finds every
one of them in the decision log, once. The three share one server over one copied home (each
load with ids of its own); the SIGTERM test, last, stops it while its clients are sending."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import create_engine

from serving.decision_queries import query_decisions
from tests.conftest import auth_headers
from tests.integration.server import running_server

pytestmark = pytest.mark.integration

LISTING = {"listing_id": "D", "merchant_id": "M-durable", "title": "加厚保温杯", "category": "home",
           "price": 59.0, "image_count": 4}
PER_REQUEST = 20


class Load:
    """Clients sending listing batches until stopped; keeps the ids of answered listings."""

    def __init__(self, base: str, prefix: str, clients: int = 4) -> None:
        self.base, self.prefix, self.answered, self.statuses = base, prefix, set(), []
        self._stop, self._lock = threading.Event(), threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(clients)]

    def _client(self, index: int) -> None:
        with httpx.Client(timeout=60, headers=auth_headers()) as session:
            k = 0
            while not self._stop.is_set():
                batch = [{**LISTING, "listing_id": f"{self.prefix}{index}-{k}-{j}"} for j in range(PER_REQUEST)]
                k += 1
                try:
                    response = session.post(f"{self.base}/v1/listings/score", json={"listings": batch})
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.statuses.append(response.status_code)
                    if response.status_code == 200:
                        self.answered.update(r["listing_id"] for r in response.json()["results"])

    def snapshot(self) -> set[str]:
        """The ids answered so far (a copy: the clients keep adding)."""
        with self._lock:
            return set(self.answered)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _logged(home: Path, prefix: str) -> list[str]:
    """The ids of one test's load in the decision log (the home's other rows left out)."""
    engine = create_engine(f"sqlite:///{home / 'shopguard.db'}")
    return [r["entity_id"] for r in query_decisions(engine) if r["entity_id"].startswith(prefix)]


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


class Served:
    """One ``bentoml serve`` over a copy of the trained home, shared by this module's tests:
    started when first asked for, again after ``stop``."""

    def __init__(self, home: Path) -> None:
        self.home, self._stack = home, ExitStack()
        self._base: str | None = None

    @property
    def base(self) -> str:
        if self._base is None:
            self._base = self._stack.enter_context(running_server(self.home))
        return self._base

    def stop(self) -> None:
        """SIGTERM the server (running_server's exit) and wait for it to end."""
        self._base = None
        self._stack.close()


@pytest.fixture(scope="module")
def served(trained_home, tmp_path_factory) -> Iterator[Served]:
    copy = tmp_path_factory.mktemp("durability") / "home"
    shutil.copytree(trained_home, copy, ignore=shutil.ignore_patterns("server-*.log", "journal"))
    server = Served(copy)
    try:
        yield server
    finally:
        server.stop()


def _assert_none_lost(home: Path, load: Load) -> None:
    logged = _logged(home, load.prefix)
    assert load.answered, "the load got no answers"
    assert load.answered <= set(logged), f"{len(load.answered - set(logged))} answered decisions lost"
    assert len(logged) == len(set(logged)), "a decision was logged twice"


def _journals(home: Path) -> list[Path]:
    return list((home / "journal").glob("decisions-*.jsonl"))


def test_an_exclusive_lock_of_seconds_loses_no_answered_decision(served) -> None:
    """3 s: three times the log's retry window (1 s) before the journal takes the records."""
    home = served.home
    with Load(served.base, "D-lock-") as load:
        assert _wait_until(lambda: len(load.answered) >= 100, 60)
        holder = sqlite3.connect(home / "shopguard.db", timeout=30)
        holder.execute("BEGIN EXCLUSIVE")
        answered_before = len(load.answered)
        time.sleep(3)
        answered_during = len(load.answered) - answered_before
        holder.rollback()
        holder.close()
        # the journal is replayed within a few seconds of the lock's release
        assert _wait_until(lambda: (lambda answered: answered <= set(_logged(home, "D-lock-")))(load.snapshot()), 30)
    assert answered_during > 0  # answers kept coming: the records went to the journal
    assert not any(status >= 500 and status != 503 for status in load.statuses)
    _assert_none_lost(home, load)
    assert _wait_until(lambda: not _journals(home), 30), _journals(home)  # replayed files are removed


def test_sigkill_of_the_worker_under_load_loses_no_answered_decision(served) -> None:
    home = served.home
    with Load(served.base, "D-kill-") as load:
        assert _wait_until(lambda: len(load.answered) >= 200, 60)
        server = next(p for p in psutil.process_iter(["cmdline", "environ"])
                      if "serving.service:ShopGuard" in " ".join(p.info["cmdline"] or [])
                      and (p.info["environ"] or {}).get("SHOPGUARD_HOME") == str(home))
        workers = [c for c in server.children(recursive=True) if "python" in c.name()]
        assert workers
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        answered_at_kill = len(load.answered)
        assert _wait_until(lambda: len(load.answered) > answered_at_kill + 100, 90)  # a new worker answers
    _assert_none_lost(home, load)


def test_sigterm_under_load_loses_no_answered_decision(served) -> None:
    home = served.home
    with Load(served.base, "D-term-") as load:
        _wait_until(lambda: len(load.answered) >= 400, 60)
        served.stop()  # SIGTERM while the clients are still sending; returns once the server ended
    _assert_none_lost(home, load)
