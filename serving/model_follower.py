"""Serving follows the registry: each worker notices a promotion or a rollback within
``SHOPGUARD_FOLLOW_SECONDS`` and swaps the new production version in without a restart.

The new bundle is loaded, verified (every file's hash) and checked against the API's fields
before it replaces the one answering; a bundle that fails keeps the old one serving, and the
failure is reported (``/readyz``, ``/v1/models``, the console) until a load succeeds: the
worker tries again when the alias moves and after ``RETRY_SECONDS``, twice as long after each
failure up to an hour (a file restored, a database back), so a passing failure does not stick
until a restart and a lasting one is not reloaded every round.
Every round the worker also reports what it serves (``registry/deployments.py``), so a
mismatch between the alias and what answers is visible, never silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from kinds.runtime import ModelRuntime
from registry.aliases import AliasStore
from registry.deployments import ServedVersions

logger = logging.getLogger("shopguard.serving")
RETRY_SECONDS = 60.0  # a version that failed to load is tried again after this, then twice as long each time
MAX_RETRY_SECONDS = 3600.0  # (and at once when the alias moves)


def worker_name() -> str:
    """This worker as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def version_of(runtime: ModelRuntime | None) -> str | None:
    """The version part of a runtime's tag (None without a runtime)."""
    return None if runtime is None else runtime.tag.split(":", 1)[1]


@dataclass(frozen=True)
class FailedLoad:
    """A production version this worker could not load: when, and how many times in a row."""

    version: str
    at: float  # time.monotonic()
    attempts: int

    def due(self, now: float) -> bool:
        """Whether to try again: after ``RETRY_SECONDS``, doubling with each failure up to ``MAX_RETRY_SECONDS``."""
        return now - self.at >= min(MAX_RETRY_SECONDS, RETRY_SECONDS * 2 ** (self.attempts - 1))


@dataclass
class FollowState:
    """Per model: the production version last seen, and why the worker could not follow it."""

    production: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    failed: dict[str, FailedLoad] = field(default_factory=dict)


class ModelFollower:
    """A thread that, every ``every_seconds``, reads the ``production`` aliases, swaps in
    any version that moved, and reports this worker's served versions.

    ``served()`` gives the runtime answering per model; ``load(name, version)`` builds and
    checks a runtime (raising on any failure); ``swap(name, runtime)`` puts it in service;
    ``after_round()`` runs after each round (the service refreshes ``/readyz``). With
    ``follow=False`` (a Bento's pinned release) the worker only reports."""

    def __init__(self, aliases: AliasStore, deployments: ServedVersions, names: list[str],
                 served: Callable[[], dict[str, ModelRuntime | None]],
                 load: Callable[[str, str], ModelRuntime], swap: Callable[[str, ModelRuntime], None],
                 every_seconds: float, *, follow: bool = True,
                 after_round: Callable[[], None] = lambda: None) -> None:
        self.aliases, self.deployments, self.names = aliases, deployments, names
        self.served, self.load, self.swap, self.after_round = served, load, swap, after_round
        self.every_seconds, self.follow = every_seconds, follow
        self.worker = worker_name()
        self.state = FollowState()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-follower", daemon=True)

    def start(self) -> None:
        """Report at once, then follow in the background."""
        try:
            self.report()
        except SQLAlchemyError as exc:
            logger.warning("could not report the served versions: %s", str(exc).splitlines()[0][:300])
        if self.every_seconds > 0:
            self._thread.start()

    def close(self) -> None:
        """Stop following and withdraw this worker's report."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        with contextlib.suppress(SQLAlchemyError):  # else the rows age out of every reader's window
            self.deployments.withdraw(self.worker)

    def _run(self) -> None:
        while not self._stop.wait(self.every_seconds):
            try:
                self.check()
            except Exception as exc:  # the thread outlives a bad round (database down, ...)
                logger.warning("following the registry: %s", str(exc).splitlines()[0][:300])

    def check(self) -> None:
        """One round: follow every model whose production version moved, then report."""
        if self.follow:
            for name in self.names:
                self._follow(name, self.aliases.get(name, "production"))
        self.after_round()
        self.report()

    def _follow(self, name: str, production: str | None) -> None:
        self.state.production[name] = production
        current = version_of(self.served().get(name))
        if production is None or production == current:
            self.state.errors.pop(name, None)
            return
        failed = self.state.failed.get(name)
        if failed is not None and failed.version != production:
            failed = None  # the alias moved: a new version, tried at once
        if failed is not None and not failed.due(time.monotonic()):
            return
        try:
            runtime = self.load(name, production)
        except Exception as exc:  # any failure keeps the version serving now
            attempts = 1 if failed is None else failed.attempts + 1
            self.state.failed[name] = FailedLoad(production, time.monotonic(), attempts)
            wait = min(MAX_RETRY_SECONDS, RETRY_SECONDS * 2 ** (attempts - 1))
            error = (f"{name}:{production} could not be loaded ({str(exc).splitlines()[0][:300]}); "
                     f"still serving {current or 'nothing'}")
            if self.state.errors.get(name, "").split("; tried again")[0] != error:
                logger.error("%s", error)  # once per distinct failure, not at every retry
            self.state.errors[name] = f"{error}; tried again in {wait:g} s or when the alias moves"
            return
        self.swap(name, runtime)
        self.state.failed.pop(name, None)
        self.state.errors.pop(name, None)
        logger.info("now serving %s (was %s): the production alias moved", runtime.tag, current or "nothing")

    def report(self) -> None:
        """Write what this worker serves, with the reason where it is not production."""
        served = self.served()
        self.deployments.report(self.worker, {name: (version_of(served.get(name)), self.state.errors.get(name))
                                              for name in self.names})
