"""Headers on every console answer: a strict Content-Security-Policy (scripts, styles and
images from the console itself only; no inline script, no framing by other sites), no
MIME sniffing, no referrer to other sites (``same-origin``: a form's ``Origin`` stays checkable), no caching of pages that show logged data.

A model card is a self-contained HTML page with inline styles and ``data:`` images; it is
served with its own policy (still no script at all) and may be framed by the console only.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-src 'self'; "
               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
CARD_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'self'")
CARD_MARKER = b"x-shopguard-card"  # set by the card route: the card's policy instead of the page's


class SecurityHeaders:
    """ASGI middleware adding the security headers to every response of the console."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != CARD_MARKER]
                card = len(headers) != len(message.get("headers", []))
                headers += [
                    (b"content-security-policy", (CARD_POLICY if card else PAGE_POLICY).encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if not card:
                    headers.append((b"x-frame-options", b"DENY"))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Bidirectional controls (embeddings, overrides, isolates, marks): shown as a visible code
# point, so that U+202E cannot reverse the rest of a title or a name on a reviewer's screen.
BIDI_CONTROLS = {ord(c): f"\u27e8U+{ord(c):04X}\u27e9" for c in
                 "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"}


def visible_controls(value: Any) -> Any:
    """Every ``{{ value }}`` of the console's templates (Jinja's ``finalize``): text with its
    bidirectional controls made visible; other values unchanged."""
    if isinstance(value, Markup):
        return Markup(str(value).translate(BIDI_CONTROLS))
    if isinstance(value, str):
        return value.translate(BIDI_CONTROLS)
    return value
