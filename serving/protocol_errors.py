"""Errors uvicorn answers itself, before any ASGI app sees the request (a request line or
header it cannot parse), in the service's JSON error shape instead of plain text, and the
limits on a request's head that uvicorn's fast parser (httptools) does not have.

uvicorn writes those answers from its protocol classes (``send_400_response``); this
replaces that method on each HTTP protocol class uvicorn may use, in the worker process,
before it serves. Where a protocol cannot be patched (a uvicorn without it), it keeps its
plain-text answer.

**Head limits** (httptools; h11 has its own 16 KiB limit): a header line over
``MAX_HEADER_LINE_BYTES``, more than ``MAX_HEADERS`` headers or a head (request line and
headers) over ``MAX_HEAD_BYTES`` is answered ``431`` and the connection closed, as soon as the
bytes are in: a 64 MiB header costs a worker at most one read beyond the limit, not 64 MiB.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import Any

logger = logging.getLogger("shopguard.protocol")

MAX_HEADER_LINE_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024
HEAD_LIMIT = "_shopguard_head_limit"  # set on a protocol whose request's head went over a limit

PROTOCOL_CLASSES = (
    ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
    ("uvicorn.protocols.http.h11_impl", "H11Protocol"),
    ("uvicorn.protocols.http.zttp_impl", "ZttpProtocol"),
)


def protocol_error_response(message: str) -> bytes:
    """A complete ``400`` HTTP/1.1 response (connection closed) with a JSON error body."""
    body = json.dumps({"error": "bad_request", "message": f"{message} Send a well-formed HTTP/1.1 request.",
                       "detail": [{"loc": ["request"], "msg": message, "type": "protocol_error"}]}).encode()
    head = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n")
    return head + body


def head_too_large_response(message: str) -> bytes:
    """A complete ``431`` HTTP/1.1 response (connection closed) naming the limit."""
    body = json.dumps({"error": "request_header_fields_too_large", "message": message,
                       "detail": [{"loc": ["header"], "msg": message, "type": "too_large"}]}).encode()
    head = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n")
    return head + body


def _send_json_400(self: Any, msg: str) -> None:
    """``send_400_response`` of a uvicorn protocol, answering JSON (431 when a head limit was hit)."""
    limit = getattr(self, HEAD_LIMIT, None)
    self.transport.write(head_too_large_response(limit) if limit else protocol_error_response(msg))
    self.transport.close()


class HeadTooLarge(Exception):
    """Raised from a parser callback: the parser stops, uvicorn answers through ``send_400_response``."""


def _limit_httptools_heads(protocol: Any) -> None:
    """Count a request's head bytes, header lines and header count in httptools' protocol."""
    feed, on_header = protocol.data_received, protocol.on_header
    begin, headers_done, complete = protocol.on_message_begin, protocol.on_headers_complete, protocol.on_message_complete

    def data_received(self: Any, data: bytes) -> None:
        in_head = not getattr(self, "_shopguard_body", False)
        if in_head:
            self._shopguard_head_bytes = getattr(self, "_shopguard_head_bytes", 0) + len(data)
        feed(self, data)
        if (in_head and not getattr(self, "_shopguard_body", False) and not self.transport.is_closing()
                and self._shopguard_head_bytes > MAX_HEAD_BYTES):
            setattr(self, HEAD_LIMIT, f"the request's head is over {MAX_HEAD_BYTES:,} bytes")
            self.send_400_response("")

    def on_message_begin(self: Any) -> None:
        self._shopguard_headers = 0
        begin(self)

    def on_header_limited(self: Any, name: bytes, value: bytes) -> None:
        self._shopguard_headers = getattr(self, "_shopguard_headers", 0) + 1
        if len(name) + len(value) > MAX_HEADER_LINE_BYTES:
            setattr(self, HEAD_LIMIT, f"a header line holds at most {MAX_HEADER_LINE_BYTES:,} bytes")
            raise HeadTooLarge
        if self._shopguard_headers > MAX_HEADERS:
            setattr(self, HEAD_LIMIT, f"a request holds at most {MAX_HEADERS} headers")
            raise HeadTooLarge
        on_header(self, name, value)

    def on_headers_complete(self: Any) -> None:
        self._shopguard_body = True
        headers_done(self)

    def on_message_complete(self: Any) -> None:
        self._shopguard_body, self._shopguard_head_bytes = False, 0
        complete(self)

    protocol.data_received, protocol.on_header = data_received, on_header_limited
    protocol.on_message_begin, protocol.on_headers_complete = on_message_begin, on_headers_complete
    protocol.on_message_complete = on_message_complete


def install_json_protocol_errors() -> list[str]:
    """Patch every importable uvicorn HTTP protocol class; returns the patched class names."""
    patched = []
    for module_name, class_name in PROTOCOL_CLASSES:
        try:
            protocol = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue  # that protocol's parser is not installed
        if getattr(protocol, "_shopguard_patched", False):
            patched.append(class_name)
            continue
        if hasattr(protocol, "send_400_response"):
            protocol.send_400_response = _send_json_400
            if class_name == "HttpToolsProtocol":
                _limit_httptools_heads(protocol)
            protocol._shopguard_patched = True
            patched.append(class_name)
    return patched
