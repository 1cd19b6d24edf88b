"""Enforcement reads, mounted under ``/v1`` beside the scoring APIs (``read`` scope):

- ``GET /v1/streams/{stream_id}``: a live room's action, chunks, counts and action history;
- ``GET /v1/creators/{creator_id}``: credit, the penalty in force, the ledger and appeals;
- ``GET /v1/merchants/{merchant_id}/standing``: points, the hold in force, the ledger;
- ``GET /v1/enforcement/actions?after=ID&limit=N``: every action (a room's, a creator's, a
  merchant's), also those caused later (a verdict, a recovery, an overturn), in id order;
  ``next`` is the id to ask after. An id is shown only once every lower one is committed,
  so a caller that pages with ``next`` sees each action at least once (de-duplicate by id).

Ids are compared normalized (``features/ids.py``); unknown ids are 404 naming the id.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.errors import error_body
from database.engine import DatabaseUnreadable, storage_cause
from features.ids import checked_id, merchant_key
from policy.calls import FALLBACK_DECISION
from policy.store import EnforcementNotFound, EnforcementStore, jsonable
from serving.error_answers import query_refusal

logger = logging.getLogger("shopguard.enforcement")

MAX_ACTIONS_PAGE = 1000
MAX_ACTION_ID = 2**62


@lru_cache(maxsize=1)
def _store() -> EnforcementStore:
    """This worker's store, opened at its first read."""
    from common.settings import load_settings
    from database.engine import make_engine
    from policy.document import load_policy

    settings = load_settings()
    return EnforcementStore(make_engine(settings.database_url), load_policy(settings.policy))


async def storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 ``storage_unavailable``: the database cannot be read now (one log line)."""
    cause = storage_cause(f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}")
    logger.warning("enforcement read %s: storage unavailable: %s", request.url.path, cause)
    return JSONResponse({"error": "storage_unavailable", "message": "the database cannot be read right now; retry later",
                         "fallback_decision": FALLBACK_DECISION}, status_code=503, headers={"Retry-After": "5"})


def _bad(field: str, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse(error_body(status, field, message, "value_error" if status == 400 else "not_found"),
                        status_code=status)


def _entity_key(request: Request, field: str) -> str | JSONResponse:
    value = request.path_params[field]
    try:
        checked_id(value)
    except ValueError as exc:
        return _bad(field, f"{field} {exc}")
    if len(value) > 128:
        return _bad(field, f"{field} holds {len(value):,} characters; at most 128 are accepted")
    return merchant_key(value)


async def _read(request: Request, field: str, read: Any) -> Response:
    refused = query_refusal(request, set())  # the reads take no query parameter
    if refused is not None:
        return refused
    key = _entity_key(request, field)
    if isinstance(key, JSONResponse):
        return key
    try:
        body = await run_in_threadpool(read, key)
    except EnforcementNotFound as exc:
        return _bad(exc.field, str(exc), 404)
    return JSONResponse(jsonable(body))


async def stream_state(request: Request) -> Response:
    """``GET /v1/streams/{stream_id}``."""
    return await _read(request, "stream_id", lambda key: _store().room_state(key))


async def creator_state(request: Request) -> Response:
    """``GET /v1/creators/{creator_id}``."""
    return await _read(request, "creator_id", lambda key: _store().creator_state(key))


async def merchant_standing(request: Request) -> Response:
    """``GET /v1/merchants/{merchant_id}/standing``."""
    return await _read(request, "merchant_id", lambda key: _store().merchant_state(key))


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int | JSONResponse:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):  # int() would also take " 1", "1_0" and full-width digits
        return _bad(name, f"{name} must be a whole number between {low} and {high:,} in ASCII digits, not {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        return _bad(name, f"{name} must be between {low} and {high:,}")
    return value


async def actions(request: Request) -> Response:
    """``GET /v1/enforcement/actions?after=ID&limit=N``."""
    refused = query_refusal(request, {"after", "limit"})
    if refused is not None:
        return refused
    after = _int_param(request, "after", 0, 0, MAX_ACTION_ID)
    limit = _int_param(request, "limit", 100, 1, MAX_ACTIONS_PAGE)
    for value in (after, limit):
        if isinstance(value, JSONResponse):
            return value
    body = await run_in_threadpool(_store().actions, after, limit)
    return JSONResponse(jsonable(body))


enforcement_app = Starlette(routes=[
    Route("/streams/{stream_id:path}", stream_state, methods=["GET"]),
    Route("/creators/{creator_id:path}", creator_state, methods=["GET"]),
    Route("/merchants/{merchant_id:path}/standing", merchant_standing, methods=["GET"]),
    Route("/enforcement/actions", actions, methods=["GET"]),
], exception_handlers=dict.fromkeys((SQLAlchemyError, DatabaseUnreadable), storage_unavailable))
