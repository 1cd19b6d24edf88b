"""Routes of the console (a Starlette app mounted at ``/console`` by ``serving/service.py``)."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from common.errors import ShopGuardError
from database.engine import DatabaseUnreadable
from kinds import MODEL_KINDS
from serving.console import claims, queries
from serving.console.forms import (
    CARRIED,
    CATEGORIES,
    ENTITY_TYPES,
    MAX_DB_INT,
    BadInput,
    QueueQuery,
    SearchQuery,
    check_parameters,
    parse,
)
from serving.console.security import CARD_MARKER, SecurityHeaders, visible_controls
from serving.console.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGNIN_COOKIE,
    SIGNIN_SECONDS,
    Session,
    cookie_options,
    same_origin,
)
from serving.console.state import state
from serving.console.verdict_query import VerdictQuery
from serving.console.verdicts import describe as describe_verdict
from serving.console.verdicts import form_note, standing_labels, store_verdict
from serving.console.views import UnreadableRecord, decision_view, queue_facts
from serving.decision_export import FORMATS, export_decisions
from serving.enforcement_clock import enforce_verdict
from serving.feedback import FeedbackError
from serving.verdict_export import FORMATS as VERDICT_FORMATS
from serving.verdict_export import export_verdicts

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("shopguard.console")
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                        trim_blocks=True, lstrip_blocks=True, finalize=visible_controls)
Endpoint = Callable[[Request, Session], Awaitable[Response]]
STORAGE_ERRORS = (SQLAlchemyError, DatabaseUnreadable)
EXPORT_CHUNK_ROWS = 1000  # rows an export holds in memory at once
LINKS_SHOWN = 200  # a request's own links listed on a decision's page at most


def prefix(request: Request) -> str:
    """Where the console is mounted (``/console``)."""
    return request.scope.get("root_path", "").rstrip("/")


def render(request: Request, template: str, status: int = 200, session: Session | None = None,
           **context: Any) -> HTMLResponse:
    """An HTML page from ``template`` (auto-escaped)."""
    body = TEMPLATES.get_template(template).render(
        base=prefix(request), session=session, kinds=list(MODEL_KINDS.values()), request_path=request.url.path,
        **context)
    return HTMLResponse(body, status_code=status)


def signed_in(scope: str, params: tuple[str, ...] | None = None
              ) -> Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]:
    """A page for a signed-in session whose token has ``scope`` (``read`` pages also admit
    nobody else; ``review`` pages admit ``read`` or ``feedback``); others go to sign-in. A query
    parameter given twice, or one outside ``params`` (when given: pages whose parameters are
    not a typed query), is a 400 page naming it."""
    def wrap(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(endpoint)
        async def page(request: Request) -> Response:
            session = await run_in_threadpool(state().session, request.cookies.get(SESSION_COOKIE))
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"{prefix(request)}/signin?next={_quote(target)}", status_code=303)
                response.delete_cookie(SESSION_COOKIE, path=prefix(request) or "/")
                return response
            allowed = session.may("read") or (scope == "review" and session.may("feedback"))
            if not allowed:
                return render(request, "error.html", 403, session, title="Not allowed",
                              message=f"the token {session.name!r} lacks the {scope!r} scope for this page.")
            try:
                check_parameters(request.query_params.multi_items(), params)
                return await endpoint(request, session)
            except BadInput as exc:
                return render(request, "error.html", 400, session, title="Bad request", field=exc.field,
                              message=exc.message)
            except (HTTPException, *STORAGE_ERRORS):
                raise  # their handlers answer (404 page, 503 page)
            except Exception:  # answered here: Starlette's last-resort handler would log it twice and drop the connection
                logger.exception("console error on %s", request.url.path)
                return render(request, "error.html", 500, session, title="Error",
                              message="something went wrong on our side; it has been logged.")
        return page
    return wrap


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


def _safe_next(request: Request, target: str | None) -> str:
    """A redirect target inside the console (never another site)."""
    base = prefix(request)
    if target and target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/queue"


# -- sign-in ------------------------------------------------------------------------------------


async def signin_form(request: Request, error: str | None = None, status: int = 200) -> Response:
    """``GET /signin``: the token form (with its CSRF cookie)."""
    token, cookie = state().signer.signin_token()
    response = render(request, "signin.html", status, csrf=token, error=error, auth=state().auth,
                      next=request.query_params.get("next", ""))
    response.set_cookie(SIGNIN_COOKIE, cookie, **cookie_options(request, SIGNIN_SECONDS))
    return response


async def signin(request: Request) -> Response:
    """``POST /signin``: exchange a token for a session cookie (attempts limited per client)."""
    wait = state().signin_limiter.attempt(request.client.host if request.client else "unknown")
    if wait is not None:
        response = render(request, "error.html", 429, title="Too many sign-in attempts",
                          message=f"too many sign-in attempts from this address; try again in {wait:.0f} s.")
        response.headers["Retry-After"] = str(int(wait + 0.999))
        return response
    form = await request.form()
    if not same_origin(request) or not state().signer.signin_matches(request.cookies.get(SIGNIN_COOKIE),
                                                                      str(form.get("csrf", ""))):
        return await signin_form(request, "The form expired; sign in again.", 403)
    token = str(form.get("token", "")).strip()
    found = await run_in_threadpool(state().exchange, token)
    if isinstance(found, str):
        logger.info("console sign-in refused: %s", found)
        return await signin_form(request, found, 401 if "unknown" in found else 403)
    response = RedirectResponse(_safe_next(request, str(form.get("next", ""))), status_code=303)
    response.set_cookie(SESSION_COOKIE, state().signer.issue(*found), **cookie_options(request, SESSION_SECONDS))
    response.delete_cookie(SIGNIN_COOKIE, path=prefix(request) or "/")
    logger.info("console sign-in: %s", found[0])
    return response


async def signout(request: Request) -> Response:
    """``POST /signout``: end the session."""
    session = state().signer.read(request.cookies.get(SESSION_COOKIE))
    form = await request.form()
    if session is not None and not _csrf_ok(request, session, form):
        return render(request, "error.html", 403, session, title="Not allowed", message="the form expired.")
    if session is not None:
        await run_in_threadpool(state().tokens.end_session, session.csrf, SESSION_SECONDS)
    response = RedirectResponse(f"{prefix(request)}/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=prefix(request) or "/")
    return response


def _csrf_ok(request: Request, session: Session, form: Any) -> bool:
    import secrets

    return same_origin(request) and secrets.compare_digest(str(form.get("csrf", "")), session.csrf)


# -- the review queue ---------------------------------------------------------------------------


@signed_in("review")
async def queue(request: Request, session: Session) -> Response:
    """``GET /queue``: pending reviews, filtered, one page: one item per listing or merchant,
    one per stream call, each with who holds it, and the review load beside each budget."""
    query: QueueQuery = parse(QueueQuery, dict(request.query_params))
    now = datetime.now(UTC)
    engine = state().engine

    def read() -> tuple[Any, ...]:
        page = queries.queue_page(engine, query.order, query.keyset(), **query.filters())
        return (page, queries.scorings(engine, page.rows), claims.holders(engine, page.rows, now),
                review_lines(queries.review_load(engine, now - timedelta(days=1), now), state().review_budgets()),
                _flash(query, session.name))

    page, scored, held, budget, flash = await run_in_threadpool(read)
    for row in page.rows:
        row.update(queue_facts(row))  # never raises: a bad record says so
        row["scorings"] = scored.get((row["entity_type"], row["entity_id"]), 1)
        row["claim"] = held.get(claims.item_key(row))
    params = {k: v for k, v in request.query_params.items() if k not in ("cursor", "done", "stored", "skipped") and v}
    return render(request, "queue.html", session=session, page=page, query=query, budget=budget, flash=flash,
                  params=params, carried=_carried(request), now=now, categories=CATEGORIES,
                  entity_types=ENTITY_TYPES)


def review_lines(load: dict[str, dict[str, int]], budgets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per entity type: the last 24 h's decisions and reviews, their true share, the budget the
    production version's thresholds were set for, and whether the share is above it."""
    lines = []
    for entity_type, counts in load.items():
        share = counts["reviews"] / counts["decisions"] if counts["decisions"] else None
        found = budgets.get(entity_type, {})
        budget = found.get("budget")
        lines.append({"entity_type": entity_type, **counts, "share": share, "budget": budget,
                      "model": found.get("model"), "over": share is not None and budget is not None and share > budget})
    return lines


