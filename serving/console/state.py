"""The console's long-lived parts (database engine, stores, registry, signer), built on first
use in each worker from the service's settings."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from common.errors import ShopGuardError
from kinds import MODEL_KINDS, model_kind
from registry.store import FORCED_NOTE
from serving.console import charts, queries, review_stats
from serving.console.model_facts import version_facts
from serving.console.session import Session, SessionSigner, SigninLimiter, console_secret
from serving.decision_export import ExportSlots

logger = logging.getLogger("shopguard.console")
CHART_DAYS = 30
CHART_SECONDS = 60.0
BUDGET_SECONDS = 60.0  # production versions' review budgets are read again after this long
LINKED_SHOWN = 200  # linked merchants listed on a decision's page at most


class ConsoleState:
    """What the console's pages read and write through."""

    def __init__(self) -> None:
        from common.settings import load_settings
        from database.engine import make_engine
        from policy.document import load_policy
        from policy.store import EnforcementStore
        from registry.release import served_release
        from registry.store import ModelRegistry
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
        self.release = served_release(settings.release)  # a Bento's pinned versions decide, not the aliases
        self.signer = SessionSigner(console_secret(settings.home))
        self.signin_limiter = SigninLimiter()
        self.exports = ExportSlots()
        self._charts: dict[str, tuple[float, bytes]] = {}
        self._charts_lock = threading.Lock()
        self._budgets: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._tag_budgets: dict[str, float | None] = {}
        self._graphs: dict[str, tuple[dict[str, list[tuple[str, str]]], dict[str, int]] | None] = {}
        self._labels_by_key: dict[str, dict[str, int]] = {}  # version -> training label by normalized id
        self._bundle_lock = threading.Lock()

    def exchange(self, token: str) -> tuple[str, tuple[str, ...]] | str:
        """(name, scopes) of a token allowed into the console (read or feedback scope), or why
        not, as the sign-in page says it. With ``SHOPGUARD_AUTH=off`` the field names the
        reviewer (local experiments)."""
        if not token or len(token) > 256:
            return "That token is unknown or revoked."
        if not self.auth:
            return token, ("read", "feedback")
        found = self.tokens.verify(token)
        if found is None:
            return "That token is unknown or revoked."
        if not any(found.allows(s) for s in ("read", "feedback")):
            return (f"The token {found.name!r} is valid but has only the {', '.join(found.scopes)} scope(s); the "
                    "console needs read (auditors) or feedback (reviewers): ask an admin for such a token.")
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
            pinned = self._pinned(kind.name)
            release = pinned.tag.split(":", 1)[1] if pinned is not None else None
            models.append({"kind": kind, "production": aliases.get("production"), "release": release,
                           "candidate": aliases.get("candidate"), "versions": self.registry.versions(kind.name),
                           "serving": self.registry.serving(kind.name, expected=release)})
        return models

    def _pinned(self, name: str) -> Any:
        """The release's pin of ``name`` (``ReleasedModel``), or None outside a release."""
        return self.release.models.get(name) if self.release is not None else None

    def _bundle(self, name: str, version: str) -> Any:
        """The verified bundle of ``name:version``: a release's pin by the release's manifest
        hash (a Bento's home may have no registry records), any other through the registry."""
        pinned = self._pinned(name)
        if pinned is not None and pinned.tag == f"{name}:{version}":
            return self.registry.load_pinned(pinned.tag, pinned.manifest_sha256)
        return self.registry.load(f"{name}:{version}")

    def version_info(self, name: str, version: str) -> dict[str, Any]:
        """A version's manifest summary (real held-out figures first, synthetic beside them,
        thresholds in words) and its model's alias history."""
        model_kind(name)
        manifest = self._bundle(name, version).manifest
        return {"name": name, "version": manifest.version, "manifest": manifest, **version_facts(manifest),
                "headline": manifest.headline_metrics(), "history": self.registry.history(name),
                "aliases": self.registry.aliases.all_for(name), "forced_note": f"[{FORCED_NOTE}"}

    def card(self, name: str, version: str) -> str:
        """The version's HTML card."""
        model_kind(name)
        return self.registry.card(f"{name}:{version}", "html", bundle=self._bundle(name, version))

    def review_budgets(self) -> dict[str, dict[str, Any]]:
        """Per entity type: the production version (``model``) and the review budget its
        thresholds were set for at training (``budget``: a share of ordinary traffic; None when
        the version's training sets none or it cannot be read)."""
        with self._bundle_lock:
            if self._budgets and time.monotonic() - self._budgets[0] < BUDGET_SECONDS:
                return self._budgets[1]
        budgets = {kind.entity_type: self._budget(kind.name) for kind in MODEL_KINDS.values()}
        with self._bundle_lock:
            self._budgets = (time.monotonic(), budgets)
        return budgets

    def _budget(self, name: str) -> dict[str, Any]:
        try:
            tag = self.registry.resolve(f"{name}:production")
            if tag not in self._tag_budgets:  # a version never changes: its manifest is verified once
                budget = self.registry.load(tag).manifest.lineage.parameters.get("review_budget")
                self._tag_budgets[tag] = float(budget) if isinstance(budget, int | float) else None
        except (ShopGuardError, OSError) as exc:
            logger.info("console: the review budget of %s cannot be read: %s", name, exc)
            return {"model": None, "budget": None}
        return {"model": tag, "budget": self._tag_budgets[tag]}

    def linked_merchants(self, tag: str, merchant_ids: list[str]) -> list[dict[str, Any]] | None:
        """The merchants linked to any of ``merchant_ids`` in the reference graph the version
        ``tag`` was trained with (what its ring features read beside the request's links), with
        their training label (``known``: 1 flagged, 0 not, None unknown); None when the
        version keeps no reference graph or it cannot be read."""
        graph = self._reference_graph(tag)
        if graph is None:
            return None
        links, known = graph
        found = {(other, link_type) for merchant_id in merchant_ids for other, link_type in links.get(merchant_id, [])}
        return [{"merchant_id": other, "link_type": link_type, "known": known.get(other)}
                for other, link_type in sorted(found)[:LINKED_SHOWN]]

    def training_labels(self, tag: str, merchant_ids: list[str]) -> dict[str, int | None] | None:
        """Each merchant's label in the data the version ``tag`` was trained with (1 flagged, 0
        not, None unknown), looked up as ids are compared (``features.ids.merchant_key``);
        None when the version keeps no reference graph or it cannot be read."""
        from features.ids import merchant_key

        with self._bundle_lock:
            known = self._labels_by_key.get(tag)
        if known is None:
            graph = self._reference_graph(tag)
            if graph is None:
                return None
            known = {merchant_key(m): v for m, v in graph[1].items()}
            with self._bundle_lock:
                self._labels_by_key[tag] = known
        return {m: known.get(merchant_key(m)) for m in merchant_ids}

    def _reference_graph(self, tag: str) -> tuple[dict[str, list[tuple[str, str]]], dict[str, int]] | None:
        with self._bundle_lock:
            if tag in self._graphs:
                return self._graphs[tag]
        graph = self._read_graph(tag)
        with self._bundle_lock:
            self._graphs[tag] = graph
        return graph

    def _read_graph(self, tag: str) -> tuple[dict[str, list[tuple[str, str]]], dict[str, int]] | None:
        import pandas as pd

        from kinds.merchant_risk.runtime import LINKS_FILE, REFERENCE_FILE

        try:
            folder = self.registry.load(tag).path
            if not (folder / LINKS_FILE).is_file():
                return None
            links, merchants = pd.read_parquet(folder / LINKS_FILE), pd.read_parquet(folder / REFERENCE_FILE)
        except (ShopGuardError, OSError, ValueError) as exc:
            logger.info("console: the reference graph of %s cannot be read: %s", tag, exc)
            return None
        by_merchant: dict[str, list[tuple[str, str]]] = {}
        for src, dst, link_type in links[["src", "dst", "link_type"]].itertuples(index=False):
            by_merchant.setdefault(str(src), []).append((str(dst), str(link_type)))
            by_merchant.setdefault(str(dst), []).append((str(src), str(link_type)))
        known = {str(m): int(v) for m, v in zip(merchants["merchant_id"], merchants["known_label"], strict=True)
                 if v == v}
        return by_merchant, known

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
            values = review_stats.confirmation_by_category(queries.reviewed_decisions(self.engine))
            return charts.share_png("sent to review: share confirmed as violations, per category the model flagged "
                                    "(stream: per segment)", values,
                                    "no verdicts on items sent to review yet")
        if chart == "agreement":
            return charts.agreement_png(review_stats.reviewer_agreement(queries.reviewed_decisions(self.engine)))
        return None


@lru_cache(maxsize=1)
def state() -> ConsoleState:
    """This worker's console state."""
    return ConsoleState()
