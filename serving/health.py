"""Honest readiness: ``/readyz`` is 200 only when every model with a production version is
loaded, the decision-log writer runs and the database stores and can be read by the token
checks (a full disk, a damaged file: 503 naming the cause, until a write or read succeeds
again), and its body lists each one's state."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from database.engine import storage_cause

READY_PATH = "/readyz"
HEALTH_PATHS = frozenset({READY_PATH, "/livez", "/healthz"})


class ServiceHealth:
    """What ``/readyz`` reports: each model's state, set by the service once it has loaded,
    and the decision-log writer's (``decision_log``: a probe returning its ``health()``)."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] | None = None  # None: still starting
        self.decision_log: Callable[[], dict[str, Any]] | None = None
        self.storage: list[Callable[[], str | None]] = []  # each writer's current storage problem
        self.reads: list[Callable[[], str | None]] = []  # the token checks' (the front door's, set apart)

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
        problems = [problem for probe in (*self.storage, *self.reads) if (problem := probe())]
        if body.get("decision_log", {}).get("storage_problem"):
            problems.insert(0, body["decision_log"]["storage_problem"])
        body["storage"] = {"available": not problems, "problem": problems[0] if problems else None}
        ready = models_ready and log_ready and not problems
        return ready, {"ready": ready, **body}

    def ready(self) -> bool:
        """Every model with a production version is loaded and decisions can be stored."""
        return self.report()[0]


class StorageStatus:
    """A writer's last storage failure, for ``/readyz``: the problem stands until a write
    succeeds or ``horizon_seconds`` pass without another failure (a service taken out of its
    load balancer by a 503 gets no writes to prove it recovered)."""

    def __init__(self, horizon_seconds: float = 30.0, log_every_seconds: float = 60.0) -> None:
        self.horizon_seconds, self.log_every_seconds = horizon_seconds, log_every_seconds
        self._problem: str | None = None
        self._at = 0.0
        self._logged: tuple[str | None, float] = (None, -math.inf)

    def failed(self, error: str) -> str | None:
        """Record a failed write (``error``: its text); returns the cause as one line when it
        is worth a log line (a new cause, or ``log_every_seconds`` since the last), else None:
        a database down for an hour is a line a minute, not one per retry."""
        now = time.monotonic()
        self._problem, self._at = storage_cause(error), now
        if self._logged[0] != self._problem or now - self._logged[1] >= self.log_every_seconds:
            self._logged = (self._problem, now)
            return self._problem
        return None

    def stored(self) -> None:
        """Record a write that succeeded."""
        self._problem = None

    def problem(self) -> str | None:
        """Why writes fail now, or None."""
        if self._problem is not None and time.monotonic() - self._at < self.horizon_seconds:
            return self._problem
        return None