def _carried(request: Request) -> dict[str, str]:
    """The queue's filters and order from the address, to carry to the next item."""
    return {k: request.query_params[k] for k in CARRIED if request.query_params.get(k)}


def _flash(query: QueueQuery, reviewer: str) -> dict[str, Any] | None:
    """What the previous step did, read back from the database: the verdict just stored (by
    this reviewer) or the item just skipped."""
    engine = state().engine
    if query.skipped:
        decision = queries.decision_by_id(engine, query.skipped)
        return None if decision is None else {"kind": "skipped", "decision": decision}
    if not query.done:
        return None
    decision, ids = queries.decision_by_id(engine, query.done), query.stored_ids()
    rows = queries.stored_verdicts(engine, *ids, reviewer) if ids else []
    rows = [r for r in rows if decision and r["request_id"] == decision["request_id"]]
    if decision is None or not rows:
        return None
    return {"kind": "stored", "decision": decision, "what": describe_verdict(rows), "rows": len(rows)}


@signed_in("review")
async def decision_page(request: Request, session: Session) -> Response:
    """``GET /decisions/{id}``: what the model saw and why, its answer, the version, the
    verdicts; a pending item is claimed for a reviewer who may give verdicts (or shown as
    held by someone else)."""
    decision_id = _path_int(request, "decision_id")
    query: QueueQuery = parse(QueueQuery, dict(request.query_params))
    if refused := await _outside_the_queue(request, session, decision_id):
        return refused
    try:
        view = await run_in_threadpool(decision_view, state().engine, decision_id)
    except UnreadableRecord as exc:
        return render(request, "error.html", 422, session, title="Record cannot be shown", message=str(exc))
    if view is None:
        raise HTTPException(404, f"no logged decision {decision_id}")
    extra = await run_in_threadpool(_item_context, view, session, query)
    return render(request, "decision.html", session=session, carried=_carried(request), **view, **extra)


