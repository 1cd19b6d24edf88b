"""The ShopGuard BentoML service: ``bentoml serve serving.service:ShopGuard``.

Loads the ``production`` version of each model at start (``/readyz`` answers only after
that). A model without a production version is reported at start and its endpoint answers
503 with ``fallback_decision: review`` until one is promoted and the service restarted.

In a Bento (``shopguard bento build``), ``SHOPGUARD_RELEASE`` names the release file that
pins one version of each model; they are declared to BentoML as class-level ``BentoModel``
references, so ``bentoml build`` packs them (cards included) and the service loads them from
the Bento's own model store.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from model_registry.settings import configure_bentoml_home, load_settings

SETTINGS = load_settings()
configure_bentoml_home(SETTINGS)  # before bentoml touches its model store

import bentoml  # noqa: E402
from pydantic import Field  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

from features.ids import EntityId, merchant_key  # noqa: E402
from features.schemas import ListingRecord, MerchantRecord, TranscriptSegment, normalized_length  # noqa: E402
from model_registry.kinds import FALSE_MARKETING, LISTING_QUALITY, MERCHANT_RISK, ModelKind  # noqa: E402
from model_registry.release import Release, bento_release_file, read_release  # noqa: E402
from model_registry.runtimes.base import WorkCancelled  # noqa: E402
from serving.admission import claim_answer, current_admission  # noqa: E402
from serving.answers import listing_results, merchant_results, stream_answer  # noqa: E402
from serving.auth import PRINCIPAL_HEADER, AuthGuard, TokenStore  # noqa: E402
from serving.console import console_app  # noqa: E402
from serving.decision_log import DecisionLogUnavailable  # noqa: E402
from serving.guard import HEALTH, RequestGuard, install_log_filter  # noqa: E402
from serving.microbatch import MicroBatcher  # noqa: E402
from serving.models_api import ModelsPathMiddleware, models_app  # noqa: E402
from serving.policy import (  # noqa: E402
    FALLBACK_DECISION,
)
from serving.protocol_errors import install_json_protocol_errors  # noqa: E402
from serving.schemas import (  # noqa: E402
    MAX_BATCH,
    MAX_STREAM_CHARS,
    ErrorBody,
    FeedbackResponse,
    ListingsResponse,
    MerchantsResponse,
    ReasonOut,
    StreamResponse,
)

logger = logging.getLogger("shopguard.serving")


def configure_front_door(settings: Any) -> None:
    """Tokens, metrics, the limits and the time budget for the middlewares, before any
    request; JSON answers to unparsable requests; the service's own log lines at INFO."""
    from model_registry.database import make_engine

    logging.getLogger("shopguard").setLevel(logging.INFO)  # BentoML leaves the root at WARNING
    RequestGuard.max_in_flight = settings.max_in_flight
    RequestGuard.max_open_requests = settings.max_open_requests
    RequestGuard.body_timeout_seconds = settings.body_timeout_seconds
    RequestGuard.budget_seconds = settings.request_budget_seconds
    install_json_protocol_errors()
    AuthGuard.metrics_enabled = settings.metrics
    if settings.auth:
        AuthGuard.store = TokenStore(make_engine(settings.database_url))
    else:
        AuthGuard.store = None
        logger.warning("!" * 72)
        logger.warning("SHOPGUARD_AUTH=off: ANYONE who reaches this port can score, send feedback and read "
                       "models. Local experiments only.")
        logger.warning("!" * 72)


configure_front_door(SETTINGS)
RELEASE_PATH = SETTINGS.release or bento_release_file(Path.cwd())
RELEASE: Release | None = read_release(RELEASE_PATH) if RELEASE_PATH else None


def released_model(kind: ModelKind) -> bentoml.models.BentoModel | None:
    """The BentoML reference of the release's version of ``kind`` (None without a release):
    what ``bentoml build`` packs into the Bento."""
    if RELEASE is None or kind.name not in RELEASE.models:
        return None
    return bentoml.models.BentoModel(RELEASE.models[kind.name].tag)


