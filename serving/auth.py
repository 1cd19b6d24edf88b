"""Bearer tokens with scopes, stored hashed in the ShopGuard database.

``shopguard tokens create --name NAME --scopes score,feedback,read,admin`` prints a token
once; the database keeps only its sha256. Calls send ``Authorization: Bearer <token>``:

- ``score``: the three scoring routes; ``feedback``: ``/v1/feedback`` (the reviewer is the
  token's name) and ``/v1/appeals``; ``read``: models, cards, metrics, and the enforcement
  reads (rooms, creators, merchants' standing, the action feed); ``admin``: everything;
- a missing or unknown token gets 401, a token without the route's scope 403; both are
  logged with the token's name or ``anonymous``, never the token.

Deny by default (``required_scope``): only health (``/readyz``, ``/livez``, ``/healthz``), the
API description (``/docs.json`` and BentoML's page for it) and the console's sign-in and static
files are open; the console's pages need its session cookie; any route not named needs
``admin``. ``/metrics`` is served only when ``SHOPGUARD_METRICS=on``. ``SHOPGUARD_AUTH=off``
turns all of this off for local experiments.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from common.errors import ShopGuardError, error_body
from features.ids import principal_key
from serving.error_answers import QUIET_LOG, send_json
from serving.health import StorageStatus

logger = logging.getLogger("shopguard.auth")
metadata = MetaData()

tokens_table = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("scopes", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Console sessions ended by signing out, by the sha256 of the session's id (its CSRF token);
# rows older than a session's lifetime are deleted when another session ends.
signouts_table = Table(
    "console_signouts",
    metadata,
    Column("session_sha256", String(64), primary_key=True),
    Column("ended_at", DateTime(timezone=True), nullable=False, index=True),
)

ADMIN_SCOPE = "admin"
SCOPES: tuple[str, ...] = ("score", "feedback", "read", ADMIN_SCOPE)
TOKEN_PREFIX = "sg_"
MAX_TOKEN_NAME = 128
PRINCIPAL_HEADER = b"x-shopguard-principal"  # set by the middleware, never trusted from a client
AUTHORIZATION_LOC = ["header", "authorization"]  # what a 401 or 403 names
# Deny by default: a route not named here needs the ``admin`` scope.
OPEN = "open"  # no token: health, the API description, the console's sign-in and its static files
SESSION = "session"  # the console's pages: its own signed session cookie (serving/console), no bearer token
OPEN_PATHS = frozenset({"/readyz", "/livez", "/healthz", "/docs.json", "/schema.json", "/", "/console",
                        "/console/", "/console/signin"})
OPEN_PREFIXES = ("/static_content/", "/assets/", "/console/static/")
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("POST", "/v1/feedback"): "feedback",
    ("POST", "/v1/appeals"): "feedback",
}
READ_PREFIXES = ("/v1/models", "/metrics", "/v1/streams/", "/v1/creators/", "/v1/merchants/", "/v1/enforcement/")
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class ApiToken:
    """A stored token (never the token itself)."""

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        """Whether this token may call a route needing ``scope``."""
        return "admin" in self.scopes or scope in self.scopes


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(value: str) -> tuple[str, ...]:
    """``score,feedback`` -> ('score', 'feedback'), refusing unknown scopes."""
    items = [s.strip() for s in value.split(",")]
    if "" in items and any(items):  # a typo (``read,,admin``) is not read as a shorter list
        raise ShopGuardError(f"an empty item in the scope list {value!r}; name each scope once, joined by commas.")
    scopes = tuple(dict.fromkeys(s for s in items if s))
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise ShopGuardError(f"unknown scope(s) {unknown or [value]}; choose from {', '.join(SCOPES)}.")
    return scopes


OUTAGE_GRACE_SECONDS = 900.0  # how long after the last good read a vouched scoring token passes while the database is down


class TokenStore:
    """Create, list, revoke and verify tokens."""

    def __init__(self, engine: Engine, cache_seconds: float = 5.0) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[float, ApiToken | None]] = {}
        self._cache_seconds = cache_seconds
        # tokens the database vouched for, apart from the cache (which unknown tokens can fill and clear)
        self._vouched: dict[str, tuple[float, ApiToken]] = {}
        self._last_read = float("-inf")  # time.monotonic() of the last successful read
        # Why token checks answered 503 lately (the database cannot be read and no recent check
        # vouches), for /readyz: a replica that answers 503 to every call must not say it is
        # ready; a brief lock the outage grace rides out does not take it out of rotation.
        self.reading = StorageStatus(horizon_seconds=5.0)

    def create(self, name: str, scopes: tuple[str, ...], created_by: str) -> str:
        """A new token for ``name``; returns the token (shown once, stored hashed)."""
        name = validate_token_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._engine.begin() as conn:
            # Names differing only by case or width (``Filer``, ``ｆｉｌｅｒ``) read as one person in the
            # audit trail and the four-eyes rule: one name.
            taken = next((row for row in conn.execute(select(tokens_table.c.name, tokens_table.c.revoked_at))
                          if principal_key(row.name) == principal_key(name)), None)
            if taken is not None and taken.revoked_at is None:
                raise ShopGuardError(f"a token named {taken.name!r} exists (names differing only by case or width "
                                     "are one name); revoke it or choose another name.")
            if taken is not None:
                raise ShopGuardError(f"the name {taken.name!r} belongs to a token revoked on "
                                     f"{taken.revoked_at:%Y-%m-%d}; names are not reused (the audit trail names "
                                     "tokens by it; names differing only by case or width are one name): choose "
                                     "another name.")
            conn.execute(insert(tokens_table).values(
                name=name, token_sha256=_digest(token), scopes=",".join(scopes),
                created_at=datetime.now(UTC), created_by=created_by, revoked_at=None))
        return token

    def list(self) -> list[ApiToken]:
        """Every token, revoked ones included, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(tokens_table).order_by(tokens_table.c.id)).mappings().all()
        return [self._token(r) for r in rows]

    def revoke(self, name: str) -> str:
        """Revoke a token by name, however cased or widened (one name, as ``create`` takes it;
        effective within the verification cache's few seconds); the name as stored."""
        with self._engine.begin() as conn:
            active = conn.execute(select(tokens_table.c.name).where(tokens_table.c.revoked_at.is_(None))).scalars()
            stored = next((n for n in active if principal_key(n) == principal_key(name)), None)
            done = conn.execute(update(tokens_table).where(
                tokens_table.c.name == stored, tokens_table.c.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC)))
        if stored is None or done.rowcount == 0:
            raise ShopGuardError(f"no active token named {name!r}; `shopguard tokens list` shows them.")
        return stored

    def end_session(self, session_id: str, lifetime_seconds: float) -> None:
        """Record that the console session ``session_id`` signed out (its cookie is refused from
        now on); forget sessions that would have expired anyway."""
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            conn.execute(delete(signouts_table).where(
                signouts_table.c.ended_at < now - timedelta(seconds=lifetime_seconds)))
            if not self.session_ended(session_id, conn):
                conn.execute(insert(signouts_table).values(session_sha256=_digest(session_id), ended_at=now))

    def session_ended(self, session_id: str, conn: Any = None) -> bool:
        """Whether the console session ``session_id`` signed out."""
        statement = select(signouts_table.c.session_sha256).where(signouts_table.c.session_sha256 == _digest(session_id))
        if conn is not None:
            return conn.execute(statement).first() is not None
        with self._engine.connect() as fresh:
            return fresh.execute(statement).first() is not None

    def verify(self, token: str) -> ApiToken | None:
        """The active token matching ``token``, or None."""
        digest = _digest(token)
        cached = self._cache.get(digest)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            with self._engine.connect() as conn:
                row = conn.execute(select(tokens_table).where(tokens_table.c.token_sha256 == digest)).mappings().first()
        except SQLAlchemyError as exc:
            vouched = self._outage_grace(digest)
            if vouched is None:
                self.reading.failed(str(exc))
                raise
            return vouched
        now = time.monotonic()
        self._last_read = now
        self.reading.stored()
        found = None if row is None or row["revoked_at"] is not None else self._token(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, found)
        if found is not None:
            if len(self._vouched) > 10_000:
                self._vouched.clear()
            self._vouched[digest] = (now, found)
        else:
            self._vouched.pop(digest, None)
        return found

    def _outage_grace(self, digest: str) -> ApiToken | None:
        """While the database cannot be read, a scoring token (no admin scope) passes when the
        database vouched for it within the normal cache time of its last successful read, and
        that read is at most ``OUTAGE_GRACE_SECONDS`` old: its standing is then no staler than
        a cached check, and scoring goes on (decisions wait in the journal). Anything else
        cannot be checked: the caller answers 503."""
        vouched = self._vouched.get(digest)
        if vouched is None or ADMIN_SCOPE in vouched[1].scopes:
            return None
        checked_at, token = vouched
        now = time.monotonic()
        if now - self._last_read > OUTAGE_GRACE_SECONDS or self._last_read - checked_at > self._cache_seconds:
            return None
        return token

    def active(self, name: str) -> ApiToken | None:
        """The active (not revoked) token named ``name``, or None: a console session ends
        when its token is revoked."""
        with self._engine.connect() as conn:
            row = conn.execute(select(tokens_table).where(tokens_table.c.name == name)).mappings().first()
        return None if row is None or row["revoked_at"] is not None else self._token(row)

    @staticmethod
    def _token(row: Any) -> ApiToken:
        return ApiToken(row["name"], tuple(row["scopes"].split(",")), row["created_at"], row["created_by"],
                        row["revoked_at"])