def _item_context(view: dict[str, Any], session: Session, query: QueueQuery) -> dict[str, Any]:
    """A decision page's claim, flash, boxes to pre-check and linked merchants."""
    engine, decision = state().engine, view["decision"]
    pending = queries.in_queue(engine, decision["id"])
    claim = claims.take(engine, decision, session.name) if pending and session.may("feedback") \
        else claims.holder(engine, decision)
    segments = len(decision["inputs"].get("segments") or []) if view["kind"].multi_label else 0
    own = [v for v in view["verdicts"] if v["reviewer"] == session.name]
    standing = standing_labels(own, segments)
    checked = {i: set(label.split("|")) - {"ok"} for i, (label, _) in standing.items() if i is not None}
    links = decision["inputs"].get("links")
    request_links = [{"merchant_id": str(link.get("merchant_id", "")), "link_type": str(link.get("link_type", ""))}
                     for link in (links if isinstance(links, list) else [])[:LINKS_SHOWN] if isinstance(link, dict)]
    linked = None
    if view["cites_links"] or request_links:
        ids = list(dict.fromkeys([str(decision["inputs"].get("merchant_id") or decision["entity_id"]),
                                  decision["entity_id"]]))
        linked = state().linked_merchants(decision["model"], ids)
        labels = state().training_labels(decision["model"], [link["merchant_id"] for link in request_links]) or {}
        for link in request_links:
            link["known"] = labels.get(link["merchant_id"])
    return {"pending": pending, "claim": claim, "now": datetime.now(UTC), "flash": _flash(query, session.name),
            "checked": checked if own else None, "own_verdict": describe_verdict(own) if own else None,
            "linked": linked, "request_links": request_links}


@signed_in("review")
async def verdict(request: Request, session: Session) -> Response:
    """``POST /decisions/{id}/verdict``: store the reviewer's verdict (superseding their or
    anyone's earlier one), release the claim, go to the next item of the reviewer's queue."""
    form = await request.form()
    if not _csrf_ok(request, session, form):
        return render(request, "error.html", 403, session, title="Not allowed", message="the form expired; reload it.")
    if not session.may("feedback"):
        return render(request, "error.html", 403, session, title="Not allowed",
                      message=f"the token {session.name!r} lacks the 'feedback' scope: it cannot give verdicts.")
    if not form.get("verdict"):  # the form's default button: Enter in a field, never a verdict; the page stays
        return Response(status_code=204)
    decision_id = _path_int(request, "decision_id")
    query: QueueQuery = parse(QueueQuery, dict(request.query_params))
    if refused := await _outside_the_queue(request, session, decision_id):
        return refused
    try:
        rows, following = await run_in_threadpool(_give_verdict, decision_id, session.name, form, query)
    except FeedbackError as exc:
        return render(request, "error.html", exc.status, session, title="Verdict not stored", field=exc.field,
                      message=str(exc))
    stored = {"done": str(decision_id), "stored": f"{rows[0]['id']}-{rows[-1]['id']}"}
    return _to_next(request, following, stored)