# A request whose decisions cannot be stored is not answered with them (503 + fallback).
STORAGE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, DecisionLogUnavailable)
# BentoML's own limits answer 429 and 504 bodies that callers cannot act on: its concurrency
# limit is off (the front door sheds with 503), and its timeout sits past every limit of ours.
BENTOML_TIMEOUT_SECONDS = SETTINGS.body_timeout_seconds + SETTINGS.request_budget_seconds + 120


def unavailable(model_name: str, why: str, error: str = "model_unavailable") -> JSONResponse:
    """503 telling the caller to fall back to review."""
    body = ErrorBody(
        error=error,
        message=f"{model_name} cannot score right now ({why}); treat the items as 'review'.",
        fallback_decision=FALLBACK_DECISION,
    )
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})


def duplicate_ids(field: str, id_field: str, ids: Sequence[str | None], key: Callable[[str], str]
                  ) -> JSONResponse | None:
    """400 naming every index of an id given more than once in one call (compared as ``key``
    sees them), or None. One call scores each entity once: two records of one merchant in
    one batch would each change the other's answer."""
    positions: dict[str, list[int]] = {}
    for index, value in enumerate(ids):
        if value is not None:
            positions.setdefault(key(value), []).append(index)
    repeated = [indexes for indexes in positions.values() if len(indexes) > 1]
    if not repeated:
        return None
    detail = [{"loc": [field, i, id_field], "type": "duplicate",
               "msg": f"{id_field} {ids[i]!r} is given at indexes {indexes}: send each {id_field[:-3]} once per call"}
              for indexes in repeated for i in indexes]
    return JSONResponse({"error": f"{len(repeated)} {id_field}(s) given more than once", "detail": detail},
                        status_code=400)


def _with_status(ctx: bentoml.Context, response: JSONResponse) -> JSONResponse:
    """An API taking ``ctx`` answers with ``ctx.response.status_code``: keep the error's own."""
    ctx.response.status_code = response.status_code
    return response


def too_large(field: str, message: str) -> JSONResponse:
    """413 naming the field whose size is over the limit (the validation-error shape)."""
    return JSONResponse({"detail": [{"loc": ["body", field], "msg": message, "type": "too_large"}]}, status_code=413)


def check_api_fields(kind: ModelKind, model: Any) -> None:
    """Refuse a model that needs inputs the API's records do not carry (a merchant model
    trained on a generic table's columns)."""
    spec = getattr(model, "spec", None)
    if spec is not None:
        missing = [f for f in spec.own_features if f not in kind.record.model_fields]
        if missing:
            raise ValueError(f"{model.tag} uses feature set {spec.name}, whose features {missing[:3]} the API's "
                             f"{kind.record.__name__} lacks; promote a model trained on its columns")