def encode_principal(name: str) -> bytes:
    """A token's name as a header value: percent-encoded UTF-8, since ASGI servers and Starlette
    read header bytes as Latin-1 (``审核员张三`` would arrive as mojibake)."""
    return quote(name, safe="").encode("ascii")


def decode_principal(value: str | None) -> str | None:
    """The token name set by :class:`AuthGuard` (None when authentication is off)."""
    return unquote(value, errors="strict") if value else None


def validate_token_name(name: str) -> str:
    """A token's name as stored and shown: 1 to 128 characters after trimming, no control or
    format characters (bidirectional overrides, zero-width marks, NUL, newlines)."""
    trimmed = name.strip()
    if not 1 <= len(trimmed) <= MAX_TOKEN_NAME:
        raise ShopGuardError(f"a token's name has 1 to {MAX_TOKEN_NAME} characters; got {len(trimmed)}.")
    bad = sorted({f"U+{ord(ch):04X}" for ch in trimmed if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")})
    if bad:
        raise ShopGuardError(f"a token's name may not hold control, format or unassigned characters: {', '.join(bad)}.")
    return unicodedata.normalize("NFC", trimmed)


def required_scope(method: str, path: str) -> str:
    """What a route needs: ``OPEN``, ``SESSION`` (the console checks its own cookie) or a
    token scope. Deny by default: a route not listed needs ``admin``, so a route added later
    is closed until someone names its scope."""
    from kinds import MODEL_KINDS

    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return OPEN
    if path.startswith("/console/"):
        return SESSION
    if method == "POST" and any(path == kind.route for kind in MODEL_KINDS.values()):
        return "score"
    scope = ROUTE_SCOPES.get((method, path))
    if scope is not None:
        return scope
    if method in READ_METHODS and path.startswith(READ_PREFIXES):
        return "read"
    return "admin"


class AuthGuard:
    """ASGI middleware enforcing tokens and scopes; passes the caller's name on to the
    service in ``x-shopguard-principal``."""

    def __init__(self, app: Any, *, store: Callable[[], TokenStore | None] = lambda: None,
                 metrics_enabled: bool = False) -> None:
        """``store`` makes the token store when the worker builds its middlewares (None:
        ``SHOPGUARD_AUTH=off``, every call is let in); ``metrics_enabled`` serves ``/metrics``."""
        self.app = app
        self.store = store()
        self.metrics_enabled = metrics_enabled

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers") or [] if k.lower() != PRINCIPAL_HEADER]
        if scope["path"] == "/metrics" and not self.metrics_enabled:
            await send_json(send, 404, error_body(404, ["request"], "metrics are off; set SHOPGUARD_METRICS=on"))
            return
        needed = required_scope(scope["method"], scope["path"])
        if self.store is None or needed in (OPEN, SESSION):
            await self.app({**scope, "headers": headers}, receive, send)
            return
        token = _bearer(headers)
        try:
            found = self.store.verify(token) if token else None
        except SQLAlchemyError as exc:  # the database cannot be read: nobody can be checked, nothing stored
            QUIET_LOG.note("token-storage", "token checks answer 503: the database cannot be read (%s)",
                           type(exc).__name__, logger_name="shopguard.auth", level=logging.WARNING)
            await send_json(send, 503, {"error": "storage_unavailable", "message": "tokens cannot be checked right "
                                        "now (the database cannot be read); retry later",
                                        "fallback_decision": "review"}, {"Retry-After": "5"})
            return
        if found is None:
            log_denied(401, scope, "anonymous", "unknown or revoked token" if token else "no bearer token")
            message = ("the bearer token is unknown or revoked; `shopguard tokens list` shows the tokens of this "
                       "service's database, `shopguard tokens create` makes one" if token else
                       "send Authorization: Bearer <token>; `shopguard tokens create` makes one")
            await send_json(send, 401, error_body(401, AUTHORIZATION_LOC, message), {"WWW-Authenticate": "Bearer"})
            return
        if not found.allows(needed):
            log_denied(403, scope, found.name, f"the token lacks the {needed!r} scope")
            await send_json(send, 403, error_body(403, AUTHORIZATION_LOC, f"token {found.name!r} lacks the "
                                                  f"{needed!r} scope (it has {', '.join(found.scopes)})"))
            return
        headers.append((PRINCIPAL_HEADER, encode_principal(found.name)))
        await self.app({**scope, "headers": headers}, receive, send)


def log_denied(status: int, scope: dict[str, Any], caller: str, reason: str) -> None:
    """One INFO line per refused call: status, caller (the token's name, or ``anonymous``),
    route and reason; never the token."""
    logger.info("denied %d %s %s caller=%s reason=%s", status, scope["method"], scope["path"], caller, reason)


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None