def _to_next(request: Request, following: int | None, flash: dict[str, str]) -> Response:
    """303 to the next item (or the queue), keeping the reviewer's filters and order."""
    target = f"{prefix(request)}/decisions/{following}" if following else f"{prefix(request)}/queue"
    return RedirectResponse(f"{target}?{urlencode({**_carried(request), **flash})}", status_code=303)


def _give_verdict(decision_id: int, reviewer: str, form: Any, query: QueueQuery
                  ) -> tuple[list[dict[str, Any]], int | None]:
    """Store the form's verdict unless someone else holds the item; the stored rows and the
    next item."""
    engine, now = state().engine, datetime.now(UTC)
    decision = queries.decision_by_id(engine, decision_id)
    if decision is None:
        raise FeedbackError(f"no logged decision {decision_id}", "decision", 404)
    claim = claims.holder(engine, decision, now)
    if claim is not None and claim.held_by_other(reviewer, now):
        raise FeedbackError(f"{claim.reviewer} holds this item until {claim.expires_at:%H:%M:%S} UTC (claimed when "
                            "they opened it); your verdict was not stored. Skip to another item, or come back "
                            "after that time.", "claim", 409)
    rows = store_verdict(state().feedback, decision, reviewer, form, queries.verdicts(engine, decision),
                         lambda row: enforce_verdict(state().enforcement, row))
    claims.release(engine, decision, reviewer)
    return rows, queries.next_in_queue(engine, decision, query.order, reviewer, now, **query.filters())


@signed_in("review")
async def skip(request: Request, session: Session) -> Response:
    """``POST /decisions/{id}/skip``: no verdict; release the claim and go to the next item."""
    form = await request.form()
    if not _csrf_ok(request, session, form):
        return render(request, "error.html", 403, session, title="Not allowed", message="the form expired; reload it.")
    decision_id = _path_int(request, "decision_id")
    query: QueueQuery = parse(QueueQuery, dict(request.query_params))

    def release() -> int | None:
        engine = state().engine
        decision = queries.decision_by_id(engine, decision_id)
        if decision is None:
            raise HTTPException(404, f"no logged decision {decision_id}")
        claims.release(engine, decision, session.name)
        return queries.next_in_queue(engine, decision, query.order, session.name, datetime.now(UTC),
                                     **query.filters())

    following = await run_in_threadpool(release)
    return _to_next(request, following, {"skipped": str(decision_id)})


async def _outside_the_queue(request: Request, session: Session, decision_id: int) -> Response | None:
    """403 for a ``feedback``-only token on a decision that is neither a pending review nor
    one it gave a verdict on (to change it): such a token works the queue; the audit search
    and other decisions need ``read``."""
    if session.may("read") or await run_in_threadpool(_reviewable, decision_id, session.name):
        return None
    return render(request, "error.html", 403, session, title="Not allowed",
                  message=f"the token {session.name!r} opens the review queue's items only; decision {decision_id} "
                          "is not in it (the 'read' scope opens every decision).")


def _reviewable(decision_id: int, reviewer: str) -> bool:
    """A pending review, a decision ``reviewer`` gave a verdict on, or one whose charge is
    under an appeal ``reviewer`` may decide (its decider must see what was charged)."""
    engine = state().engine
    if queries.in_queue(engine, decision_id):
        return True
    decision = queries.decision_by_id(engine, decision_id)
    return decision is not None and (queries.has_verdict_by(engine, decision, reviewer)
                                     or _may_decide_an_appeal_of(decision, reviewer))


def _may_decide_an_appeal_of(decision: dict[str, Any], reviewer: str) -> bool:
    """Whether ``reviewer`` may decide a pending appeal of a charge ``decision`` caused (not one
    they filed: filing an appeal opens nothing)."""
    enforcement = state().enforcement
    return any(a["status"] == "pending" and enforcement.appeal(a["id"], reviewer)["barred"] is None
               for a in queries.appeals(state().engine, decision))


