"""Hostile and broken conditions on a real ``bentoml serve`` (issue 18): ids given twice,
variants of a blocked merchant's id, empty ids, unknown fields, feedback that does not say
what it is about, a normalization bomb, denied calls in the log, unparsable requests, and
what the OpenAPI says about load. The journal, time budget and slow-client probes, which
need their own settings, are in ``test_hostile_servers.py``."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import run_cli
from tests.integration.server import api_get, api_post, error_detail
from tests.integration.test_merchant_api import merchant_records

pytestmark = pytest.mark.integration

LISTING = {"listing_id": "L-h", "title": "加厚保温杯", "category": "home", "price": 59.0}
SEGMENT = {"text": "欢迎来到直播间", "start_ms": 0, "end_ms": 1000}


def _locations(response: httpx.Response) -> list[list]:
    return [d["loc"] for d in response.json()["detail"]]


@pytest.fixture(scope="module")
def decided(server, merchant_files) -> dict[str, dict]:
    """A merchant record the model blocks and one it allows, with their answers."""
    records = merchant_records(merchant_files[0])[3000:4000]
    response = api_post(f"{server}/v1/merchants/score", json={"merchants": records}, timeout=120)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    by_id = {r["merchant_id"]: r for r in records}
    blocked = next(r for r in results if r["decision"] == "block")
    allowed = next(r for r in results if r["decision"] == "allow")
    return {"block": by_id[blocked["merchant_id"]], "allow": by_id[allowed["merchant_id"]]}


def _listing_reasons(server: str, merchant_id: str) -> list[str]:
    response = api_post(f"{server}/v1/listings/score", timeout=30,
                        json={"listings": [{**LISTING, "listing_id": "L-variant", "merchant_id": merchant_id}]})
    assert response.status_code == 200, response.text
    return [reason["code"] for reason in response.json()["results"][0]["reasons"]]


@pytest.mark.parametrize("order", ["bad-first", "good-first"])
def test_a_merchant_id_twice_in_one_call_is_400_naming_both_indexes(server, trained_home, decided, order) -> None:
    bad, good = ({**decided[d], "merchant_id": f"M-dup-{order}"} for d in ("block", "allow"))
    pair = [bad, {**good, "merchant_id": f" m-DUP-{order}\u200b"}]  # the same merchant, normalized
    response = api_post(f"{server}/v1/merchants/score", timeout=30,
                        json={"merchants": pair if order == "bad-first" else pair[::-1]})
    assert response.status_code == 400, response.text
    assert _locations(response) == [["merchants", 0, "merchant_id"], ["merchants", 1, "merchant_id"]]
    assert "indexes [0, 1]" in response.json()["detail"][0]["msg"]
    assert "merchant_blocked" not in _listing_reasons(server, f"M-dup-{order}")  # nothing was stored
    audit = run_cli("audit", "decisions", "--entity", f"M-dup-{order}", home=trained_home).stdout
    assert "0 decisions" in audit


def test_a_listing_id_twice_in_one_call_is_400_naming_the_indexes(server) -> None:
    listings = [{**LISTING, "listing_id": "L-twice"}, {**LISTING, "listing_id": "L-once"},
                {**LISTING, "listing_id": "L-twice", "price": 1.0}]
    response = api_post(f"{server}/v1/listings/score", json={"listings": listings}, timeout=30)
    assert response.status_code == 400
    assert _locations(response) == [["listings", 0, "listing_id"], ["listings", 2, "listing_id"]]


@pytest.mark.parametrize("variant", ["{} ", "{}\u200b", "\ufeff{}", "upper", "full-width"])
def test_a_blocked_merchant_is_found_under_any_form_of_its_id(server, decided, variant) -> None:
    merchant_id = decided["block"]["merchant_id"]
    assert "merchant_blocked" in _listing_reasons(server, merchant_id)
    forms = {"upper": merchant_id.upper() if merchant_id.upper() != merchant_id else merchant_id.lower(),
             "full-width": "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in merchant_id)}
    assert "merchant_blocked" in _listing_reasons(server, forms.get(variant, variant.format(merchant_id)))


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/listings/score", {"listings": [{**LISTING, "merchant_id": ""}]}, ["listings", 0, "merchant_id"]),
    ("/v1/listings/score", {"listings": [{**LISTING, "listing_id": " \u200b "}]}, ["listings", 0, "listing_id"]),
    ("/v1/streams/score", {"stream_id": "S-e", "merchant_id": "", "segments": [SEGMENT]}, ["merchant_id"]),
    ("/v1/streams/score", {"stream_id": "\u3000", "segments": [SEGMENT]}, ["stream_id"]),
    ("/v1/feedback", {"entity_id": "\u200b", "entity_type": "listing", "label": "ok"}, ["entity_id"]),
], ids=["listing-merchant", "listing-id", "stream-merchant", "stream-id", "feedback-entity"])
def test_empty_ids_are_400_naming_the_field(server, path, body, field) -> None:
    response = api_post(f"{server}{path}", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert field in _locations(response)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/listings/score", {"listings": [LISTING], "explain": "all"}),
    ("/v1/merchants/score", {"merchants": [], "dry_run": True}),
    ("/v1/streams/score", {"stream_id": "S-u", "segments": [SEGMENT], "language": "zh"}),
    ("/v1/feedback", {"entity_id": "L-h", "entity_type": "listing", "label": "ok", "verdict": "ok"}),
], ids=["listings", "merchants", "streams", "feedback"])
def test_unknown_top_level_fields_are_400_on_every_endpoint(server, path, body) -> None:
    response = api_post(f"{server}{path}", json=body, timeout=30)
    assert response.status_code == 400, response.text
    unknown = next(k for k in body if k not in ("listings", "merchants", "stream_id", "segments", "entity_id",
                                                "entity_type", "label"))
    assert [unknown] in _locations(response)
    assert next(d for d in response.json()["detail"] if d["loc"] == [unknown])["type"] == "extra_forbidden"


STREAM = {"stream_id": "S-strict", "segments": [SEGMENT]}


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/streams/score", {**STREAM, "chunk": True}, "chunk"),
    ("/v1/streams/score", {**STREAM, "chunk": "1"}, "chunk"),
    ("/v1/streams/score", {**STREAM, "chunk": 2.0}, "chunk"),
    ("/v1/appeals", {"ledger_entry_id": "15", "appellant": "M-a", "reason": "not mine"}, "ledger_entry_id"),
    ("/v1/feedback", {"entity_id": "L-h", "entity_type": "listing", "label": "ok", "segment_index": "0"},
     "segment_index"),
], ids=["chunk-true", "chunk-text", "chunk-float", "appeal-entry-text", "feedback-index-text"])
def test_top_level_values_of_another_type_are_400_naming_the_field(server, path, body, field) -> None:
    """Top-level fields are as strict as record fields: no value is coerced into their type."""
    response = api_post(f"{server}{path}", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert [field] in _locations(response)


def test_feedback_names_its_entity_type_and_lands_on_that_entity(server, decided) -> None:
    shared_id = decided["block"]["merchant_id"]  # a merchant at block; now a listing with the same id
    scored = api_post(f"{server}/v1/listings/score", json={"listings": [{**LISTING, "listing_id": shared_id}]},
                      timeout=30)
    assert scored.status_code == 200
    feedback = f"{server}/v1/feedback"

    ambiguous = api_post(feedback, json={"entity_id": shared_id, "label": "ok"}, timeout=30)
    assert [d["loc"] for d in error_detail(ambiguous, 400)] == [["entity_type"]]
    assert "ambiguous" in ambiguous.json()["detail"][0]["msg"]
    conflicting = api_post(feedback, json={"entity_id": shared_id, "label": "ok", "entity_type": "listing",
                                           "model": "merchant-risk"}, timeout=30)
    assert conflicting.status_code == 400 and _locations(conflicting) == [["model"]]

    on_listing = api_post(feedback, json={"entity_id": shared_id, "entity_type": "listing", "label": "ok"},
                          timeout=30)
    assert on_listing.status_code == 200, on_listing.text
    assert on_listing.json()["entity_type"] == "listing" and on_listing.json()["model"].startswith("listing-quality")
    assert "merchant_blocked" in _listing_reasons(server, shared_id)  # the merchant's block stands

    wrong_version = api_post(feedback, json={"entity_id": shared_id, "model": "merchant-risk:v0-not-it",
                                             "label": "suspicious"}, timeout=30)
    assert [d["loc"] for d in error_detail(wrong_version, 422)] == [["model"]]
    on_merchant = api_post(feedback, json={"entity_id": shared_id.lower() + " ", "model": "merchant-risk",
                                           "label": "ok"}, timeout=30)  # any form of the merchant's id
    assert on_merchant.status_code == 200, on_merchant.text
    assert on_merchant.json()["entity_type"] == "merchant"
    assert "merchant_blocked" not in _listing_reasons(server, shared_id)  # the reviewer lifted it

    never = api_post(feedback, json={"entity_id": shared_id, "entity_type": "stream", "label": "ok"}, timeout=30)
    assert never.status_code == 404 and _locations(never) == [["entity_id"]]
    assert "a listing and a merchant with that id" in never.json()["detail"][0]["msg"]


def test_a_normalization_bomb_is_refused_up_front_eight_at_once(server) -> None:
    bomb = {"stream_id": "S-bomb", "segments": [{"text": "\ufdfa" * 100, "start_ms": i, "end_ms": i + 1}
                                                for i in range(1000)]}
    started = time.monotonic()
    with ThreadPoolExecutor(9) as pool:
        bombs = [pool.submit(api_post, f"{server}/v1/streams/score", json=bomb, timeout=60) for _ in range(8)]
        ordinary = pool.submit(api_post, f"{server}/v1/streams/score", timeout=60,
                               json={"stream_id": "S-ordinary", "segments": [SEGMENT]})
        answers = [f.result() for f in bombs]
    assert ordinary.result().status_code == 200
    assert time.monotonic() - started < 30
    for response in answers:
        assert response.status_code == 413, response.text[:300]
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["segments"] and "1,800,000 characters after Unicode" in detail["msg"]


def _server_log(server: str, home: Path) -> str:
    """The log of the session's server (``running_server`` writes it into the home)."""
    return (home / f"server-{urlparse(server).port}.log").read_text(errors="replace")


