"""Record schemas shared by training files and the scoring API."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.ids import EntityId

ListingCategory = Literal[
    "beauty", "food", "supplements", "apparel", "electronics", "appliances", "baby", "home", "other"
]
LISTING_CATEGORIES: tuple[str, ...] = get_args(ListingCategory)

MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 5000
MAX_COUNT = 10**12  # sales, review counts, orders: far above any real figure, far below overflow
MAX_AMOUNT = 1e12  # prices, GMV, minutes, ratios


def normalized_length(value: str) -> int:
    """Characters of ``value`` after Unicode normalization (NFKC), what the text models work
    on: NFKC can expand a character many times (U+FDFA becomes 18 characters), and the other
    normalization steps (``features/text.py``) do not lengthen a text further."""
    return len(unicodedata.normalize("NFKC", value))


def checked_text(value: str, limit: int, required: bool) -> str:
    """The text if its Unicode-normalized (NFKC) form fits ``limit`` characters and, when
    ``required``, holds a letter or digit; else ``ValueError`` saying which rule failed.
    (NFKC can expand a character many times: U+FDFA becomes 18 characters.)"""
    normalized = unicodedata.normalize("NFKC", value)
    if len(normalized) > limit:
        raise ValueError(f"is {len(normalized):,} characters after Unicode normalization (NFKC); "
                         f"at most {limit:,} are accepted")
    if required and not any(unicodedata.category(c)[0] in "LN" for c in normalized):
        raise ValueError("has no letter or digit (empty after normalization: only spaces, "
                         "zero-width or symbol characters)")
    return value


class ListingRecord(BaseModel):
    """One product listing as the scoring API and training files describe it.
    Behaviour statistics are optional: a new listing has none, and the model handles missing."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    listing_id: EntityId
    merchant_id: EntityId | None = None
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    category: ListingCategory
    price: float = Field(ge=0, le=MAX_AMOUNT)
    list_price: float | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    image_count: int | None = Field(default=None, ge=0, le=1000)
    sales: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    rating: float | None = Field(default=None, ge=0, le=5)
    review_count: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    negative_review_rate: float | None = Field(default=None, ge=0, le=1)
    return_rate: float | None = Field(default=None, ge=0, le=1)
    complaint_rate: float | None = Field(default=None, ge=0, le=1)

    @field_validator("title")
    @classmethod
    def _title_has_content(cls, value: str) -> str:
        return checked_text(value, MAX_TITLE_CHARS, required=True)

    @field_validator("description")
    @classmethod
    def _description_fits(cls, value: str) -> str:
        return checked_text(value, MAX_DESCRIPTION_CHARS, required=False)


ColumnKind = Literal["text", "number", "integer", "label"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a training file: its kind and whether a file must have it."""

    name: str
    kind: ColumnKind
    required: bool


LISTING_LABEL_COLUMN = "is_inferior"
MERCHANT_LABEL_COLUMN = "is_suspicious"
MARKETING_LABELS_COLUMN = "labels"  # categories joined by "|"; empty when the segment is clean

LISTING_FIELDS: tuple[str, ...] = tuple(ListingRecord.model_fields)
# Training files carry the API's fields (required where the API requires them) plus the label.
LISTING_COLUMNS: tuple[ColumnSpec, ...] = tuple(
    ColumnSpec(name, "text" if name.endswith("_id") or name in ("title", "description", "category")
               else "number", info.is_required())
    for name, info in ListingRecord.model_fields.items()
) + (ColumnSpec(LISTING_LABEL_COLUMN, "label", True),)


MerchantLinkType = Literal[
    "shared_device", "shared_payout_account", "shared_return_address", "shared_owner_id"
]
MERCHANT_LINK_TYPES: tuple[str, ...] = get_args(MerchantLinkType)
MAX_LINKS_PER_MERCHANT = 1000


class MerchantLink(BaseModel):
    """A link from the scored merchant to another merchant."""

    model_config = ConfigDict(extra="forbid", strict=True)

    merchant_id: EntityId
    link_type: MerchantLinkType


class MerchantRecord(BaseModel):
    """A merchant's behaviour aggregates (every field must be present; null = unknown) and,
    optionally, its links. Links known at training time are added by the service."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    merchant_id: EntityId
    account_age_days: float | None = Field(ge=0, le=MAX_AMOUNT)
    orders_30d: float | None = Field(ge=0, le=MAX_AMOUNT)
    gmv_30d: float | None = Field(ge=0, le=MAX_AMOUNT)
    refund_rate: float | None = Field(ge=0, le=1)
    return_rate: float | None = Field(ge=0, le=1)
    complaint_rate: float | None = Field(ge=0, le=1)
    negative_review_rate: float | None = Field(ge=0, le=1)
    late_shipment_rate: float | None = Field(ge=0, le=1)
    no_ship_rate: float | None = Field(ge=0, le=1)
    presale_share: float | None = Field(ge=0, le=1)
    cs_response_minutes: float | None = Field(ge=0, le=MAX_AMOUNT)
    sales_spike_ratio: float | None = Field(ge=0, le=MAX_AMOUNT)
    review_burstiness: float | None = Field(ge=0, le=1)
    category_spread: float | None = Field(ge=0, le=MAX_AMOUNT)
    links: list[MerchantLink] = Field(default_factory=list, max_length=MAX_LINKS_PER_MERCHANT)


MAX_SEGMENT_CHARS = 2000


class TranscriptSegment(BaseModel):
    """One ASR segment of a livestream: its text and its time in the stream."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(min_length=1, max_length=MAX_SEGMENT_CHARS)
    start_ms: int = Field(ge=0, le=MAX_COUNT)
    end_ms: int = Field(ge=0, le=MAX_COUNT)

    @field_validator("text")
    @classmethod
    def _text_has_content(cls, value: str) -> str:
        return checked_text(value, MAX_SEGMENT_CHARS, required=True)

    @model_validator(mode="after")
    def _ends_after_start(self) -> TranscriptSegment:
        if self.end_ms < self.start_ms:
            raise ValueError("end_ms must not be before start_ms")
        return self
