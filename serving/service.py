"""The ShopGuard BentoML service: ``bentoml serve serving.service:ShopGuard``.

Loads the ``production`` version of each model at start (``/readyz`` answers only after
that), then follows the alias: a promotion or a rollback is served within
``SHOPGUARD_FOLLOW_SECONDS`` without a restart (``serving/model_follower.py``). A model
without a production version answers 503 with ``fallback_decision: review`` until one is
promoted.

In a Bento (``shopguard bento build``), ``SHOPGUARD_RELEASE`` names the release file that
pins one version of each model; they are declared to BentoML as class-level ``BentoModel``
references, so ``bentoml build`` packs them (cards included) and the service loads them from
the Bento's own model store.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import signal
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import bentoml
from pydantic import Field
from pydantic_core import to_json
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from common.errors import error_body
from common.settings import Settings, load_settings
from database.engine import DatabaseUnreadable
from features.ids import EntityId
from kinds import (
    ENTITY_TYPES,
    MODEL_KINDS,
    ModelKind,
)
from kinds.answers import LogItem, Refused
from kinds.runtime import ModelRuntime, Scores, WorkCancelled
from policy.calls import FALLBACK_DECISION
from policy.store import EnforcementConflict, EnforcementNotFound
from registry.release import Release, served_release
from serving.admission import claim_answer, current_admission
from serving.auth import PRINCIPAL_HEADER, AuthGuard, TokenStore, decode_principal
from serving.console import console_app
from serving.decision_log import DecisionLogUnavailable
from serving.enforcement_api import enforcement_app
from serving.enforcement_writer import EnforcementUnavailable
from serving.error_answers import QUIET_LOG, install_log_filter
from serving.guard import RequestGuard
from serving.health import ServiceHealth
from serving.microbatch import MicroBatcher
from serving.model_follower import ModelFollower
from serving.models_api import ModelsPathMiddleware, models_app
from serving.protocol_errors import install_json_protocol_errors
from serving.schemas import AppealReason, AppealResponse, ErrorBody, FeedbackResponse

logger = logging.getLogger("shopguard.serving")
SETTINGS = load_settings()  # the service's shape (workers, threads, limits) is read once, at import
# This worker's readiness (/readyz): written by the service, read by its front door; both are
# handed it explicitly (the service below, RequestGuard at construction).
WORKER_HEALTH = ServiceHealth()


def configure_worker(settings: Settings) -> None:
    """This worker's process-wide settings, before any request: JSON answers to unparsable
    requests, the service's own log lines at INFO, and a loud warning when tokens are off."""
    logging.getLogger("shopguard").setLevel(logging.INFO)  # BentoML leaves the root at WARNING
    install_json_protocol_errors()
    if not settings.auth:
        logger.warning("!" * 72)
        logger.warning("SHOPGUARD_AUTH=off: ANYONE who reaches this port can score, send feedback and read "
                       "models. Local experiments only.")
        logger.warning("!" * 72)


def token_store(settings: Settings) -> TokenStore | None:
    """The tokens the front door checks (None: ``SHOPGUARD_AUTH=off``). An unreadable
    database is said once by the service's start; token checks answer 503 meanwhile."""
    from database.engine import make_engine

    if not settings.auth:
        return None
    try:
        store = TokenStore(make_engine(settings.database_url))
    except DatabaseUnreadable:
        from sqlalchemy import create_engine

        store = TokenStore(create_engine(settings.database_url))
    WORKER_HEALTH.reads = [store.reading.problem]  # /readyz says when tokens cannot be checked
    return store


RELEASE: Release | None = served_release(SETTINGS.release)


def released_model(kind: ModelKind) -> bentoml.models.BentoModel | None:
    """The BentoML reference of the release's version of ``kind`` (None without a release):
    what ``bentoml build`` packs into the Bento."""
    if RELEASE is None or kind.name not in RELEASE.models:
        return None
    return bentoml.models.BentoModel(RELEASE.models[kind.name].tag)


