"""The one table of model kinds (the way transformers' auto mapping names each model of
``models/<name>/``). Every place that lists models, or does something per model, reads it: a
kind is one folder (``kinds/<kind>/``) plus one line here.

A kind's folder holds its serving half (``record.py``, ``features.py``, ``runtime.py``,
``answers.py``) and its training half (``training.py``, ``pipeline.py`` and the parts it may be
split into: ``config.py``, ``data.py``, ``fitting.py``, ``decisions.py``, ``evaluation.py``;
``card.py``, ``generator.py``: ``KIND_TRAINING_MODULES``). What every kind implements is shared:
``kinds/runtime.py`` (``ModelRuntime``) and ``kinds/answers.py`` (``KindAnswers``).

A kind's line holds, as objects, what serving and batch jobs need: the API's record and
result schemas, the answer code (results, decision-log items, batch rows, the typed request
and response of its generated endpoint), the route of its scoring endpoint and its entity
type. Two parts are named by import path: the runtime class (imported on first use: heavy
libraries load only when a model is loaded), and the training half (``training``: trainer,
file scorer, evaluation and CLI command), which only ``training`` and the CLI resolve:
``serving`` never imports it.

Plug-in kinds (a fourth model kept outside this repository, or a test's): name their
``ModelKind`` objects in ``SHOPGUARD_KINDS`` (``package.module:ATTRIBUTE``, comma-separated);
they join the table when it is imported, in every process that reads the environment.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, create_model

from common.errors import ShopGuardError
from features.marketing import MARKETING_CATEGORIES
from kinds.answers import MAX_BATCH, Endpoint, KindAnswers
from kinds.false_marketing import answers as stream_answers
from kinds.false_marketing.answers import SegmentResult, StreamAnswers
from kinds.false_marketing.record import MARKETING_LABELS_COLUMN, TranscriptSegment
from kinds.listing_quality import answers as listing_answers
from kinds.listing_quality.answers import ListingAnswers, ListingResult
from kinds.listing_quality.record import LISTING_LABEL_COLUMN, ListingRecord
from kinds.merchant_risk import answers as merchant_answers
from kinds.merchant_risk.answers import MerchantAnswers, MerchantResult
from kinds.merchant_risk.record import MERCHANT_LABEL_COLUMN, MerchantRecord
from kinds.runtime import ModelRuntime

PLUGINS_ENV = "SHOPGUARD_KINDS"
CLEAN_FEEDBACK_LABEL = "ok"
TRAINING_PACKAGE = "training"
# The modules of a kind folder that belong to its training half: serving never imports them.
# `pipeline` may be kept in parts (false-marketing's config, data, fitting, decisions, evaluation).
KIND_TRAINING_MODULES: tuple[str, ...] = ("training", "pipeline", "card", "generator", "config", "data", "fitting",
                                          "decisions", "evaluation")


def is_training_module(module: str) -> bool:
    """Whether ``module`` is training code: the ``training`` package, or the training half of
    a kind folder (``kinds.<kind>.training``, ``.pipeline``, ``.card``, ``.generator``)."""
    parts = module.split(".")
    return parts[0] == TRAINING_PACKAGE or (
        len(parts) >= 3 and parts[0] == __name__ and parts[2] in KIND_TRAINING_MODULES)


def import_path(path: str) -> Any:
    """The object named by ``"package.module:attribute"``."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class ModelKind:
    """Everything the registry, the service, batch jobs, the CLI and the cards need to know
    about one model."""

    name: str
    entity_type: str  # decision log and feedback: listing | merchant | stream | a plug-in's
    id_field: str  # the field that identifies the entity (a request's or a record's)
    record: type[BaseModel]  # the API's record of one scored item
    result: type[BaseModel]  # the API's result of one item (streams: of one segment)
    answers: KindAnswers[Any]  # results, decision-log items and batch rows from a runtime's scores
    route: str  # the HTTP route of its scoring endpoint
    runtime_path: str  # the runtime class (``ModelRuntime``: from_bundle / save / score ...)
    training: str  # the training half (``training.kind_training.KindTraining``), resolved by training only
    label_column: str  # the label column of a training file
    positive_label: str | None  # feedback label of a positive item; None: multi-label categories
    categories: tuple[str, ...] = ()  # multi-label models: the taxonomy
    text_model: bool = False  # cards: text-model standards (languages, scripts) apply
    endpoint: Endpoint | None = None  # its scoring endpoint's typed request and response; None: ``records_endpoint``

    @property
    def multi_label(self) -> bool:
        """Whether the model scores several categories per item."""
        return bool(self.categories)

    @property
    def segmented(self) -> bool:
        """Whether a call's records are the segments of one scored entity (a stream's): a
        verdict names its segment (``segment_index``), an export has one row per segment.
        Declared by the kind's answers (``group_column``), not inferred from its labels."""
        return self.answers.group_column is not None

    @property
    def feedback_labels(self) -> tuple[str, ...]:
        """Labels a reviewer may give (multi-label: any ``|``-joined categories, or ``ok``)."""
        if self.positive_label is None:
            return (*self.categories, CLEAN_FEEDBACK_LABEL)
        return (self.positive_label, CLEAN_FEEDBACK_LABEL)

    @property
    def api(self) -> Endpoint:
        """The scoring endpoint the service generates for this kind: its own, or the plain
        ``{"records": [...]}`` one (``records_endpoint``)."""
        return self.endpoint if self.endpoint is not None else records_endpoint(self)

    def runtime_class(self) -> type[ModelRuntime]:
        """The runtime class (imported on first use: heavy libraries load only when needed)."""
        return import_path(self.runtime_path)


