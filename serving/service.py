"""The ShopGuard BentoML service: ``bentoml serve serving.service:ShopGuard``.

Loads the ``production`` version of each model at start (``/readyz`` answers only after
that). A model without a production version is reported at start and its endpoint answers
503 with ``fallback_decision: review`` until one is promoted and the service restarted.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from model_registry.settings import configure_bentoml_home, load_settings

SETTINGS = load_settings()
configure_bentoml_home(SETTINGS)  # before bentoml touches its model store

import bentoml  # noqa: E402
from pydantic import Field  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

from features.decision import Decision  # noqa: E402
from features.reasons import Reason  # noqa: E402
from features.schemas import ListingRecord, MerchantRecord, TranscriptSegment  # noqa: E402
from model_registry.kinds import FALSE_MARKETING, LISTING_QUALITY, MERCHANT_RISK, ModelKind  # noqa: E402
from serving.models_api import ModelsPathMiddleware, models_app  # noqa: E402
from serving.policy import (  # noqa: E402
    FALLBACK_DECISION,
    capped_reason,
    merchant_rule,
    stream_decision,
)
from serving.schemas import (  # noqa: E402
    MAX_BATCH,
    ErrorBody,
    FeedbackResponse,
    ListingResult,
    ListingsResponse,
    MerchantResult,
    MerchantsResponse,
    ReasonOut,
    SegmentResult,
    SpanOut,
    StreamResponse,
)

logger = logging.getLogger("shopguard.serving")
MAX_REASONS = 3


def unavailable(model_name: str, why: str) -> JSONResponse:
    """503 telling the caller to fall back to review."""
    body = ErrorBody(
        error="model_unavailable",
        message=f"{model_name} cannot score right now ({why}); treat the items as 'review'.",
        fallback_decision=FALLBACK_DECISION,
    )
    return JSONResponse(body.model_dump(), status_code=503)


def _reasons_out(rule_reasons: list[Reason], model_reasons: list[Reason]) -> list[ReasonOut]:
    """Rule reasons first, then the model's, at most ``MAX_REASONS``."""
    return [ReasonOut(code=r.code, detail=r.detail) for r in [*rule_reasons, *model_reasons]][:MAX_REASONS]


def check_api_fields(kind: ModelKind, model: Any) -> None:
    """Refuse a model that needs inputs the API's records do not carry (a merchant model
    trained on a generic table's columns)."""
    spec = getattr(model, "spec", None)
    if spec is not None:
        missing = [f for f in spec.own_features if f not in kind.record.model_fields]
        if missing:
            raise ValueError(f"{model.tag} uses feature set {spec.name}, whose features {missing[:3]} the API's "
                             f"{kind.record.__name__} lacks; promote a model trained on its columns")


