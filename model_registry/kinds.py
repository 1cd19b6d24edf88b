"""The one table of model kinds. Every place that lists models, or does something per model,
reads it: a kind is its own files plus one line here.

A kind's line holds, as objects, what serving and batch jobs need: the API's record and
result schemas, the answer code (``model_registry/answers/``: results, decision-log items,
batch rows), the route of its scoring endpoint and its entity type. Two parts are named by
import path: the runtime class (imported on first use: heavy libraries load only when a
model is loaded, and runtimes import the registry), and the training half (``training``:
trainer, file scorer, evaluation and CLI command), which only ``training`` and the CLI
resolve (``training/kinds/``): ``serving`` never imports it.

Plug-in kinds (a fourth model kept outside this repository, or a test's): name their
``ModelKind`` objects in ``SHOPGUARD_KINDS`` (``package.module:ATTRIBUTE``, comma-separated);
they join the table when it is imported, in every process that reads the environment.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from features.errors import ShopGuardError
from features.marketing import MARKETING_CATEGORIES
from features.schemas import (
    LISTING_LABEL_COLUMN,
    MARKETING_LABELS_COLUMN,
    MERCHANT_LABEL_COLUMN,
    ListingRecord,
    MerchantRecord,
    TranscriptSegment,
)
from model_registry.answers import KindAnswers
from model_registry.answers.listing import ListingAnswers, ListingResult
from model_registry.answers.merchant import MerchantAnswers, MerchantResult
from model_registry.answers.stream import SegmentResult, StreamAnswers
from model_registry.runtimes.base import ModelRuntime

PLUGINS_ENV = "SHOPGUARD_KINDS"
CLEAN_FEEDBACK_LABEL = "ok"


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
    training: str  # the training half (``training.kinds.KindTraining``), resolved by training only
    label_column: str  # the label column of a training file
    positive_label: str | None  # feedback label of a positive item; None: multi-label categories
    categories: tuple[str, ...] = ()  # multi-label models: the taxonomy
    text_model: bool = False  # cards: text-model standards (languages, scripts) apply

    @property
    def multi_label(self) -> bool:
        """Whether the model scores several categories per item."""
        return bool(self.categories)

    @property
    def feedback_labels(self) -> tuple[str, ...]:
        """Labels a reviewer may give (multi-label: any ``|``-joined categories, or ``ok``)."""
        if self.positive_label is None:
            return (*self.categories, CLEAN_FEEDBACK_LABEL)
        return (self.positive_label, CLEAN_FEEDBACK_LABEL)

    def runtime_class(self) -> type[ModelRuntime]:
        """The runtime class (imported on first use: heavy libraries load only when needed)."""
        return import_path(self.runtime_path)


LISTING_QUALITY = ModelKind(
    name="listing-quality", entity_type="listing", id_field="listing_id", record=ListingRecord,
    result=ListingResult, answers=ListingAnswers(), route="/v1/listings/score",
    runtime_path="model_registry.runtimes.listing:ListingQualityModel", training="training.kinds.listing_quality:TRAINING",
    label_column=LISTING_LABEL_COLUMN, positive_label="inferior",
)
FALSE_MARKETING = ModelKind(
    name="false-marketing", entity_type="stream", id_field="stream_id", record=TranscriptSegment,
    result=SegmentResult, answers=StreamAnswers(), route="/v1/streams/score",
    runtime_path="model_registry.runtimes.marketing:FalseMarketingModel",
    training="training.kinds.false_marketing:TRAINING",
    label_column=MARKETING_LABELS_COLUMN, positive_label=None, categories=MARKETING_CATEGORIES, text_model=True,
)
MERCHANT_RISK = ModelKind(
    name="merchant-risk", entity_type="merchant", id_field="merchant_id", record=MerchantRecord,
    result=MerchantResult, answers=MerchantAnswers(), route="/v1/merchants/score",
    runtime_path="model_registry.runtimes.merchant:MerchantRiskModel", training="training.kinds.merchant_risk:TRAINING",
    label_column=MERCHANT_LABEL_COLUMN, positive_label="suspicious",
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


def kind_of_entity(entity_type: str) -> ModelKind:
    """The kind whose decisions concern ``entity_type`` (listing, merchant, stream)."""
    for kind in MODEL_KINDS.values():
        if kind.entity_type == entity_type:
            return kind
    raise ShopGuardError(f"no model scores entity type {entity_type!r}.")