@functools.cache
def _records_models(record: type[BaseModel], result: type[BaseModel]) -> tuple[type[BaseModel], type[BaseModel]]:
    request = create_model(f"{record.__name__}Request", records=(
        list[record], Field(..., min_length=1, max_length=MAX_BATCH)))  # type: ignore[valid-type]
    response = create_model(f"{record.__name__}Results", request_id=(str, ...),
                            results=(list[result], ...))  # type: ignore[valid-type]
    return request, response


def records_endpoint(kind: ModelKind) -> Endpoint:
    """The endpoint of a kind that declares none (a plug-in's): ``records`` (up to 1,000 of
    ``kind.record``) in, ``request_id`` and one ``kind.result`` per record out."""
    request, response = _records_models(kind.record, kind.result)
    return Endpoint(name=f"score_{kind.name.replace('-', '_')}", request=request, records_field="records",
                    response=response, description=f"Decide block / review / allow for up to {MAX_BATCH:,} "
                                                   f"{kind.entity_type} records ({kind.name}).")


LISTING_QUALITY = ModelKind(
    name="listing-quality", entity_type="listing", id_field="listing_id", record=ListingRecord,
    result=ListingResult, answers=ListingAnswers(), route="/v1/listings/score",
    runtime_path="kinds.listing_quality.runtime:ListingQualityModel", training="kinds.listing_quality.training:TRAINING",
    label_column=LISTING_LABEL_COLUMN, positive_label="inferior", endpoint=listing_answers.ENDPOINT,
)
FALSE_MARKETING = ModelKind(
    name="false-marketing", entity_type="stream", id_field="stream_id", record=TranscriptSegment,
    result=SegmentResult, answers=StreamAnswers(), route="/v1/streams/score",
    runtime_path="kinds.false_marketing.runtime:FalseMarketingModel",
    training="kinds.false_marketing.training:TRAINING",
    label_column=MARKETING_LABELS_COLUMN, positive_label=None, categories=MARKETING_CATEGORIES, text_model=True,
    endpoint=stream_answers.ENDPOINT,
)
MERCHANT_RISK = ModelKind(
    name="merchant-risk", entity_type="merchant", id_field="merchant_id", record=MerchantRecord,
    result=MerchantResult, answers=MerchantAnswers(), route="/v1/merchants/score",
    runtime_path="kinds.merchant_risk.runtime:MerchantRiskModel", training="kinds.merchant_risk.training:TRAINING",
    label_column=MERCHANT_LABEL_COLUMN, positive_label="suspicious", endpoint=merchant_answers.ENDPOINT,
)


def plugin_kinds(spec: str) -> list[ModelKind]:
    """The ``ModelKind`` objects named in ``spec`` (``module:ATTRIBUTE``, comma-separated)."""
    kinds = []
    for path in filter(None, (part.strip() for part in spec.split(","))):
        try:
            kind = import_path(path)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ShopGuardError(f"{PLUGINS_ENV}: cannot import {path!r} ({exc}); name a ModelKind as "
                                 "package.module:ATTRIBUTE on the Python path.") from exc
        if not isinstance(kind, ModelKind):
            raise ShopGuardError(f"{PLUGINS_ENV}: {path} is a {type(kind).__name__}, not a ModelKind.")
        kinds.append(kind)
    return kinds


MODEL_KINDS: dict[str, ModelKind] = {
    k.name: k for k in (LISTING_QUALITY, FALSE_MARKETING, MERCHANT_RISK, *plugin_kinds(os.environ.get(PLUGINS_ENV, "")))}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_KINDS)
ENTITY_TYPES: tuple[str, ...] = tuple(k.entity_type for k in MODEL_KINDS.values())


def model_kind(name: str) -> ModelKind:
    """The kind of a model name, or an error listing the known ones."""
    try:
        return MODEL_KINDS[name]
    except KeyError:
        raise ShopGuardError(f"{name!r} is not a ShopGuard model; models are {', '.join(MODEL_NAMES)}.") from None


def kind_of_reference(reference: str) -> ModelKind:
    """The kind of ``NAME[:VERSION|alias]``, or the same error as ``model_kind`` for an unknown
    name (before a registry is asked for a version of a model that cannot exist)."""
    return model_kind(reference.partition(":")[0])


def kind_of_entity(entity_type: str) -> ModelKind:
    """The kind whose decisions concern ``entity_type`` (listing, merchant, stream)."""
    for kind in MODEL_KINDS.values():
        if kind.entity_type == entity_type:
            return kind
    raise ShopGuardError(f"no model scores entity type {entity_type!r}.")
