"""The one table of model kinds. Every place that lists models reads it.

Adding a model means: a features module, a runtime (``model_registry/runtimes``), a
training pipeline and a card builder (``training``), and one ``ModelKind`` entry here.
Parts that live in ``training`` are named by import path, so that this package (and
``serving``, which reads the table) never imports training code.
"""

from __future__ import annotations

import importlib
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

CLEAN_FEEDBACK_LABEL = "ok"


def import_path(path: str) -> Any:
    """The object named by ``"package.module:attribute"``."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class ModelKind:
    """Everything the registry, the service, the CLI and the cards need to know about one model."""

    name: str
    entity_type: str  # decision log and feedback: listing | merchant | stream
    id_field: str  # the request field that identifies the entity
    record: type[BaseModel]  # the API's record of one scored item
    runtime_path: str  # the runtime class (from_bundle / save / score)
    label_column: str  # the label column of a training file
    positive_label: str | None  # feedback label of a positive item; None: multi-label categories
    categories: tuple[str, ...] = ()  # multi-label models: the taxonomy
    text_model: bool = False  # cards: text-model standards (languages, scripts) apply
    pipeline_path: str = ""  # training: the trainer module (train + register)
    file_scorer_path: str = ""  # training: scores a labelled file (compare, evaluate)
    card_builder_path: str = ""  # training: builds the model card

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

    def runtime_class(self) -> Any:
        """The runtime class (imported on first use: heavy libraries load only when needed)."""
        return import_path(self.runtime_path)


LISTING_QUALITY = ModelKind(
    name="listing-quality", entity_type="listing", id_field="listing_id", record=ListingRecord,
    runtime_path="model_registry.runtimes.listing:ListingQualityModel",
    label_column=LISTING_LABEL_COLUMN, positive_label="inferior",
    pipeline_path="training.listing_quality", file_scorer_path="training.compare:score_listing_file",
    card_builder_path="training.listing_card:build_listing_card",
)
FALSE_MARKETING = ModelKind(
    name="false-marketing", entity_type="stream", id_field="stream_id", record=TranscriptSegment,
    runtime_path="model_registry.runtimes.marketing:FalseMarketingModel",
    label_column=MARKETING_LABELS_COLUMN, positive_label=None, categories=MARKETING_CATEGORIES,
    text_model=True, pipeline_path="training.false_marketing",
    file_scorer_path="training.compare:score_segment_file",
    card_builder_path="training.marketing_card:build_marketing_card",
)
MERCHANT_RISK = ModelKind(
    name="merchant-risk", entity_type="merchant", id_field="merchant_id", record=MerchantRecord,
    runtime_path="model_registry.runtimes.merchant:MerchantRiskModel",
    label_column=MERCHANT_LABEL_COLUMN, positive_label="suspicious",
    pipeline_path="training.merchant_risk", file_scorer_path="training.compare:score_merchant_file",
    card_builder_path="training.merchant_card:build_merchant_card",
)

MODEL_KINDS: dict[str, ModelKind] = {k.name: k for k in (LISTING_QUALITY, FALSE_MARKETING, MERCHANT_RISK)}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_KINDS)


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
