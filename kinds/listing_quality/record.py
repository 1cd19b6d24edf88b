"""listing-quality's record: one product listing, as the scoring API and training files describe it."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from features.ids import ScoredId
from features.schemas import MAX_AMOUNT, MAX_COUNT, ColumnSpec, checked_text

ListingCategory = Literal[
    "beauty", "food", "supplements", "apparel", "electronics", "appliances", "baby", "home", "other"
]
LISTING_CATEGORIES: tuple[str, ...] = get_args(ListingCategory)

MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 5000
LISTING_LABEL_COLUMN = "is_inferior"


class ListingRecord(BaseModel):
    """One product listing as the scoring API and training files describe it.
    Behaviour statistics are optional: a new listing has none, and the model handles missing."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    listing_id: ScoredId
    merchant_id: ScoredId | None = None
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    description: Annotated[str, WithJsonSchema({  # null is accepted, as no description (a before-validator)
        "anyOf": [{"type": "string", "maxLength": MAX_DESCRIPTION_CHARS}, {"type": "null"}],
        "default": "", "title": "Description"}, mode="validation")] = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
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

    @field_validator("description", mode="before")
    @classmethod
    def _null_description_is_none(cls, value: object) -> object:
        """``null`` means no description, as ``null`` means "not known" for every other optional field."""
        return "" if value is None else value

    @field_validator("description")
    @classmethod
    def _description_fits(cls, value: str) -> str:
        return checked_text(value, MAX_DESCRIPTION_CHARS, required=False)


LISTING_FIELDS: tuple[str, ...] = tuple(ListingRecord.model_fields)
# Training files carry the API's fields (required where the API requires them) plus the label.
LISTING_COLUMNS: tuple[ColumnSpec, ...] = tuple(
    ColumnSpec(name, "text" if name.endswith("_id") or name in ("title", "description", "category")
               else "number", info.is_required())
    for name, info in ListingRecord.model_fields.items()
) + (ColumnSpec(LISTING_LABEL_COLUMN, "label", True),)