# -- the audit view -----------------------------------------------------------------------------


@signed_in("read", ())
async def audit(request: Request, session: Session) -> Response:
    """``GET /audit``: every model's versions and aliases, and the charts."""
    models = await run_in_threadpool(state().model_summaries)
    return render(request, "audit.html", session=session, models=models)


@signed_in("read", ())
async def model_version(request: Request, session: Session) -> Response:
    """``GET /models/{name}/{version}``: the version's summary, alias history and card."""
    name, version = request.path_params["name"], request.path_params["version"]
    try:
        info = await run_in_threadpool(state().version_info, name, version)
    except ShopGuardError as exc:
        raise _no_version(name, version, exc) from None
    return render(request, "model.html", session=session, **info)


@signed_in("read", ())
async def model_card(request: Request, session: Session) -> Response:
    """``GET /models/{name}/{version}/card``: the version's HTML card (no script can run in it)."""
    name, version = request.path_params["name"], request.path_params["version"]
    try:
        text = await run_in_threadpool(state().card, name, version)
    except ShopGuardError as exc:
        raise _no_version(name, version, exc) from None
    return HTMLResponse(text, headers={CARD_MARKER.decode(): "1"})


def _no_version(name: str, version: str, exc: Exception) -> HTTPException:
    """404 naming the version only (the registry's message may hold file paths: logged)."""
    logger.info("console: %s:%s not shown: %s", name, version, exc)
    return HTTPException(404, f"no readable version {version!r} of model {name!r}; the Audit page lists them.")


@signed_in("read")
async def search(request: Request, session: Session) -> Response:
    """``GET /decisions``: the decision search, one page, with export links."""
    query: SearchQuery = parse(SearchQuery, dict(request.query_params))
    filters = query.filters()
    page = await run_in_threadpool(queries.search_page, state().engine, query.before, **filters)
    params = {k: v for k, v in request.query_params.items() if k != "before" and v}
    return render(request, "search.html", session=session, page=page, query=query, params=params,
                  entity_types=ENTITY_TYPES)


@signed_in("read")
async def export(request: Request, session: Session) -> Response:
    """``GET /decisions/export.{csv|parquet}``: every matching decision, streamed."""
    file_format = request.path_params["format"]
    if file_format not in FORMATS:
        raise HTTPException(404, "export as .csv or .parquet")
    filters = parse(SearchQuery, dict(request.query_params)).filters()
    return _streamed_export(request, session, "decisions", file_format, FORMATS[file_format], filters,
                            lambda: export_decisions(state().engine, file_format, chunk_rows=EXPORT_CHUNK_ROWS,
                                                     **filters))


