"""merchant-risk's record: a merchant's behaviour aggregates and its links to other merchants."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from features.ids import ScoredId
from features.schemas import MAX_AMOUNT

MERCHANT_LABEL_COLUMN = "is_suspicious"
MerchantLinkType = Literal[
    "shared_device", "shared_payout_account", "shared_return_address", "shared_owner_id"
]
MERCHANT_LINK_TYPES: tuple[str, ...] = get_args(MerchantLinkType)
MAX_LINKS_PER_MERCHANT = 1000


class MerchantLink(BaseModel):
    """A link from the scored merchant to another merchant."""

    model_config = ConfigDict(extra="forbid", strict=True)

    merchant_id: ScoredId
    link_type: MerchantLinkType


class MerchantRecord(BaseModel):
    """A merchant's behaviour aggregates (every field must be present; null = unknown) and,
    optionally, its links. Links known at training time are added by the service."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    merchant_id: ScoredId
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
