"""Tokens and scopes on a real server: anonymous and unknown callers get 401, a token
without the route's scope 403, a revoked token 401; health stays open; metrics are off."""

from __future__ import annotations

import html
import re
import time

import httpx
import pytest
from sqlalchemy import create_engine, select

from tests.conftest import run_cli
from tests.integration.server import api_get, error_detail

pytestmark = pytest.mark.integration

LISTING = {"listing_id": "L-auth", "title": "加厚保温杯", "category": "home", "price": 59.0}


def _score(server: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{server}/v1/listings/score", json={"listings": [LISTING]}, headers=headers, timeout=30)


def test_scoring_and_feedback_need_a_token(server) -> None:
    assert _score(server, None).status_code == 401
    assert _score(server, "sg_not-a-token").status_code == 401
    anonymous_feedback = httpx.post(f"{server}/v1/feedback", timeout=30,
                                    json={"entity_id": "L-auth", "label": "ok", "reviewer": "mallory"})
    assert error_detail(anonymous_feedback, 401)[0]["loc"] == ["header", "authorization"]
    assert anonymous_feedback.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server}/v1/models", timeout=30).status_code == 401


def test_a_token_without_the_scope_is_forbidden_and_a_revoked_one_refused(server, trained_home) -> None:
    reader = run_cli("tokens", "create", "--name", "auditor-test", "--scopes", "read", home=trained_home).stdout.strip()
    refused = _score(server, reader)
    assert error_detail(refused, 403)[0]["loc"] == ["header", "authorization"]
    assert "'score' scope" in refused.json()["message"]
    assert httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {reader}"}, timeout=30).status_code == 200
    scorer = run_cli("tokens", "create", "--name", "pipeline-test", "--scopes", "score", home=trained_home).stdout.strip()
    assert _score(server, scorer).status_code == 200
    listed = run_cli("tokens", "list", home=trained_home).stdout
    assert "pipeline-test" in listed and scorer not in listed  # only the hash is stored
    run_cli("tokens", "revoke", "pipeline-test", home=trained_home)
    deadline = time.monotonic() + 15  # workers cache a verified token for a few seconds
    while _score(server, scorer).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.5)
    revoked = _score(server, scorer)
    assert revoked.status_code == 401 and "unknown or revoked" in revoked.json()["message"]
    assert "send Authorization" in httpx.get(f"{server}/v1/models", timeout=30).json()["message"]  # none sent
    # A revoked token's name stays its own (the audit trail names it): the refusal says so.
    taken = run_cli("tokens", "create", "--name", "pipeline-test", "--scopes", "score", home=trained_home, check=False)
    assert taken.returncode != 0 and "revoked on" in taken.stderr and "choose another name" in taken.stderr


def test_health_is_open_and_metrics_are_off_by_default(server) -> None:
    ready = httpx.get(f"{server}/readyz", timeout=30)
    assert ready.status_code == 200
    assert all(m["loaded"] for m in ready.json()["models"].values())
    assert httpx.get(f"{server}/livez", timeout=30).status_code == 200
    assert api_get(f"{server}/metrics", timeout=30).status_code == 404


def test_metrics_on_are_collected_and_need_the_read_scope(trained_home) -> None:
    from tests.integration.server import running_server

    reader = run_cli("tokens", "create", "--name", "metrics-reader", "--scopes", "read", home=trained_home).stdout.strip()
    scorer = run_cli("tokens", "create", "--name", "metrics-scorer", "--scopes", "score", home=trained_home).stdout.strip()
    with running_server(trained_home, extra_env={"SHOPGUARD_METRICS": "on", "SHOPGUARD_DEVICE": "cpu"}) as base:
        assert _score(base, scorer).status_code == 200
        assert httpx.get(f"{base}/metrics", timeout=30).status_code == 401
        metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {reader}"}, timeout=30)
    assert metrics.status_code == 200
    scored = [line for line in metrics.text.splitlines()
              if line.startswith("bentoml_service_request_total") and "/v1/listings/score" in line]
    assert scored and float(scored[0].rsplit(" ", 1)[1]) >= 1


def sign_in(client: httpx.Client, token: str) -> None:
    """Sign ``client`` in to the console with ``token`` (the form's CSRF field read from the page)."""
    form = client.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    signed = client.post("/console/signin", data={"csrf": csrf, "token": token, "next": ""})
    assert signed.status_code == 303 and "shopguard_console" in client.cookies


def test_a_non_ascii_reviewer_is_one_person_through_the_api_and_the_console(server, trained_home) -> None:
    name = "审核员张三 (Zoë)"
    token = run_cli("tokens", "create", "--name", name, "--scopes", "score,feedback,read", home=trained_home).stdout.strip()
    bearer = {"Authorization": f"Bearer {token}"}
    listings = [{**LISTING, "listing_id": f"L-utf8-{i}"} for i in range(2)]
    scored = httpx.post(f"{server}/v1/listings/score", json={"listings": listings}, headers=bearer, timeout=30)
    assert scored.status_code == 200, scored.text
    verdict = {"entity_id": "L-utf8-0", "entity_type": "listing", "label": "ok"}
    named = httpx.post(f"{server}/v1/feedback", headers=bearer, timeout=30, json={**verdict, "reviewer": "mallory"})
    assert error_detail(named, 400)[0]["loc"] == ["reviewer"]  # the token names the reviewer: was silently ignored
    by_api = httpx.post(f"{server}/v1/feedback", headers=bearer, timeout=30, json=verdict)
    assert by_api.status_code == 200, by_api.text

    from serving.decision_queries import query_decisions
    from serving.feedback import feedback_table

    engine = create_engine(f"sqlite:///{trained_home / 'shopguard.db'}")
    decision_id = query_decisions(engine, entity_ids=["L-utf8-1"], entity_type="listing")[-1]["id"]
    with httpx.Client(base_url=server, timeout=30) as console:
        sign_in(console, token)
        page = console.get(f"/console/decisions/{decision_id}")
        assert page.status_code == 200 and html.escape(name) in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        given = console.post(f"/console/decisions/{decision_id}/verdict", data={"csrf": csrf, "verdict": "ok"})
        assert given.status_code == 303, given.text
    with engine.connect() as conn:
        reviewers = conn.execute(select(feedback_table.c.reviewer).where(
            feedback_table.c.entity_id.in_(["L-utf8-0", "L-utf8-1"]))).scalars().all()
    assert reviewers == [name, name]


@pytest.mark.parametrize("name", ["x" * 129, "   ", "evil\u202ename", "tab\there", "zero\u200bwidth"])
def test_a_token_name_too_long_or_with_control_characters_is_refused(trained_home, name) -> None:
    refused = run_cli("tokens", "create", "--name", name, "--scopes", "read", home=trained_home, check=False)
    assert refused.returncode != 0 and "token's name" in refused.stdout + refused.stderr