def test_denied_calls_are_logged_with_caller_route_and_reason_never_the_token(server, trained_home) -> None:
    secret = "sg_not-a-real-token-" + "x" * 20
    reader = run_cli("tokens", "create", "--name", "denied-log-reader", "--scopes", "read",
                     home=trained_home).stdout.strip()
    assert httpx.post(f"{server}/v1/listings/score", json={"listings": [LISTING]}, timeout=30).status_code == 401
    assert httpx.post(f"{server}/v1/merchants/score", json={"merchants": []}, timeout=30,
                      headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert httpx.post(f"{server}/v1/streams/score", json={}, timeout=30,
                      headers={"Authorization": f"Bearer {reader}"}).status_code == 403
    expected = ["denied 401 POST /v1/listings/score caller=anonymous reason=no bearer token",
                "denied 401 POST /v1/merchants/score caller=anonymous reason=unknown or revoked token",
                "denied 403 POST /v1/streams/score caller=denied-log-reader reason=the token lacks the 'score' scope"]
    deadline = time.monotonic() + 10
    while not all(line in _server_log(server, trained_home) for line in expected) and time.monotonic() < deadline:
        time.sleep(0.3)
    log = _server_log(server, trained_home)
    assert all(line in log for line in expected), [line for line in expected if line not in log]
    assert secret not in log and reader not in log


@pytest.mark.parametrize("raw", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                                 b"POST /v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"],
                         ids=["request-line", "header", "content-length"])