@bentoml.mount_asgi_app(models_app, path="/v1/models")
@bentoml.service(
    name="shopguard",
    traffic={"timeout": 60, "max_concurrency": 256},
    http={"port": 3000},
)
class ShopGuard:
    """Scores listings, livestream transcripts and merchants."""

    def __init__(self) -> None:
        from model_registry.database import make_engine
        from model_registry.registry import ModelRegistry
        from serving.decision_log import DecisionLogWriter
        from serving.feedback import FeedbackStore
        from serving.merchant_decisions import MerchantDecisionStore

        self.settings = SETTINGS
        self.registry = ModelRegistry(self.settings)
        self.load_errors: dict[str, str] = {}
        self.listing_model = self._load(LISTING_QUALITY)
        self.merchant_model = self._load(MERCHANT_RISK)
        self.marketing_model = self._load(FALSE_MARKETING)
        engine = make_engine(self.settings.database_url)
        self.merchant_decisions = MerchantDecisionStore(engine)
        self.decision_log: DecisionLogWriter | None = None
        if self.settings.decision_log:
            self.decision_log = DecisionLogWriter(engine, flush_seconds=self.settings.decision_log_flush_seconds)
        else:
            logger.warning("SHOPGUARD_DECISION_LOG=off: decisions are NOT recorded (overhead measurement only)")
        self.feedback_store = FeedbackStore(engine)

    @bentoml.on_shutdown
    def flush_decision_log(self) -> None:
        """Write every accepted decision record before the worker exits."""
        if self.decision_log is not None:
            self.decision_log.close()

    def _load(self, kind: ModelKind) -> Any:
        """The kind's production runtime, or None with the reason kept for its 503 answers."""
        try:
            model = kind.runtime_class().from_bundle(self.registry.load(f"{kind.name}:production"),
                                                     device=self.settings.device)
            check_api_fields(kind, model)
        except Exception as exc:  # any failure: reported per endpoint as 503
            self.load_errors[kind.name] = str(exc)
            logger.error("%s not loaded: %s", kind.name, exc)
            return None
        logger.info("loaded %s", model.tag)
        return model

    def _merchant_rule(self, merchant_ids: list[str | None], decisions: list[Decision]
                       ) -> tuple[list[Decision], list[list[Reason]]]:
        blocked = self.merchant_decisions.blocked({m for m in merchant_ids if m})
        raised, reasons = [], []
        for merchant_id, decision in zip(merchant_ids, decisions, strict=True):
            new_decision, reason = merchant_rule(decision, blocked.get(merchant_id or ""))
            raised.append(new_decision)
            reasons.append([reason] if reason else [])
        return raised, reasons

    @bentoml.api(route="/v1/listings/score")
    def score_listings(
        self, listings: list[ListingRecord] = Field(..., min_length=1, max_length=MAX_BATCH)
    ) -> ListingsResponse:
        """Decide block / review / allow for up to 1,000 listings, with reasons."""
        model = self.listing_model
        if model is None:
            return unavailable(LISTING_QUALITY.name, self.load_errors.get(LISTING_QUALITY.name, "not loaded"))
        scored = model.score(listings)
        decisions, rule_reasons = self._merchant_rule([r.merchant_id for r in listings], scored.decisions)
        results = [
            ListingResult(listing_id=record.listing_id, decision=decision, score=round(float(score), 6),
                          reasons=_reasons_out(rules, reasons), model=model.tag)
            for record, score, decision, rules, reasons in zip(
                listings, scored.scores, decisions, rule_reasons, scored.reasons, strict=True)
        ]
        response = ListingsResponse(request_id=uuid.uuid4().hex, results=results)
        self._log(response.request_id, LISTING_QUALITY.entity_type, [
            (r.listing_id, r.decision, r.score, r.model, r.reasons, listing.model_dump(exclude_none=True))
            for r, listing in zip(results, listings, strict=True)])
        return response

    @bentoml.api(route="/v1/merchants/score")
    def score_merchants(
        self, merchants: list[MerchantRecord] = Field(..., min_length=1, max_length=MAX_BATCH)
    ) -> MerchantsResponse:
        """Decide block / review / allow for up to 1,000 merchants, with reasons (ring evidence)
        for review and block results; the decisions are kept so that blocked merchants'
        listings go to review."""
        model = self.merchant_model
        if model is None:
            return unavailable(MERCHANT_RISK.name, self.load_errors.get(MERCHANT_RISK.name, "not loaded"))
        scored = model.score(merchants)
        results = [
            MerchantResult(merchant_id=m.merchant_id, decision=decision, score=round(float(s), 6),
                           reasons=_reasons_out([], reasons), model=model.tag)
            for m, s, decision, reasons in zip(merchants, scored.scores, scored.decisions, scored.reasons,
                                               strict=True)
        ]
        self.merchant_decisions.record([(r.merchant_id, r.decision, r.score, r.model) for r in results])
        response = MerchantsResponse(request_id=uuid.uuid4().hex, results=results)
        self._log(response.request_id, MERCHANT_RISK.entity_type, [
            (r.merchant_id, r.decision, r.score, r.model, r.reasons, m.model_dump(exclude_none=True))
            for r, m in zip(results, merchants, strict=True)])
        return response

    @bentoml.api(route="/v1/streams/score")
    def score_stream(
        self,
        stream_id: str = Field(..., min_length=1, max_length=128),
        segments: list[TranscriptSegment] = Field(..., min_length=1, max_length=MAX_BATCH),
        merchant_id: str | None = Field(None, max_length=128),
    ) -> StreamResponse:
        """Per-segment category scores, labels and evidence spans, segment decisions and the
        stream decision (policy in ``serving/policy.py``)."""
        model = self.marketing_model
        if model is None:
            return unavailable(FALSE_MARKETING.name, self.load_errors.get(FALSE_MARKETING.name, "not loaded"))
        analyses = model.score(segments).segments
        decision, reasons = stream_decision([a.decision for a in analyses], [s.start_ms for s in segments])
        capped = capped_reason([a.capped for a in analyses], [a.decision for a in analyses])
        reasons = reasons + ([capped] if capped else [])
        [decision], [rule_reasons] = self._merchant_rule([merchant_id], [decision])
        results = [
            SegmentResult(index=i, score=a.score, decision=a.decision, labels=a.labels, categories=a.scores,
                          spans=[SpanOut(start=sp.start, end=sp.end, text=sp.text, category=sp.category,
                                         source=sp.source, rule_id=sp.rule_id) for sp in a.spans],
                          novelty=a.novelty)
            for i, a in enumerate(analyses)
        ]
        response = StreamResponse(
            request_id=uuid.uuid4().hex, stream_id=stream_id, decision=decision,
            score=max(a.score for a in analyses), segments=results,
            reasons=_reasons_out(rule_reasons, reasons), model=model.tag,
        )
        inputs = {"stream_id": stream_id, "merchant_id": merchant_id,
                  "segments": [s.model_dump() for s in segments],
                  "segment_decisions": [r.decision for r in results],
                  "segment_labels": [r.labels for r in results]}
        self._log(response.request_id, FALSE_MARKETING.entity_type,
                  [(stream_id, decision, response.score, model.tag, response.reasons, inputs)])
        return response

    @bentoml.api(route="/v1/feedback")
    def feedback(
        self,
        entity_id: str = Field(..., min_length=1, max_length=128),
        label: str = Field(..., min_length=1, max_length=400,
                           description="inferior|ok (listings), suspicious|ok (merchants), ok or "
                                       "categories joined by | (stream segments)"),
        reviewer: str = Field(..., min_length=1, max_length=128),
        note: str = Field("", max_length=4000),
        request_id: str | None = Field(None, min_length=1, max_length=64),
        segment_index: int | None = Field(None, ge=0),
    ) -> FeedbackResponse:
        """Store a reviewer's outcome for a logged decision (stored at once, not queued)."""
        from serving.feedback import Feedback, FeedbackError

        # The decision may still be queued for the log: write what is pending first.
        if self.decision_log is not None:
            self.decision_log.flush()
        try:
            row = self.feedback_store.add(Feedback(entity_id, label, reviewer, note, request_id, segment_index))
        except FeedbackError as exc:
            detail = [{"loc": [exc.field], "msg": str(exc), "type": "feedback"}]
            return JSONResponse({"detail": detail}, status_code=exc.status)
        return FeedbackResponse(feedback_id=row["id"], entity_type=row["entity_type"], entity_id=row["entity_id"],
                                request_id=row["request_id"], segment_index=row["segment_index"],
                                label=row["label"], model=row["model"])

    def _log(self, request_id: str, entity_type: str,
             items: list[tuple[str, str, float, str, list[ReasonOut], dict[str, Any]]]) -> None:
        from serving.decision_log import DecisionRecord

        if self.decision_log is None:
            return
        self.decision_log.record([
            DecisionRecord(request_id, entity_type, entity_id, decision, score, model,
                           [r.model_dump() for r in reasons], inputs)
            for entity_id, decision, score, model, reasons, inputs in items])


ShopGuard.add_asgi_middleware(ModelsPathMiddleware)