@bentoml.mount_asgi_app(console_app, path="/console")
@bentoml.mount_asgi_app(models_app, path="/v1/models")
@bentoml.service(
    name="shopguard",
    workers=SETTINGS.workers,
    # Sync APIs run on this many threads (BentoML's default is 1: one call at a time per
    # worker); every admitted call runs at once, so concurrent stream calls meet in one encoder
    # batch and concurrent decision records in one database commit.
    threads=SETTINGS.max_in_flight,
    traffic={"timeout": BENTOML_TIMEOUT_SECONDS, "max_concurrency": None},
    http={"port": 3000},
    # Off unless served: BentoML's per-request histograms cost 8% of stream throughput.
    metrics={"enabled": SETTINGS.metrics},
)
class ShopGuard:
    """Scores listings, livestream transcripts and merchants."""

    listing_model_ref = released_model(LISTING_QUALITY)
    merchant_model_ref = released_model(MERCHANT_RISK)
    marketing_model_ref = released_model(FALSE_MARKETING)

    def __init__(self) -> None:
        from model_registry.database import make_engine
        from serving.process import die_with_parent

        die_with_parent()  # a worker never outlives the server process that started it
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
        self.stream_batcher = self._stream_batcher(self.marketing_model)
        engine = make_engine(self.settings.database_url)
        self.merchant_decisions = MerchantDecisionStore(engine, block_days=self.settings.merchant_block_days)
        self.decision_log: DecisionLogWriter | None = None
        if self.settings.decision_log:
            # Its own engine with a short lock wait: a busy database costs a request at most about
            # a second before its records go to the local journal.
            self.decision_log = DecisionLogWriter(
                make_engine(self.settings.database_url, busy_timeout=0.25),
                flush_seconds=self.settings.decision_log_flush_seconds,
                journal_dir=self.settings.home / "journal", on_give_up=exit_worker)
            HEALTH.decision_log = self.decision_log.health
        else:
            logger.warning("SHOPGUARD_DECISION_LOG=off: decisions are NOT recorded (overhead measurement only)")
        self.feedback_store = FeedbackStore(engine)
        self._report_health()
        install_log_filter()
        self._keep_api_callables()

    def _keep_api_callables(self) -> None:
        """Build each API's callable once. BentoML looks the API up on the instance for every
        request, and its descriptor rebuilds the callable each time (``inspect.signature`` of
        the method: 5% of a stream call's CPU); an instance attribute is found first."""
        for name in ShopGuard.apis:
            self.__dict__[name] = getattr(self, name)

    def _report_health(self) -> None:
        """What ``/readyz`` says: per model, whether it has a production version and is loaded."""
        models = {}
        for kind, model in ((LISTING_QUALITY, self.listing_model), (MERCHANT_RISK, self.merchant_model),
                            (FALSE_MARKETING, self.marketing_model)):
            if RELEASE is not None:
                served = RELEASE.models[kind.name].tag.split(":")[1] if kind.name in RELEASE.models else None
            else:
                served = self.registry.aliases.get(kind.name, "production")
            models[kind.name] = {"production": served,
                                 "loaded": model is not None, "model": model.tag if model is not None else None,
                                 "error": self.load_errors.get(kind.name)}
        HEALTH.models = models

    def _stream_batcher(self, model: Any) -> MicroBatcher | None:
        """One encoder batch for the segments of concurrent stream calls (each call keeps its
        own span budget and gets its own answer)."""
        if model is None:
            return None
        return MicroBatcher(model.score_groups, max_items=self.settings.stream_batch_segments,
                            max_wait_s=self.settings.stream_batch_wait_ms / 1000, name="stream-batcher")

    @bentoml.on_shutdown
    def flush_decision_log(self) -> None:
        """Finish the queued stream batches, then write every accepted decision record before
        the worker exits."""
        if self.stream_batcher is not None:
            self.stream_batcher.close()
        if self.decision_log is not None:
            self.decision_log.close()

    def _load(self, kind: ModelKind) -> Any:
        """The kind's production runtime, or None with the reason kept for its 503 answers."""
        try:
            if RELEASE is not None:
                pinned = RELEASE.pinned(kind.name)
                bundle = self.registry.load_pinned(pinned.tag, pinned.manifest_sha256)
            else:
                bundle = self.registry.load(f"{kind.name}:production")
            model = kind.runtime_class().from_bundle(bundle, device=self.settings.device,
                                                     threads=self.settings.threads_per_worker())
            check_api_fields(kind, model)
        except Exception as exc:  # any failure: reported per endpoint as 503
            self.load_errors[kind.name] = str(exc)
            logger.error("%s not loaded: %s", kind.name, exc)
            return None
        logger.info("loaded %s", model.tag)
        return model

    def _answer(self, kind: ModelKind, model: Any, answer: Callable[[Any], Any]) -> Any:
        """``answer(model)``, or 503 with the fallback when the model is not loaded, the
        call's time budget ran out (its work is cancelled, nothing stored) or the decisions
        cannot be stored (a decision that is not stored is not answered)."""
        if model is None:
            return unavailable(kind.name, self.load_errors.get(kind.name, "not loaded"))
        try:
            return answer(model)
        except WorkCancelled as exc:  # serving/admission.py: no decision of this call is stored
            logger.warning("%s: work cancelled (%s); no decision stored", kind.name, exc)
            return unavailable(kind.name, f"the call was cancelled: {exc}", error="time_budget_exceeded")
        except STORAGE_ERRORS as exc:  # merchant decisions or decision records not stored
            logger.warning("%s: decision storage unavailable: %s", kind.name, exc)
            return unavailable(kind.name, "its decisions cannot be stored right now")

    @bentoml.api(route="/v1/listings/score")
    def score_listings(
        self, listings: list[ListingRecord] = Field(..., min_length=1, max_length=MAX_BATCH)
    ) -> ListingsResponse:
        """Decide block / review / allow for up to 1,000 listings, with reasons. Each
        ``listing_id`` at most once per call (400 naming the indexes)."""
        refused = duplicate_ids("listings", "listing_id", [r.listing_id for r in listings], str)
        if refused is not None:
            return refused

        def answer(model: Any) -> ListingsResponse:
            results = listing_results(model, listings, self.merchant_decisions.blocked)
            response = ListingsResponse(request_id=uuid.uuid4().hex, results=results)
            claim_answer()  # past the time budget: raises, nothing stored
            self._log(response.request_id, LISTING_QUALITY.entity_type, [
                (r.listing_id, r.decision, r.score, r.model, r.reasons, listing.model_dump(exclude_none=True))
                for r, listing in zip(results, listings, strict=True)])
            return response

        return self._answer(LISTING_QUALITY, self.listing_model, answer)

    @bentoml.api(route="/v1/merchants/score")
    def score_merchants(
        self, merchants: list[MerchantRecord] = Field(..., min_length=1, max_length=MAX_BATCH)
    ) -> MerchantsResponse:
        """Decide block / review / allow for up to 1,000 merchants, with reasons (ring evidence)
        for review and block results; the decisions are kept so that blocked merchants'
        listings go to review. Each merchant at most once per call (ids compared normalized:
        ``features/ids.py``; 400 naming the indexes)."""
        refused = duplicate_ids("merchants", "merchant_id", [m.merchant_id for m in merchants], merchant_key)
        if refused is not None:
            return refused

        def answer(model: Any) -> MerchantsResponse:
            results = merchant_results(model, merchants)
            claim_answer()  # past the time budget: raises, nothing stored
            self.merchant_decisions.record([(r.merchant_id, r.decision, r.score, r.model) for r in results])
            response = MerchantsResponse(request_id=uuid.uuid4().hex, results=results)
            self._log(response.request_id, MERCHANT_RISK.entity_type, [
                (merchant_key(r.merchant_id), r.decision, r.score, r.model, r.reasons,
                 m.model_dump(exclude_none=True)) for r, m in zip(results, merchants, strict=True)])
            return response

        return self._answer(MERCHANT_RISK, self.merchant_model, answer)

    @bentoml.api(route="/v1/streams/score")
    def score_stream(
        self,
        stream_id: EntityId = Field(...),
        segments: list[TranscriptSegment] = Field(..., min_length=1, max_length=MAX_BATCH),
        merchant_id: EntityId | None = Field(None),
    ) -> StreamResponse:
        """Per-segment category scores, labels and evidence spans, segment decisions and the
        stream decision (policy in ``serving/policy.py``). Concurrent calls share encoder
        batches (``serving/microbatch.py``). The text is measured as the model works on it,
        after Unicode normalization (NFKC)."""
        total = sum(normalized_length(s.text) for s in segments)
        if self.marketing_model is not None and total > MAX_STREAM_CHARS:
            return too_large("segments", f"the segments hold {total:,} characters after Unicode normalization "
                             f"(NFKC); a stream request may hold at most {MAX_STREAM_CHARS:,}: send the stream in "
                             "several requests")

        def answer(model: Any) -> StreamResponse:
            admission = current_admission()
            scores = self.stream_batcher.submit(segments, size=len(segments),
                                                cancelled=admission.cancelled if admission else lambda: False)
            stream = stream_answer(model, segments, merchant_id, self.merchant_decisions.blocked, scores)
            results = stream.segments
            response = StreamResponse(
                request_id=uuid.uuid4().hex, stream_id=stream_id, decision=stream.decision, score=stream.score,
                segments=results, reasons=stream.reasons, model=stream.model,
                spans_cut_short=stream.spans_cut_short,
            )
            inputs = {"stream_id": stream_id, "merchant_id": merchant_id,
                      "segments": [s.model_dump() for s in segments],
                      "segment_decisions": [r.decision for r in results],
                      "segment_labels": [r.labels for r in results],
                      "segment_spans": [[sp.model_dump() for sp in r.spans] for r in results]}
            claim_answer()  # past the time budget: raises, nothing stored
            self._log(response.request_id, FALSE_MARKETING.entity_type,
                      [(stream_id, stream.decision, response.score, model.tag, response.reasons, inputs)])
            return response

        return self._answer(FALSE_MARKETING, self.marketing_model, answer)

    @bentoml.api(route="/v1/feedback")
    def feedback(
        self,
        ctx: bentoml.Context,
        entity_id: EntityId = Field(...),
        entity_type: Literal["listing", "merchant", "stream"] | None = Field(None, description=(
            "what the verdict is about (required unless `model` names it): a listing, a merchant and a "
            "stream may share an id")),
        model: str | None = Field(None, min_length=1, max_length=160, description=(
            "the model whose decision is reviewed, NAME or NAME:VERSION (names the entity type; with a "
            "version, the decision must be that version's)")),
        label: str = Field(..., min_length=1, max_length=400,
                           description="inferior|ok (listings), suspicious|ok (merchants), ok or "
                                       "categories joined by | (stream segments)"),
        reviewer: str | None = Field(None, min_length=1, max_length=128, description=(
            "only with SHOPGUARD_AUTH=off; otherwise the reviewer is the calling token's name")),
        note: str = Field("", max_length=4000),
        request_id: str | None = Field(None, min_length=1, max_length=64),
        segment_index: int | None = Field(None, ge=0, le=1_000_000),
    ) -> FeedbackResponse:
        """Store a reviewer's outcome for a logged decision of the named entity type (stored
        at once). A reviewer's ``ok`` on a merchant lifts its standing block."""
        from serving.feedback import Feedback, FeedbackError, feedback_target, record_verdict

        principal = ctx.request.headers.get(PRINCIPAL_HEADER.decode())
        reviewer = principal or reviewer
        if reviewer is None:
            detail = [{"loc": ["body", "reviewer"], "msg": "name the reviewer (authentication is off)",
                       "type": "missing"}]
            return _with_status(ctx, JSONResponse({"detail": detail}, status_code=422))
        try:
            kind, version = feedback_target(entity_type, model)
            claim_answer()  # past the time budget: raises, nothing stored
            row = record_verdict(self.feedback_store, Feedback(entity_id, label, reviewer, kind, note, request_id,
                                                               segment_index, version),
                                 self.merchant_decisions.lift_block)
        except FeedbackError as exc:
            detail = [{"loc": [exc.field], "msg": str(exc), "type": "feedback"}]
            return _with_status(ctx, JSONResponse({"detail": detail}, status_code=exc.status))
        except WorkCancelled as exc:
            return _with_status(ctx, unavailable("feedback", f"the call was cancelled: {exc}",
                                                 error="time_budget_exceeded"))
        except SQLAlchemyError as exc:
            logger.warning("feedback not stored: %s", exc)
            body = ErrorBody(error="storage_unavailable", message="feedback cannot be stored right now; retry later")
            return _with_status(ctx, JSONResponse(body.model_dump(exclude_none=True), status_code=503,
                                                  headers={"Retry-After": "5"}))
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


def exit_worker() -> None:
    """Stop this worker (SIGTERM: a graceful shutdown); BentoML's supervisor starts a fresh one."""
    logger.critical("stopping this worker so that the supervisor starts a fresh one")
    os.kill(os.getpid(), signal.SIGTERM)


def forbid_unknown_fields(service: Any) -> None:
    """Refuse a body with a top-level field the API does not declare (400 naming it), on
    every API alike; records (listings, merchants, segments) already forbid unknown fields."""
    for method in service.apis.values():
        method.input_spec.model_config["extra"] = "forbid"
        method.input_spec.model_rebuild(force=True)


forbid_unknown_fields(ShopGuard)
ShopGuard.add_asgi_middleware(AuthGuard)  # outermost: anonymous calls cost nothing
ShopGuard.add_asgi_middleware(RequestGuard)
ShopGuard.add_asgi_middleware(ModelsPathMiddleware)
