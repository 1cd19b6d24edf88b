"""Read-only model endpoints for auditors, mounted under ``/v1/models``:

- ``GET /v1/models``: each model's production and candidate versions, what each running
  worker serves (``serving.workers``, ``serving.in_sync``), thresholds and headline test
  metrics;
- ``GET /v1/models/{name}/card``: the production card as HTML or Markdown (by ``Accept``),
  or ``?format=html|md|json``; ``?version=`` picks another version.

In a Bento (a release file pins the served versions), the thresholds, metrics, ``in_sync``
and the default card are the pinned version's, which decides, and ``release`` names it
beside the registry's ``production``, which this service does not follow.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from common.errors import ShopGuardError, error_body
from common.settings import load_settings
from kinds import MODEL_NAMES
from registry.bundle import BundleIntegrityError
from registry.cards import without_machine_paths
from registry.release import Release, served_release
from registry.store import LoadedBundle, ModelRegistry, UnrecordedBundleError
from serving.error_answers import query_refusal

CARD_MEDIA_TYPES = {"html": "text/html", "md": "text/markdown", "json": "application/json"}


@lru_cache(maxsize=1)
def _registry() -> ModelRegistry:
    return ModelRegistry()


@lru_cache(maxsize=1)
def _release() -> Release | None:
    """The release this service serves (``registry.release.served_release``), else None."""
    return served_release(load_settings().release)


def _served_version(name: str) -> str:
    """The version that decides for ``name``: the release's pin, or ``production``."""
    release = _release()
    if release is not None and name in release.models:
        return release.models[name].tag.split(":", 1)[1]
    return "production"


def _load(name: str, version: str) -> LoadedBundle:
    """The bundle of ``name:version``: a release's pin is verified by the release's manifest hash,
    so that a Bento answers on a home whose database never recorded its versions."""
    release = _release()
    pinned = release.models.get(name) if release is not None else None
    if pinned is not None and pinned.tag == f"{name}:{version}":
        return _registry().load_pinned(pinned.tag, pinned.manifest_sha256)
    return _registry().load(f"{name}:{version}")


def _summary(name: str) -> dict[str, Any]:
    registry = _registry()
    aliases = registry.aliases.all_for(name)
    pinned = _served_version(name)
    entry: dict[str, Any] = {"name": name, "production": aliases.get("production"),
                             "candidate": aliases.get("candidate")}
    if pinned != "production":
        entry["release"] = pinned
    entry["serving"] = registry.serving(name, expected=entry.get("release"))
    if entry.get("release") or entry["production"]:
        try:
            manifest = _load(name, pinned).manifest
        except ShopGuardError as exc:
            entry["error"] = str(exc)
        else:
            entry["thresholds"] = {k: t.model_dump() for k, t in manifest.thresholds.items()}
            entry["metrics"] = manifest.headline_metrics()
            entry["created_at"] = manifest.created_at
    return entry


async def list_models(request: Request) -> Response:
    """``GET /v1/models``."""
    refused = query_refusal(request, set())
    return refused or JSONResponse({"models": [_summary(name) for name in MODEL_NAMES]})


def _card_format(request: Request) -> str | None:
    requested = request.query_params.get("format")
    if requested:
        return requested if requested in CARD_MEDIA_TYPES else None
    accept = request.headers.get("accept", "")
    if "text/markdown" in accept:
        return "md"
    if "application/json" in accept and "text/html" not in accept:
        return "json"
    return "html"


async def model_card(request: Request) -> Response:
    """``GET /v1/models/{name}/card``."""
    name = request.path_params["name"]
    refused = query_refusal(request, {"format", "version"})
    if refused is not None:
        return refused
    if name not in MODEL_NAMES:
        return JSONResponse(error_body(404, "name", f"{name!r} is not one of {', '.join(MODEL_NAMES)}",
                                       error="unknown_model", field="name"), status_code=404)
    card_format = _card_format(request)
    if card_format is None:
        return JSONResponse(error_body(400, "format", "format must be html, md or json", field="format"),
                            status_code=400)
    version = request.query_params.get("version") or _served_version(name)
    try:
        text = _registry().card(f"{name}:{version}", card_format, bundle=_load(name, version))
    except BundleIntegrityError as exc:  # the version exists; its files do not match, or were never recorded
        error = "bundle_unrecorded" if isinstance(exc, UnrecordedBundleError) else "bundle_damaged"
        return JSONResponse(error_body(409, "version", without_machine_paths(str(exc)), error=error,
                                       field="version"), status_code=409)
    except ShopGuardError as exc:
        return JSONResponse(error_body(404, "version", str(exc), field="version"), status_code=404)
    media_type = CARD_MEDIA_TYPES[card_format]
    if card_format == "html":
        return HTMLResponse(text)
    return PlainTextResponse(text, media_type=media_type)


models_app = Starlette(routes=[
    Route("/", list_models, methods=["GET"]),
    Route("/{name}/card", model_card, methods=["GET"]),
])


class ModelsPathMiddleware:
    """Serve ``/v1/models`` itself (not only ``/v1/models/``) without a redirect."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/models":
            scope = {**scope, "path": "/v1/models/", "raw_path": b"/v1/models/"}
        await self.app(scope, receive, send)
