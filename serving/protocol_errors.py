"""Errors uvicorn answers itself, before any ASGI app sees the request (a request line or
header it cannot parse), in the service's JSON error shape instead of plain text.

uvicorn writes those answers from its protocol classes (``send_400_response``); this
replaces that method on each HTTP protocol class uvicorn may use, in the worker process,
before it serves. Where a protocol cannot be patched (a uvicorn without it), it keeps its
plain-text answer.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import Any

logger = logging.getLogger("shopguard.protocol")

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


def _send_json_400(self: Any, msg: str) -> None:
    """``send_400_response`` of a uvicorn protocol, answering JSON."""
    self.transport.write(protocol_error_response(msg))
    self.transport.close()


def install_json_protocol_errors() -> list[str]:
    """Patch every importable uvicorn HTTP protocol class; returns the patched class names."""
    patched = []
    for module_name, class_name in PROTOCOL_CLASSES:
        try:
            protocol = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue  # that protocol's parser is not installed
        if hasattr(protocol, "send_400_response"):
            protocol.send_400_response = _send_json_400
            patched.append(class_name)
    return patched
