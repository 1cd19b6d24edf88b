"""Honest readiness: ``/readyz`` is 200 only when every model with a production version is
loaded and the decision-log writer runs, and its body lists each one's state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

READY_PATH = "/readyz"
HEALTH_PATHS = frozenset({READY_PATH, "/livez", "/healthz"})


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