# A request whose decisions cannot be stored is not answered with them (503 + fallback).
STORAGE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, DecisionLogUnavailable, EnforcementUnavailable)
# BentoML's own limits answer 429 and 504 bodies that callers cannot act on: its concurrency
# limit is off (the front door sheds with 503), and its timeout sits past every limit of ours.
BENTOML_TIMEOUT_SECONDS = SETTINGS.body_timeout_seconds + SETTINGS.request_budget_seconds + 120


def unavailable(model_name: str, why: str, error: str = "model_unavailable", retry_after: int = 5) -> JSONResponse:
    """503 telling the caller to fall back to review."""
    body = ErrorBody(
        error=error,
        message=f"{model_name} cannot score right now ({why}); treat the items as 'review'.",
        fallback_decision=FALLBACK_DECISION,
    )
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": str(retry_after)})


def budget_exceeded(what: str, exc: Exception) -> JSONResponse:
    """503 ``time_budget_exceeded`` for work that stopped at its budget's end: the answer the
    front door (``serving/guard.py``) gives for the same call when its timer fires first."""
    return unavailable(what, f"the call was cancelled: {exc}", error="time_budget_exceeded", retry_after=1)


def storage_unavailable(what: str) -> JSONResponse:
    """503: ``what`` cannot be stored now (the database is unavailable); retry later."""
    body = ErrorBody(error="storage_unavailable", message=f"{what} cannot be stored right now; retry later")
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503, headers={"Retry-After": "5"})


def refused(refusal: Refused) -> JSONResponse:
    """The answer to a call that cannot be answered as sent (400 or 413 naming the field)."""
    return JSONResponse(refusal.body, status_code=refusal.status)


def check_api_fields(kind: ModelKind, model: ModelRuntime) -> None:
    """Refuse a model that needs inputs the API's records do not carry (a merchant model
    trained on a generic table's columns)."""
    missing = model.missing_api_fields(kind.record)
    if missing:
        raise ValueError(f"{model.tag} uses features {missing[:3]} that the API's {kind.record.__name__} lacks; "
                         "promote a model trained on its columns")


EntityType = Literal[ENTITY_TYPES]  # type: ignore[valid-type]


def _with_status(ctx: bentoml.Context, response: JSONResponse) -> JSONResponse:
    """An API taking ``ctx`` answers with ``ctx.response.status_code``: keep the error's own."""
    ctx.response.status_code = response.status_code
    return response


