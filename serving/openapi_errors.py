"""The OpenAPI document with the error answers the service really gives on each call
(``/docs.json`` is patched on its way out)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

GUARDED_PREFIX = "/v1/"
OPENAPI_PATH = "/docs.json"
Send = Callable[[dict[str, Any]], Awaitable[None]]


ERROR_DETAIL_SCHEMA = {
    "type": "object", "title": "ErrorDetail", "required": ["loc", "msg", "type"],
    "properties": {"loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                   "msg": {"type": "string"}, "type": {"type": "string"}},
}
CLIENT_ERROR_SCHEMA = {
    "type": "object", "title": "ClientError", "required": ["error", "detail"],
    "description": "A refused call (every 4xx, ``common/errors.py``): ``error`` (a code), ``detail`` naming each "
                   "offending field in ``loc`` (the first 20; ``errors_total`` counts all)",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                   "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
                   "errors_total": {"type": "integer"}},
}
UNAVAILABLE_SCHEMA = {
    "type": "object", "title": "Unavailable", "required": ["error", "message", "fallback_decision"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                   "fallback_decision": {"type": "string", "enum": ["review"]}},
}
DOCUMENTED_ERRORS = {
    "400": "invalid input, an unknown field, or an id given twice: each error names its field",
    "401": "no or unknown bearer token",
    "403": "the token lacks the route's scope",
    "404": "the entity or request the feedback names was not scored, or the ledger entry appealed does not exist",
    "408": "the body did not arrive within the read timeout (SHOPGUARD_BODY_TIMEOUT_SECONDS)",
    "413": "the body, or a stream's text, is over its limit",
    "409": "the call contradicts what is stored: a stream chunk sent again with other segments, another "
           "creator_id for a stream, an appeal of an entry appealed already or past its deadline",
    "415": "the body is not JSON",
    "422": "the feedback's label or segment does not fit the scored entity",
}


CREATED = {"/v1/appeals"}  # answered 201 Created

UNAVAILABLE_DESCRIPTION = (
    "cannot answer now: model missing, overloaded (too many calls open or in flight), the call's time "
    "budget ran out, or decisions cannot be stored. Retry after Retry-After and treat the items as "
    "'review' meanwhile. The service never answers 429 or 504.")
RETRY_AFTER_HEADER = {"Retry-After": {"description": "seconds to wait before retrying",
                                      "schema": {"type": "integer"}}}


def nullable_for_openapi_30(node: Any) -> Any:
    """OpenAPI 3.0 (what BentoML declares) has no ``{"type": "null"}``: pydantic's
    ``X | None`` (``anyOf: [X, {"type": "null"}]``) becomes ``anyOf: [X], nullable: true``, and
    a property BentoML flattened to ``X`` with ``default: null`` says ``nullable: true`` (a
    ``$ref``, whose siblings 3.0 ignores, is wrapped in ``allOf``)."""
    if isinstance(node, list):
        return [nullable_for_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: nullable_for_openapi_30(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        node["anyOf"] = [option for option in options if option != {"type": "null"}]
        node["nullable"] = True
    properties = node.get("properties")
    if isinstance(properties, dict):
        for name, schema in properties.items():
            if isinstance(schema, dict) and "default" in schema and schema["default"] is None:
                if "$ref" in schema:
                    schema = {**{k: v for k, v in schema.items() if k != "$ref"}, "allOf": [{"$ref": schema["$ref"]}]}
                properties[name] = {**schema, "nullable": True}
    return node


def document_errors(openapi: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the error answers the service really gives on each call,
    valid OpenAPI 3.0 (nullable fields as ``nullable``)."""
    openapi = nullable_for_openapi_30(openapi)
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({"ErrorDetail": ERROR_DETAIL_SCHEMA, "ClientError": CLIENT_ERROR_SCHEMA,
                    "Unavailable": UNAVAILABLE_SCHEMA})
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ClientError"}}}
    for path, operations in openapi.get("paths", {}).items():
        post = operations.get("post")
        if post is None or not path.startswith(GUARDED_PREFIX):
            continue
        responses = post.setdefault("responses", {})
        if path in CREATED and "200" in responses:
            responses["201"] = {**responses.pop("200"), "description": "created"}
        for status, description in DOCUMENTED_ERRORS.items():
            responses[status] = {"description": description, "content": error}
        responses["503"] = {"description": UNAVAILABLE_DESCRIPTION, "headers": RETRY_AFTER_HEADER,
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Unavailable"}}}}
        responses.pop("500", None)  # a 500 is a bug, never a documented answer
    return openapi


class OpenApiPatcher:
    """Buffers the OpenAPI document and sends it with ``document_errors`` applied."""

    def __init__(self, send: Send) -> None:
        self._send, self._start, self._chunks = send, None, []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        payload = b"".join(self._chunks)
        with contextlib.suppress(ValueError, TypeError):
            payload = json.dumps(document_errors(json.loads(payload))).encode()
        headers = [(k, v) for k, v in (self._start or {}).get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        await self._send({**(self._start or {"type": "http.response.start", "status": 200}), "headers": headers})
        await self._send({"type": "http.response.body", "body": payload})
