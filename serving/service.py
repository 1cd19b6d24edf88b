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

configure_bentoml_home(load_settings())  # before bentoml touches its model store

import bentoml  # noqa: E402
from pydantic import Field  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

from features.schemas import ListingRecord  # noqa: E402
from serving.policy import FALLBACK_DECISION, model_decision  # noqa: E402
from serving.schemas import (  # noqa: E402
    MAX_BATCH,
    ErrorBody,
    ListingResult,
    ListingsResponse,
    ReasonOut,
)

logger = logging.getLogger("shopguard.serving")


def unavailable(model_name: str, why: str) -> JSONResponse:
    """503 telling the caller to fall back to review."""
    body = ErrorBody(
        error="model_unavailable",
        message=f"{model_name} cannot score right now ({why}); treat the items as 'review'.",
        fallback_decision=FALLBACK_DECISION,
    )
    return JSONResponse(body.model_dump(), status_code=503)


def _columns(records: list[ListingRecord]) -> dict[str, list[Any]]:
    fields = ListingRecord.model_fields
    return {name: [getattr(r, name) for r in records] for name in fields}


@bentoml.service(
    name="shopguard",
    traffic={"timeout": 60, "max_concurrency": 256},
    http={"port": 3000},
)
class ShopGuard:
    """Scores listings (and, as models are added, streams and merchants)."""

    def __init__(self) -> None:
        from model_registry.registry import ModelRegistry
        from model_registry.runtimes.listing import ListingQualityModel

        self.registry = ModelRegistry()
        self.listing_model: ListingQualityModel | None = None
        self.load_errors: dict[str, str] = {}
        try:
            self.listing_model = ListingQualityModel.from_bundle(
                self.registry.load("listing-quality:production")
            )
            logger.info("loaded %s", self.listing_model.tag)
        except Exception as exc:  # noqa: BLE001 - reported per endpoint as 503
            self.load_errors["listing-quality"] = str(exc)
            logger.error("listing-quality not loaded: %s", exc)

    @bentoml.api(route="/v1/listings/score")
    def score_listings(
        self, listings: list[ListingRecord] = Field(..., min_length=1, max_length=MAX_BATCH)
    ) -> ListingsResponse:
        """Decide block / review / allow for up to 1,000 listings, with reasons."""
        model = self.listing_model
        if model is None:
            return unavailable("listing-quality", self.load_errors.get("listing-quality", "not loaded"))
        scored = model.score(_columns(listings))
        results = [
            ListingResult(
                listing_id=record.listing_id,
                decision=model_decision(float(score), model.thresholds),
                score=round(float(score), 6),
                reasons=[ReasonOut(code=r.code, detail=r.detail) for r in reasons],
                model=model.tag,
            )
            for record, score, reasons in zip(listings, scored.scores, scored.reasons, strict=True)
        ]
        return ListingsResponse(request_id=uuid.uuid4().hex, results=results)