def _streamed_export(request: Request, session: Session, what: str, file_format: str, media_type: str,
                     filters: dict[str, Any], chunks: Callable[[], Generator[bytes, None, None]]) -> Response:
    """An export streamed as an attachment, within the export slots (``_export_refused``),
    its slot released when the last chunk has gone (or the caller left)."""
    if refused := _export_refused(request, session):
        return refused
    logger.info("console %s export (%s) by %s: %s", what, file_format, session.name,
                {k: str(v) for k, v in filters.items() if v})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(_released(chunks(), lambda: state().exports.release(session.name)),
                             media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{what}-{stamp}.{file_format}"'})


def _export_refused(request: Request, session: Session) -> Response | None:
    """None when the session may start an export now (an export slot is claimed: release it),
    else the page saying why not (429: this caller runs its share; 503: the worker is full)."""
    refused = state().exports.claim(session.name)
    if refused is None:
        return None
    status, why = (429, f"{state().exports.per_caller} exports of {session.name!r} are running") \
        if refused == "caller" else (503, f"{state().exports.total} exports are running")
    response = render(request, "error.html", status, session, title="Export not started",
                      message=f"{why}; start this one when one of them has finished.")
    response.headers["Retry-After"] = "30"
    return response


@signed_in("read")
async def verdicts_export(request: Request, session: Session) -> Response:
    """``GET /verdicts/export.{csv|parquet|jsonl}``: every reviewer verdict (``since``,
    ``until``, ``reviewer`` narrow it), oldest first, streamed; bounded like the decision export."""
    file_format = request.path_params["format"]
    if file_format not in VERDICT_FORMATS:
        raise HTTPException(404, "export verdicts as .csv, .parquet or .jsonl")
    filters = parse(VerdictQuery, dict(request.query_params)).filters()
    return _streamed_export(request, session, "verdicts", file_format, VERDICT_FORMATS[file_format], filters,
                            lambda: export_verdicts(state().engine, file_format, chunk_rows=EXPORT_CHUNK_ROWS,
                                                    **filters))


async def _released(chunks: Generator[bytes, None, None], release: Callable[[], None]) -> AsyncIterator[bytes]:
    """``chunks`` made in the thread pool, one at a time; ``release`` once the export ends,
    finished or abandoned by its reader."""
    try:
        while (chunk := await run_in_threadpool(next, chunks, None)) is not None:
            yield chunk
    finally:
        with contextlib.suppress(ValueError):  # still running in its thread (the reader left): closed when collected
            chunks.close()
        release()


@signed_in("read", ())
async def chart(request: Request, session: Session) -> Response:
    """``GET /charts/{name}.png``: one of the audit view's pictures."""
    name = request.path_params["name"]
    png = await run_in_threadpool(state().chart, name)
    if png is None:
        raise HTTPException(404, f"no chart {name!r}")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


# -- enforcement: rooms, creators, merchants, appeals ----------------------------------------


def _path_int(request: Request, field: str) -> int:
    """An id from the address within a database integer's range (400 naming ``field`` beyond)."""
    value = int(request.path_params[field])
    if value > MAX_DB_INT:
        raise BadInput(field, f"{value} is beyond any stored id (at most {MAX_DB_INT})")
    return value


def _key(value: str, field: str) -> str:
    """An entity id from the address, normalized as the service compares it (400 naming ``field``)."""
    from features.ids import checked_id, merchant_key

    try:
        checked_id(value)
    except ValueError as exc:
        raise BadInput(field, f"{field} {exc}") from None
    if len(value) > 128:
        raise BadInput(field, f"{field} holds {len(value):,} characters; at most 128")
    return merchant_key(value)


async def _enforcement_read(read: Callable[[], Any]) -> Any:
    from policy.store import EnforcementNotFound

    try:
        return await run_in_threadpool(read)
    except EnforcementNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@signed_in("read", ("action",))
async def rooms(request: Request, session: Session) -> Response:
    """``GET /rooms``: live rooms, the latest call first (those acted on by default)."""
    action = request.query_params.get("action", "acted")
    if action not in ("acted", "all", "warn", "restrict", "stop"):
        raise BadInput("action", "action is acted, all, warn, restrict or stop")
    found = await run_in_threadpool(state().enforcement.rooms, action if action not in ("acted", "all") else None,
                                    action == "acted")
    return render(request, "rooms.html", session=session, rooms=found, action=action)


@signed_in("read", ("type", "id"))
async def lookup(request: Request, session: Session) -> Response:
    """``GET /lookup?type=room|creator|merchant&id=``: open an entity's page."""
    kind = request.query_params.get("type", "")
    if kind not in ("room", "creator", "merchant"):
        raise BadInput("type", "type is room, creator or merchant")
    key = _key(request.query_params.get("id", ""), "id")
    return RedirectResponse(f"{prefix(request)}/{kind}s/{_quote(key)}", status_code=303)


@signed_in("read", ())
async def room_page(request: Request, session: Session) -> Response:
    """``GET /rooms/{stream_id}``: the room's action, its calls on a timeline, its actions."""
    key = _key(request.path_params["stream_id"], "stream_id")
    room = await _enforcement_read(lambda: state().enforcement.room_state(key))
    calls = await run_in_threadpool(state().enforcement.room_calls, key)
    width = 1000 / max(1, len(calls))
    timeline = [{"x": round(i * width, 2), "width": round(max(width - 0.5, 0.5), 2), "chunk": c["chunk"],
                 "action": c["room_action"] or "none", "flagged": len(c["flagged"]),
                 "blocks": sum(f["decision"] == "block" for f in c["flagged"])} for i, c in enumerate(calls)]
    return render(request, "room.html", session=session, room=room, calls=calls, timeline=timeline)


@signed_in("read", ())
async def creator_page(request: Request, session: Session) -> Response:
    """``GET /creators/{creator_id}``: credit over time, the ledger, appeals, rooms, actions."""
    key = _key(request.path_params["creator_id"], "creator_id")
    creator = await _enforcement_read(lambda: state().enforcement.creator_state(key))
    start = state().enforcement.policy.creators.start
    chart = credit_chart(creator["ledger"], start, creator["cap"], state().enforcement.policy.creators.penalties)
    appeals = {a["ledger_entry_id"]: a for a in creator["appeals"]}
    return render(request, "creator.html", session=session, creator=creator, chart=chart, appeals_by_entry=appeals)


def credit_chart(ledger: list[dict[str, Any]], start: int, cap: int, penalties: Any) -> dict[str, Any]:
    """An SVG line of the credit after each entry (x: time, y: credit 0..cap), with the penalty levels."""
    def y(value: float) -> float:
        return round(200 - 190 * max(0.0, min(value, cap)) / cap, 1)

    points = [(e["at"], e["balance"]) for e in ledger]
    out: dict[str, Any] = {"levels": [{"value": v, "y": y(v)} for v in range(0, cap + 1, max(1, cap // 6))],
                           "penalties": [{"value": p.at_or_below, "kind": p.kind, "y": y(p.at_or_below)}
                                         for p in penalties if 0 <= p.at_or_below <= cap],
                           "points": "", "dots": [], "start": "", "end": ""}
    if not points:
        return out
    first, last = points[0][0], points[-1][0]
    span = max((last - first).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return round(40 + 950 * (at - first).total_seconds() / span, 1)

    line, balance = [f"40,{y(start)}"], start
    for at, value in points:
        line += [f"{x(at)},{y(balance)}", f"{x(at)},{y(value)}"]  # steps: the credit holds until the next entry
        balance = value
    out.update(points=" ".join(line), start=first.strftime("%Y-%m-%d"), end=last.strftime("%Y-%m-%d"),
               dots=[{"x": x(at), "y": y(v), "label": f"{at:%Y-%m-%d %H:%M}: credit {v}"} for at, v in points])
    return out


@signed_in("read", ())
async def merchant_page(request: Request, session: Session) -> Response:
    """``GET /merchants/{merchant_id}``: points, the hold in force, the ledger, actions."""
    key = _key(request.path_params["merchant_id"], "merchant_id")
    merchant = await _enforcement_read(lambda: state().enforcement.merchant_state(key))
    appeals = {a["ledger_entry_id"]: a for a in merchant["appeals"]}
    return render(request, "merchant.html", session=session, merchant=merchant, appeals_by_entry=appeals)


@signed_in("review", ("status", "decided"))
async def appeals(request: Request, session: Session) -> Response:
    """``GET /appeals``: the appeals queue (pending first by default)."""
    status = request.query_params.get("status", "pending")
    if status not in ("pending", "upheld", "overturned", "all"):
        raise BadInput("status", "status is pending, upheld, overturned or all")
    found = await run_in_threadpool(state().enforcement.appeals, None if status == "all" else status)
    decided = request.query_params.get("decided", "")
    if decided and not (decided.isascii() and decided.isdigit()):
        raise BadInput("decided", "decided is the id of the appeal just decided (digits)")
    return render(request, "appeals.html", session=session, appeals=found, shown=status,
                  decided=decided or None)


@signed_in("review", ())
async def appeal_page(request: Request, session: Session) -> Response:
    """``GET /appeals/{id}``: an appeal, the charge it is about, the decision form."""
    appeal_id = _path_int(request, "appeal_id")
    if appeal_id > 2**53:
        raise HTTPException(404, f"no appeal {appeal_id}")
    appeal = await _enforcement_read(lambda: state().enforcement.appeal(appeal_id, session.name))
    entry = appeal["entry"]
    charged = await run_in_threadpool(queries.charged_decision, state().engine, entry.request_id if entry else None,
                                      entry.listing_id if entry else None)
    return render(request, "appeal.html", session=session, appeal=appeal, charged=charged,
                  charged_text=_charged_text(charged, entry.segment_index if entry else None))


def _charged_text(decision: dict[str, Any] | None, segment_index: int | None) -> str | None:
    """What the charged item said: its segment's text, or the listing's title."""
    if decision is None:
        return None
    inputs = decision["inputs"]
    segments = inputs.get("segments")
    if segment_index is not None and isinstance(segments, list) and 0 <= segment_index < len(segments):
        segment = segments[segment_index]
        return str(segment.get("text", "")) if isinstance(segment, dict) else None
    title = inputs.get("title")
    return str(title) if title is not None else None


@signed_in("review")
async def appeal_decision(request: Request, session: Session) -> Response:
    """``POST /appeals/{id}/decision``: uphold or overturn (``feedback`` scope)."""
    from policy.store import EnforcementConflict, EnforcementForbidden, EnforcementNotFound

    form = await request.form()
    if not _csrf_ok(request, session, form):
        return render(request, "error.html", 403, session, title="Not allowed", message="the form expired; reload it.")
    if not session.may("feedback"):
        return render(request, "error.html", 403, session, title="Not allowed",
                      message=f"the token {session.name!r} lacks the 'feedback' scope: it cannot decide appeals.")
    appeal_id = _path_int(request, "appeal_id")
    outcome, note = str(form.get("outcome", "")), form_note(form)
    if outcome not in ("upheld", "overturned"):
        raise BadInput("outcome", "an appeal is upheld or overturned")
    try:
        await run_in_threadpool(state().enforcement.decide_appeal, appeal_id, outcome, session.name, note)
    except EnforcementNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except EnforcementForbidden as exc:
        return render(request, "error.html", 403, session, title="Not allowed", field=exc.field, message=str(exc))
    except EnforcementConflict as exc:
        return render(request, "error.html", 409, session, title="Already decided", field=exc.field, message=str(exc))
    return RedirectResponse(f"{prefix(request)}/appeals?decided={appeal_id}", status_code=303)


async def home(request: Request) -> Response:
    """``GET /``: the queue."""
    return RedirectResponse(f"{prefix(request)}/queue", status_code=303)


async def no_page(request: Request) -> Response:
    """Any other console address: the console's 404 page (the service's router would answer
    plain text: BentoML's mount passes on a path none of the console's routes matches); an
    address with a trailing slash goes to the one without, as Starlette's router did."""
    path = request.url.path
    if path.endswith("/") and path.rstrip("/") != prefix(request):
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(path.rstrip("/") + query, status_code=307)
    raise HTTPException(404, f"no console page at {path!r}; the queue is at {prefix(request)}/queue")


# -- errors -------------------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    """Known HTTP errors as pages (the message names what is missing; no internals)."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or ""
    session = state().signer.read(request.cookies.get(SESSION_COOKIE))
    return render(request, "error.html", status, session, title="Not found" if status == 404 else "Error",
                  message=str(detail) if status < 500 else "something went wrong")


async def storage_page(request: Request, exc: Exception) -> Response:
    """503: the database cannot be read or written now (one log line, no traceback)."""
    from database.engine import storage_cause

    logger.warning("console: storage unavailable on %s: %s", request.url.path,
                   storage_cause(f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}"))
    response = render(request, "error.html", 503, None, title="Storage unavailable",
                      message="the database cannot be read right now; try again in a minute.")
    response.headers["Retry-After"] = "30"
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered with a page that shows none."""
    logger.exception("console error on %s", request.url.path)
    return render(request, "error.html", 500, None, title="Error",
                  message="something went wrong on our side; it has been logged.")


console_app = Starlette(
    routes=[
        Route("/", home),
        Route("/signin", signin_form, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/queue", queue),
        Route("/audit", audit),
        Route("/models/{name}/{version}", model_version),
        Route("/models/{name}/{version}/card", model_card),
        Route("/decisions", search),
        Route("/decisions/export.{format}", export),
        Route("/verdicts/export.{format}", verdicts_export),
        Route("/decisions/{decision_id:int}", decision_page),
        Route("/decisions/{decision_id:int}/verdict", verdict, methods=["POST"]),
        Route("/decisions/{decision_id:int}/skip", skip, methods=["POST"]),
        Route("/charts/{name}.png", chart),
        Route("/rooms", rooms),
        Route("/lookup", lookup),
        Route("/rooms/{stream_id:path}", room_page),
        Route("/creators/{creator_id:path}", creator_page),
        Route("/merchants/{merchant_id:path}", merchant_page),
        Route("/appeals", appeals),
        Route("/appeals/{appeal_id:int}", appeal_page),
        Route("/appeals/{appeal_id:int}/decision", appeal_decision, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        Route("/{address:path}", no_page),  # last: a GET nothing else matched
    ],
    exception_handlers={HTTPException: http_error, 500: server_error,
                        **dict.fromkeys(STORAGE_ERRORS, storage_page)},
)
console_app.add_middleware(SecurityHeaders)
