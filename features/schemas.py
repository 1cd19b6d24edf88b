"""Record schemas shared by training files and the scoring API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LISTING_CATEGORIES: tuple[str, ...] = (
    "beauty", "food", "supplements", "apparel", "electronics", "appliances", "baby", "home", "other",
)
ListingCategory = Literal[
    "beauty", "food", "supplements", "apparel", "electronics", "appliances", "baby", "home", "other"
]

MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 5000


class ListingRecord(BaseModel):
    """One product listing as the scoring API and training files describe it.
    Behaviour statistics are optional: a new listing has none, and the model handles missing."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    listing_id: str = Field(min_length=1, max_length=128)
    merchant_id: str | None = Field(default=None, max_length=128)
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    category: ListingCategory
    price: float = Field(ge=0)
    list_price: float | None = Field(default=None, ge=0)
    image_count: int | None = Field(default=None, ge=0, le=1000)
    sales: int | None = Field(default=None, ge=0)
    rating: float | None = Field(default=None, ge=0, le=5)
    review_count: int | None = Field(default=None, ge=0)
    negative_review_rate: float | None = Field(default=None, ge=0, le=1)
    return_rate: float | None = Field(default=None, ge=0, le=1)
    complaint_rate: float | None = Field(default=None, ge=0, le=1)


ColumnKind = Literal["text", "number", "integer", "label"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a training file: its kind and whether a file must have it."""

    name: str
    kind: ColumnKind
    required: bool


LISTING_LABEL_COLUMN = "is_inferior"

LISTING_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("listing_id", "text", True),
    ColumnSpec("merchant_id", "text", False),
    ColumnSpec("title", "text", True),
    ColumnSpec("description", "text", False),
    ColumnSpec("category", "text", True),
    ColumnSpec("price", "number", True),
    ColumnSpec("list_price", "number", False),
    ColumnSpec("image_count", "number", False),
    ColumnSpec("sales", "number", False),
    ColumnSpec("rating", "number", False),
    ColumnSpec("review_count", "number", False),
    ColumnSpec("negative_review_rate", "number", False),
    ColumnSpec("return_rate", "number", False),
    ColumnSpec("complaint_rate", "number", False),
    ColumnSpec(LISTING_LABEL_COLUMN, "label", True),
)