def test_unparsable_requests_get_the_json_error_shape(server, raw) -> None:
    url = urlparse(server)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert error["error"] == "bad_request" and error["detail"][0]["loc"] == ["request"]


def _raw_answer(server: str, head: bytes, body_chunks: int = 0) -> tuple[bytes, float]:
    """Send ``head`` (then up to ``body_chunks`` MiB more of header bytes) and read the answer."""
    url = urlparse(server)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        try:
            sock.sendall(head)
            for _ in range(body_chunks):
                sock.sendall(b"a" * 2**20)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest: what a limit does
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer, time.monotonic() - started


@pytest.mark.parametrize("head", [
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Huge: ",
], ids=["line-over-16KiB", "101-headers", "16MiB-header"])
def test_oversized_heads_are_431_before_the_app_and_the_service_goes_on(server, head) -> None:
    answer, seconds = _raw_answer(server, head, body_chunks=16 if head.endswith(b": ") else 0)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 431"), answer[:200]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"] == "request_header_fields_too_large"
    assert seconds < 10
    assert api_post(f"{server}/v1/listings/score", json={"listings": [LISTING]}, timeout=30).status_code == 200


def test_the_openapi_documents_every_load_answer_and_no_429_or_504(server) -> None:
    spec = api_get(f"{server}/docs.json", timeout=30).json()
    for path in ("/v1/listings/score", "/v1/merchants/score", "/v1/streams/score", "/v1/feedback"):
        responses = spec["paths"][path]["post"]["responses"]
        assert "Retry-After" in responses["503"]["headers"]
        assert "time budget" in responses["503"]["description"] and "408" in responses
        assert not {"429", "504", "500"} & set(responses)


@pytest.mark.parametrize(("path", "raw", "key"), [
    ("/v1/listings/score", b'{"listings": [{"listing_id": "L-dup", "listing_id": "L-other", "merchant_id": "M1",'
     b' "title": "t", "category": "home", "price": 1}]}', "listing_id"),
    ("/v1/streams/score", b'{"stream_id": "S-dup", "segments": [], "stream_id": "S-x"}', "stream_id"),
    ("/v1/feedback", b'{"entity_id": "L-h", "entity_type": "listing", "label": "ok", "label": "inferior"}', "label"),
], ids=["listing-field", "top-level", "feedback-label"])
def test_a_key_given_twice_in_one_object_is_400_naming_it(server, path, raw, key) -> None:
    # JSON parsers keep the last value: a proxy or log reading the first saw another request.
    response = api_post(f"{server}{path}", content=raw, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["body", key] and response.json()["detail"][0]["type"] == "duplicate_key"
