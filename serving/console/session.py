"""Console sign-in: a token (``shopguard tokens create``) exchanged for a session cookie.

The cookie holds the token's name, its scopes and a CSRF token, signed with a secret kept in
the ShopGuard home (``console.secret``, made at first use, shared by the workers) and
timestamped: it is refused after ``SESSION_SECONDS``, whenever the token has been revoked and
once the session signed out (both checked on every request: signing out is recorded in the
database, so a saved copy of the cookie stops working too). It is ``HttpOnly`` and ``SameSite=Strict``; every form that
changes something carries the session's CSRF token, compared in constant time, and a
cross-site ``Origin`` is refused. The token itself is never stored in the cookie.

Sign-in attempts are limited per client address (``SIGNIN_ATTEMPTS``, in each worker's memory,
through ``limits``): beyond, ``429`` with ``Retry-After``, logged once per client and window.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

logger = logging.getLogger("shopguard.console")

SESSION_COOKIE = "shopguard_console"
SIGNIN_COOKIE = "shopguard_console_signin"  # the sign-in form's CSRF token, before a session exists
SESSION_SECONDS = 8 * 3600
SIGNIN_SECONDS = 3600
SECRET_FILE = "console.secret"
SIGNIN_ATTEMPTS = "10/minute"


@dataclass(frozen=True)
class Session:
    """A signed-in person: the token's name, its scopes and the session's CSRF token."""

    name: str
    scopes: tuple[str, ...]
    csrf: str

    def may(self, scope: str) -> bool:
        """Whether the session's token carries ``scope`` (``admin`` carries all)."""
        return "admin" in self.scopes or scope in self.scopes


def console_secret(home: Path) -> bytes:
    """The signing secret in ``home``, created (mode 0600) by the first process to need it:
    written to a private temporary file, then linked into place, so that a worker starting
    at the same moment reads either no file or the whole secret, never a half-written one."""
    path = home / SECRET_FILE
    if path.is_file():
        return path.read_bytes().strip()
    home.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=home, prefix=".console-secret-")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another worker was first: use its secret
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_bytes().strip()


class SessionSigner:
    """Signs and reads the session and sign-in cookies."""

    def __init__(self, secret: bytes) -> None:
        self._sessions = URLSafeTimedSerializer(secret, salt="shopguard-console-session")
        self._signin = URLSafeTimedSerializer(secret, salt="shopguard-console-signin")

    def issue(self, name: str, scopes: tuple[str, ...]) -> str:
        """A new session cookie value with a fresh CSRF token."""
        return self._sessions.dumps({"name": name, "scopes": list(scopes), "csrf": secrets.token_urlsafe(24)})

    def read(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None when absent, forged or expired."""
        if not value:
            return None
        try:
            data = self._sessions.loads(value, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        return Session(str(data["name"]), tuple(data["scopes"]), str(data["csrf"]))

    def signin_token(self) -> tuple[str, str]:
        """A sign-in CSRF token and its signed cookie value."""
        token = secrets.token_urlsafe(24)
        return token, self._signin.dumps(token)

    def signin_matches(self, cookie: str | None, submitted: str | None) -> bool:
        """Whether the sign-in form's CSRF field matches its cookie."""
        if not cookie or not submitted:
            return False
        try:
            expected = self._signin.loads(cookie, max_age=SIGNIN_SECONDS)
        except BadSignature:
            return False
        return secrets.compare_digest(str(expected), submitted)


class SigninLimiter:
    """Sign-in attempts per client address: ``SIGNIN_ATTEMPTS`` in a moving window."""

    def __init__(self, rate: str = SIGNIN_ATTEMPTS) -> None:
        from limits import parse
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self._item = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._told: set[str] = set()

    def attempt(self, client: str) -> float | None:
        """None when ``client`` may try now, else the seconds until it may (the first refusal
        in a window is logged, the others are not)."""
        if self._limiter.hit(self._item, client):
            self._told.discard(client)
            return None
        reset = self._limiter.get_window_stats(self._item, client).reset_time
        if client not in self._told:
            self._told.add(client)
            logger.warning("console sign-in: %s tried more than %s; refused until the window moves", client, self._item)
        return max(1.0, reset - time.time())


def cookie_options(request: Request, max_age: int) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, scoped to the console, Secure over HTTPS."""
    return {"max_age": max_age, "httponly": True, "samesite": "strict", "path": request.scope.get("root_path") or "/",
            "secure": request.url.scheme == "https"}


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site (``Origin`` differs)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
