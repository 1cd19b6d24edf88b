"""The console's long-lived parts (database engine, stores, registry, signer), built on first
use in each worker from the service's settings."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from features.errors import ShopGuardError
from model_registry.kinds import MODEL_KINDS, model_kind
from model_registry.registry import FORCED_NOTE
from serving.console import charts, queries
from serving.console.session import Session, SessionSigner, SigninLimiter, console_secret
from serving.decision_export import ExportSlots

REVIEW_BUDGET = 0.05  # the share of ordinary traffic thresholds let reach review (serving/policy.py)
CHART_DAYS = 30
CHART_SECONDS = 60.0


class ConsoleState:
    """What the console's pages read and write through."""

    def __init__(self) -> None:
        from model_registry.database import make_engine
        from model_registry.registry import ModelRegistry
        from model_registry.settings import load_settings
        from policy.document import load_policy
        from policy.store import EnforcementStore
        from serving.auth import TokenStore
        from serving.feedback import FeedbackStore

        settings = load_settings()
        self.auth = settings.auth
        self.engine = make_engine(settings.database_url)
        self.tokens = TokenStore(self.engine)
        self.feedback = FeedbackStore(self.engine)
        self.enforcement = EnforcementStore(make_engine(settings.database_url, immediate=True),
                                            load_policy(settings.policy), read_engine=self.engine)
        self.registry = ModelRegistry(settings)
        self.signer = SessionSigner(console_secret(settings.home))
        self.signin_limiter = SigninLimiter()
        self.exports = ExportSlots()
        self.review_budget = REVIEW_BUDGET
        self._charts: dict[str, tuple[float, bytes]] = {}
        self._charts_lock = threading.Lock()

    def exchange(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        """(name, scopes) of a token allowed into the console (read or feedback scope), or
        None. With ``SHOPGUARD_AUTH=off`` the field names the reviewer (local experiments)."""
        if not token or len(token) > 256:
            return None
        if not self.auth:
            return token, ("read", "feedback")
        found = self.tokens.verify(token)
        if found is None or not any(found.allows(s) for s in ("read", "feedback")):
            return None
        return found.name, found.scopes

    def session(self, cookie: str | None) -> Session | None:
        """The cookie's session while its token stays active (revoking a token signs it out)."""
        session = self.signer.read(cookie)
        if session is None or self.tokens.session_ended(session.csrf):
            return None
        if not self.auth:
            return session
        token = self.tokens.active(session.name)
        return None if token is None else Session(session.name, token.scopes, session.csrf)

    def model_summaries(self) -> list[dict[str, Any]]:
        """Each kind's model: production, candidate, what the running workers serve and every
        registered version."""
        models = []
        for kind in MODEL_KINDS.values():
            aliases = self.registry.aliases.all_for(kind.name)
            models.append({"kind": kind, "production": aliases.get("production"),
                           "candidate": aliases.get("candidate"), "versions": self.registry.versions(kind.name),
                           "serving": self.registry.serving(kind.name)})
        return models

    def version_info(self, name: str, version: str) -> dict[str, Any]:
        """A version's manifest summary and its model's alias history."""
        model_kind(name)
        manifest = self.registry.load(f"{name}:{version}").manifest
        return {"name": name, "version": manifest.version, "manifest": manifest,
                "headline": manifest.headline_metrics(), "history": self.registry.history(name),
                "aliases": self.registry.aliases.all_for(name), "forced_note": f"[{FORCED_NOTE}"}

    def card(self, name: str, version: str) -> str:
        """The version's HTML card."""
        model_kind(name)
        return self.registry.card(f"{name}:{version}", "html")

    def chart(self, name: str) -> bytes | None:
        """A chart's PNG (drawn at most once a minute per worker), or None for an unknown name."""
        with self._charts_lock:
            cached = self._charts.get(name)
            if cached and time.monotonic() - cached[0] < CHART_SECONDS:
                return cached[1]
        png = self._draw(name)
        if png is not None:
            with self._charts_lock:
                self._charts[name] = (time.monotonic(), png)
        return png

    def _draw(self, chart: str) -> bytes | None:
        if chart.startswith("outcomes-"):
            try:
                kind = model_kind(chart.removeprefix("outcomes-"))
            except ShopGuardError:
                return None
            rows = queries.daily_outcomes(self.engine, kind.name, CHART_DAYS, datetime.now(UTC))
            return charts.daily_outcomes_png(kind.name, rows)
        if chart == "confirmed":
            values = queries.confirmation_by_category(queries.reviewed_decisions(self.engine))
            return charts.share_png("reviews confirmed as violations, per category flagged by the model", values,
                                    "no verdicts yet")
        if chart == "agreement":
            values = queries.reviewer_agreement(queries.reviewed_decisions(self.engine))
            return charts.share_png("each reviewer's agreement with the model's decision", values, "no verdicts yet")
        return None


@lru_cache(maxsize=1)
def state() -> ConsoleState:
    """This worker's console state."""
    return ConsoleState()