class ShopGuard:
    """Scores listings, livestream transcripts and merchants (and every plug-in kind): one
    model per kind of the kinds table (``kinds/__init__.py``)."""

    health: ServiceHealth = WORKER_HEALTH

    def __init__(self) -> None:
        from database.engine import make_engine
        from registry.deployments import ServedVersions, report_seconds
        from serving.process import die_with_parent

        die_with_parent()  # a worker never outlives the server process that started it
        configure_worker(SETTINGS)
        from policy.document import load_policy
        from policy.store import EnforcementStore
        from registry.store import ModelRegistry
        from serving.decision_log import DecisionLogWriter
        from serving.enforcement_clock import EnforcementClock
        from serving.enforcement_writer import EnforcementWriter
        from serving.feedback import FeedbackStore

        self.settings = SETTINGS
        self.policy = load_policy(self.settings.policy)  # a policy that does not validate stops the start here
        self.load_errors: dict[str, str] = {}
        self.storage_down: str | None = None
        self.follower: ModelFollower | None = None
        try:
            make_engine(self.settings.database_url)  # migrated and readable, or one clear line
        except DatabaseUnreadable as exc:
            self._start_without_storage(exc)
            return
        self.registry = ModelRegistry(self.settings)
        self.models: dict[str, ModelRuntime | None] = {name: self._load(kind) for name, kind in MODEL_KINDS.items()}
        self.batchers: dict[str, MicroBatcher[Any, Scores]] = {
            name: self._batcher(name, model) for name, model in self.models.items()
            if model is not None and MODEL_KINDS[name].answers.micro_batched}
        engine = make_engine(self.settings.database_url)
        # Rooms, credit, points: one transaction per scored call, committed before its answer.
        self.enforcement = EnforcementStore(make_engine(self.settings.database_url, immediate=True), self.policy,
                                            read_engine=engine)
        # Scoring calls' enforcement: group commit in a process of its own (serving/enforcement_writer.py).
        self.enforcement_writer = EnforcementWriter(self.settings.database_url,
                                                    str(self.settings.policy) if self.settings.policy else None)
        self.health.storage = [self.enforcement_writer.storage.problem]
        self.decision_log: DecisionLogWriter | None = None
        if self.settings.decision_log:
            # Its own engine with a short lock wait: a busy database costs a request at most about
            # a second before its records go to the local journal.
            self.decision_log = DecisionLogWriter(
                make_engine(self.settings.database_url, busy_timeout=0.25),
                flush_seconds=self.settings.decision_log_flush_seconds,
                journal_dir=self.settings.home / "journal", on_give_up=exit_worker)
            self.health.decision_log = self.decision_log.health
        else:
            logger.warning("SHOPGUARD_DECISION_LOG=off: decisions are NOT recorded (overhead measurement only)")
        self.feedback_store = FeedbackStore(engine)
        self.clock = EnforcementClock(self.enforcement, self.feedback_store, self.settings.enforcement_tick_seconds)
        if self.settings.enforcement:
            logger.info("policy %s", self.policy.version)
        else:
            logger.warning("SHOPGUARD_ENFORCEMENT=off: calls are answered on their own, no room, credit or points "
                           "(overhead measurement only)")
        self.follower = ModelFollower(
            self.registry.aliases, ServedVersions(engine), list(MODEL_KINDS), served=lambda: dict(self.models),
            load=self._load_version, swap=self._swap, every_seconds=report_seconds(self.settings),
            follow=RELEASE is None and self.settings.follow_seconds > 0, after_round=self._report_health)
        self._report_health()
        self.follower.start()
        install_log_filter()
        self._keep_api_callables()

    def _start_without_storage(self, exc: DatabaseUnreadable) -> None:
        """A worker whose database cannot be opened stays up, not ready (``/readyz`` 503 naming
        the cause) and answers every call 503 ``storage_unavailable``: restarting it would only
        fail again, and fill the log."""
        self.storage_down = str(exc)
        logger.error("%s Every call answers 503 storage_unavailable until the service restarts.", exc)
        self.models = dict.fromkeys(MODEL_KINDS)
        self.load_errors = dict.fromkeys(MODEL_KINDS, exc.cause)
        self.batchers, self.decision_log, self.enforcement_writer, self.clock = {}, None, None, None
        self.health.storage = [lambda: exc.cause]
        self.health.models = {name: {"production": None, "loaded": False, "model": None, "error": exc.cause}
                         for name in MODEL_KINDS}
        install_log_filter()
        self._keep_api_callables()

    def _keep_api_callables(self) -> None:
        """Build each API's callable once. BentoML looks the API up on the instance for every
        request, and its descriptor rebuilds the callable each time (``inspect.signature`` of
        the method: 5% of a stream call's CPU); an instance attribute is found first."""
        for name in ShopGuard.apis:  # the service (this module's name for it once decorated)
            self.__dict__[name] = getattr(self, name)

    def _report_health(self) -> None:
        """What ``/readyz`` says: per model, its production version (the release's pin in a
        Bento), whether one is loaded and which (``model``), and why it is not production
        (``follow_error``: the new version failed to load and the old one still serves)."""
        follow_errors = self.follower.state.errors if self.follower is not None else {}
        models = {}
        for name, model in self.models.items():
            if RELEASE is not None:
                production = RELEASE.models[name].tag.split(":")[1] if name in RELEASE.models else None
            else:
                production = self.registry.aliases.get(name, "production")
            models[name] = {"production": production,
                            "loaded": model is not None, "model": model.tag if model is not None else None,
                            "error": self.load_errors.get(name), "follow_error": follow_errors.get(name)}
        self.health.models = models

    def _batcher(self, name: str, model: ModelRuntime) -> MicroBatcher[Any, Scores]:
        """One runtime batch for the records of concurrent calls (``score_groups``: each call
        keeps its own answer, and for streams its own span budget)."""
        return MicroBatcher(model.score_groups, max_items=self.settings.stream_batch_segments,
                            max_wait_s=self.settings.stream_batch_wait_ms / 1000, name=f"{name}-batcher")

    @bentoml.on_shutdown
    def flush_decision_log(self) -> None:
        """Finish the queued micro-batches, then write every accepted decision record before
        the worker exits."""
        if self.follower is not None:
            self.follower.close()
        if self.clock is not None:
            self.clock.close()
        for batcher in self.batchers.values():
            batcher.close()
        if self.enforcement_writer is not None:
            self.enforcement_writer.close()
        if self.decision_log is not None:
            self.decision_log.close()

    def _load(self, kind: ModelKind) -> ModelRuntime | None:
        """The kind's production runtime, or None with the reason kept for its 503 answers."""
        try:
            if RELEASE is not None:
                pinned = RELEASE.pinned(kind.name)
                bundle = self.registry.load_pinned(pinned.tag, pinned.manifest_sha256)
            else:
                bundle = self.registry.load(f"{kind.name}:production")
            model = self._runtime(kind, bundle)
        except Exception as exc:  # any failure: reported per endpoint as 503
            self.load_errors[kind.name] = str(exc)
            logger.error("%s not loaded: %s", kind.name, exc)
            return None
        logger.info("loaded %s", model.tag)
        return model

    def _runtime(self, kind: ModelKind, bundle: Any) -> ModelRuntime:
        """A verified bundle as a runtime on this worker's device, checked against the API."""
        model = kind.runtime_class().from_bundle(bundle, device=self.settings.device,
                                                 threads=self.settings.threads_per_worker())
        check_api_fields(kind, model)
        return model

    def _load_version(self, name: str, version: str) -> ModelRuntime:
        """``name:version`` loaded, verified and checked (raises on any failure): the model
        follower's next runtime."""
        return self._runtime(MODEL_KINDS[name], self.registry.load(f"{name}:{version}"))

    def _swap(self, name: str, model: ModelRuntime) -> None:
        """Put ``model`` in service for its kind. A call that already holds the old runtime
        finishes with it (its micro-batcher, once closed, runs late jobs in their callers)."""
        old_batcher = self.batchers.get(name)
        if MODEL_KINDS[name].answers.micro_batched:
            self.batchers[name] = self._batcher(name, model)
        self.models[name] = model
        self.load_errors.pop(name, None)
        if old_batcher is not None:
            old_batcher.close()

    def _score(self, kind: ModelKind, records: Sequence[Any], request: dict[str, Any], field: str) -> Any:
        """Every scoring endpoint's work: the kind's refusals (400 / 413 naming the field), its
        answer from the production runtime, enforcement (a repeated chunk gets its first answer;
        the call's room, credit and points are committed), then the decisions logged. 503 with
        the fallback when the model is not loaded, the call's time budget ran out (its work is
        cancelled, nothing stored) or the decisions cannot be stored (a decision that is not
        stored is not answered, and counts nothing)."""
        refusal = kind.answers.refusal(records, field)
        if refusal is not None:
            return refused(refusal)
        model = self.models.get(kind.name)
        if model is None:
            return unavailable(kind.name, self.load_errors.get(kind.name, "not loaded"),
                               error="storage_unavailable" if self.storage_down else "model_unavailable")
        refusal = kind.answers.work_refusal(records)
        if refusal is not None:
            return refused(refusal)
        try:
            enforced = self.settings.enforcement
            key = kind.answers.call_key(records, request) if enforced else None
            answer = kind.answers.answer(model, records, request, self.enforcement.holds,
                                         self._batched_scores(kind, records, model), self.policy.calls)
            request_id = uuid.uuid4().hex
            claim_answer()  # past the time budget: raises, nothing stored
            fields = {"request_id": request_id, **request, **answer.fields}
            event = (kind.answers.enforcement_event(answer, records, request, request_id, self.enforcement.clock())
                     if enforced else None)
            if event is None:
                self._log(request_id, kind.entity_type, answer.log)
                return fields
            # The call's enforcement and its decision records commit in one transaction.
            decisions = self._records(request_id, kind.entity_type, answer.log)
            applied = self.enforcement_writer.submit(event, key.segments_sha256 if key else None,
                                                     to_json(fields).decode(), tuple(decisions) if self.decision_log else ())
            if applied.repeated is not None:  # the same chunk, committed by a concurrent call
                return self._repeat(kind, records, request, applied.repeated)
            return {**fields, **applied.added}
        except EnforcementConflict as exc:
            return conflict(exc.field, str(exc))
        except WorkCancelled as exc:  # serving/admission.py: no decision of this call is stored
            logger.warning("%s: work cancelled (%s); no decision stored", kind.name, exc)
            return budget_exceeded(kind.name, exc)
        except STORAGE_ERRORS as exc:  # enforcement or decision records not stored
            QUIET_LOG.note(f"storage-{kind.name}", "%s: calls answer 503 storage_unavailable: %s", kind.name,
                           str(exc).splitlines()[0][:300], logger_name="shopguard.serving", level=logging.WARNING)
            return unavailable(kind.name, "its decisions cannot be stored right now", error="storage_unavailable")

    def _repeat(self, kind: ModelKind, records: Sequence[Any], request: dict[str, Any],
                first: dict[str, Any]) -> dict[str, Any]:
        """A repeated call's first answer; its decision is logged again (stored once: the
        first attempt's record may have been lost with its answer)."""
        self._log(first["request_id"], kind.entity_type, kind.answers.repeated_log(records, request, first))
        return first

    def _batched_scores(self, kind: ModelKind, records: Sequence[Any], model: ModelRuntime) -> Scores | None:
        """The records' scores from the kind's micro-batcher (None: the answer scores them, as
        for a call that began just before its model was swapped)."""
        batcher = self.batchers.get(kind.name)
        if batcher is None or batcher.work != model.score_groups:
            return None
        admission = current_admission()
        return batcher.submit(records, size=len(records),
                              cancelled=admission.cancelled if admission else lambda: False)

    @staticmethod
    def _respond(response: type[Any], answer: Any) -> Any:
        """The typed response of an answer, or the error response as it is."""
        return response(**answer) if isinstance(answer, dict) else answer

    @bentoml.api(route="/v1/feedback")
    def feedback(
        self,
        ctx: bentoml.Context,
        entity_id: EntityId = Field(...),
        entity_type: EntityType | None = Field(None, description=(
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
        at once), then apply it to enforcement: an ``ok`` on a decision that cost points gives
        them back and lifts what no longer stands (a merchant's ``ok`` lifts its hold); a
        verdict naming a review segment's categories charges them."""
        from serving.feedback import Feedback, FeedbackError, feedback_target, record_verdict

        if self.storage_down:
            return _with_status(ctx, storage_unavailable("feedback"))
        principal = decode_principal(ctx.request.headers.get(PRINCIPAL_HEADER.decode()))
        if principal is not None and reviewer is not None:  # the token names the reviewer: never a body field
            body = error_body(400, "reviewer", "the reviewer is the calling token's name; leave reviewer out",
                              "extra_forbidden")
            return _with_status(ctx, JSONResponse(body, status_code=400))
        reviewer = principal or reviewer
        if reviewer is None:
            body = error_body(422, "reviewer", "name the reviewer (authentication is off)", "missing")
            return _with_status(ctx, JSONResponse(body, status_code=422))
        try:
            kind, version = feedback_target(entity_type, model)
            claim_answer()  # past the time budget: raises, nothing stored
            row = record_verdict(self.feedback_store, Feedback(entity_id, label, reviewer, kind, note, request_id,
                                                               segment_index, version),
                                 self.clock.apply_verdict)
        except FeedbackError as exc:
            return _with_status(ctx, JSONResponse(error_body(exc.status, exc.field, str(exc), "feedback"),
                                                  status_code=exc.status))
        except WorkCancelled as exc:
            return _with_status(ctx, budget_exceeded("feedback", exc))
        except SQLAlchemyError as exc:
            logger.warning("feedback not stored: %s", exc)
            return _with_status(ctx, storage_unavailable("feedback"))
        return FeedbackResponse(feedback_id=row["id"], entity_type=row["entity_type"], entity_id=row["entity_id"],
                                request_id=row["request_id"], segment_index=row["segment_index"],
                                label=row["label"], model=row["model"])

    @bentoml.api(route="/v1/appeals")
    def appeal(
        self,
        ctx: bentoml.Context,
        ledger_entry_id: int = Field(..., ge=1, le=2**53, description="the ledger entry appealed (a charge)"),
        appellant: EntityId = Field(..., description="who appeals (the creator or merchant)"),
        reason: AppealReason = Field(..., description="why (a letter or digit at least)"),
    ) -> AppealResponse:
        """Appeal a charge of a creator's or merchant's ledger: one appeal per entry, within
        the policy's deadline (``appeals.deadline_days``); 201 with the appeal, 404 naming
        ``ledger_entry_id`` when there is no such entry, 409 naming it when it was appealed
        already, is past its deadline or is not a standing charge. Reviewers decide appeals
        in the console."""
        if self.storage_down:
            return _with_status(ctx, storage_unavailable("the appeal"))
        try:
            claim_answer()
            filed_by = decode_principal(ctx.request.headers.get(PRINCIPAL_HEADER.decode()))
            appeal = self.enforcement.file_appeal(ledger_entry_id, appellant, reason, filed_by)
        except (EnforcementConflict, EnforcementNotFound) as exc:
            status = 404 if isinstance(exc, EnforcementNotFound) else 409
            body = error_body(status, exc.field, str(exc), "appeal")
            return _with_status(ctx, JSONResponse(body, status_code=status))
        except WorkCancelled as exc:
            return _with_status(ctx, budget_exceeded("appeals", exc))
        except SQLAlchemyError as exc:
            logger.warning("appeal not stored: %s", exc)
            return _with_status(ctx, storage_unavailable("the appeal"))
        ctx.response.status_code = 201
        return AppealResponse(appeal_id=appeal.id, ledger_entry_id=appeal.ledger_entry_id,
                              entity_type=appeal.entity_type, entity_id=appeal.entity_id,
                              appellant=appeal.appellant, status=appeal.status, filed_at=appeal.filed_at,
                              filed_by=appeal.filed_by)

    def _log(self, request_id: str, entity_type: str, items: Sequence[LogItem]) -> None:
        """Store the decision records (group commit, journal when the database is busy)."""
        if self.decision_log is not None:
            self.decision_log.record(self._records(request_id, entity_type, items))

    def _records(self, request_id: str, entity_type: str, items: Sequence[LogItem]) -> list[Any]:
        from serving.decision_log import DecisionRecord

        return [DecisionRecord(request_id, entity_type, item.entity_id, item.decision, item.score, item.model,
                               [r.model_dump() for r in item.reasons], item.inputs,
                               record_id=stable_record_id(request_id, i, item.entity_id), policy=self.policy.version)
                for i, item in enumerate(items)]


def stable_record_id(request_id: str, index: int, entity_id: str) -> str:
    """A decision record's id, the same whenever the same answer is logged again (a repeated
    chunk), so that the log stores it once."""
    import hashlib

    return hashlib.sha256(f"{request_id}\x1f{index}\x1f{entity_id}".encode()).hexdigest()[:32]


def conflict(field: str, message: str) -> JSONResponse:
    """409 naming the field that contradicts what is stored."""
    return JSONResponse(error_body(409, field, message), status_code=409)


def exit_worker() -> None:
    """Stop this worker (SIGTERM: a graceful shutdown); BentoML's supervisor starts a fresh one."""
    logger.critical("stopping this worker so that the supervisor starts a fresh one")
    os.kill(os.getpid(), signal.SIGTERM)


def strict_bodies(service: Any) -> None:
    """Every API's body as strict as its records (listings, merchants, segments): a top-level
    field the API does not declare is refused (400 naming it, ``extra_forbidden``) and so is a
    value of another JSON type (``"chunk": true``, ``"1"`` or ``2.0``, ``"ledger_entry_id":
    "15"``: 400 naming the field), never coerced."""
    for method in service.apis.values():
        method.input_spec.model_config.update(extra="forbid", strict=True)
        method.input_spec.model_rebuild(force=True)


def kind_api(kind: ModelKind) -> Any:
    """The kind's scoring endpoint, generated from its line in the kinds table: ``POST
    <kind.route>`` taking the fields of ``kind.api.request`` (one holds the records, the others
    go to the answer as the call's request fields) and answering ``kind.api.response``. BentoML
    reads the parameters from the signature, so the OpenAPI shows the kind's own types."""
    endpoint = kind.api
    records_field = endpoint.records_field

    def score(self: ShopGuard, **body: Any) -> Any:
        records = body.pop(records_field)
        return self._respond(endpoint.response, self._score(kind, records, body, records_field))

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=info.annotation,
                          default=copy.copy(info))
        for name, info in endpoint.request.model_fields.items()]
    score.__signature__ = inspect.Signature(parameters, return_annotation=endpoint.response)  # type: ignore[attr-defined]
    score.__annotations__ = {**{p.name: p.annotation for p in parameters[1:]}, "return": endpoint.response}
    score.__name__ = score.__qualname__ = endpoint.name
    score.__doc__ = endpoint.description
    return bentoml.api(route=kind.route)(score)


def add_kind_endpoints(service_class: type) -> None:
    """Declare every kind's model to BentoML (what ``bentoml build`` packs into a Bento) and
    give each kind its generated scoring endpoint (``kind_api``)."""
    for kind in MODEL_KINDS.values():
        setattr(service_class, f"{kind.name.replace('-', '_')}_model_ref", released_model(kind))
        setattr(service_class, kind.api.name, kind_api(kind))


add_kind_endpoints(ShopGuard)
ShopGuard = bentoml.mount_asgi_app(console_app, path="/console")(  # type: ignore[misc]
    bentoml.mount_asgi_app(enforcement_app, path="/v1")(  # type: ignore[misc]
    bentoml.mount_asgi_app(models_app, path="/v1/models")(bentoml.service(  # type: ignore[misc]
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
)(ShopGuard))))
strict_bodies(ShopGuard)
ShopGuard.add_asgi_middleware(AuthGuard, store=lambda: token_store(SETTINGS),  # outermost: anonymous calls
                              metrics_enabled=SETTINGS.metrics)               # cost nothing
ShopGuard.add_asgi_middleware(RequestGuard, max_in_flight=SETTINGS.max_in_flight,
                              max_open_requests=SETTINGS.max_open_requests,
                              body_timeout_seconds=SETTINGS.body_timeout_seconds,
                              budget_seconds=SETTINGS.request_budget_seconds, health=WORKER_HEALTH)
ShopGuard.add_asgi_middleware(ModelsPathMiddleware)
