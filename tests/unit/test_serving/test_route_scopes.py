"""Every route of the service and what it needs (deny by default): a route added without a
scope here fails this test, and a route the token check does not name needs ``admin``."""

from __future__ import annotations

import re

import pytest

from serving.auth import OPEN, SESSION, required_scope

# (method, route as declared) -> what it needs
EXPECTED = {
    ("POST", "/v1/listings/score"): "score", ("POST", "/v1/merchants/score"): "score",
    ("POST", "/v1/streams/score"): "score", ("POST", "/v1/feedback"): "feedback",
    ("POST", "/v1/appeals"): "feedback",
    ("GET", "/v1/models/"): "read", ("GET", "/v1/models/{name}/card"): "read",
    ("GET", "/v1/streams/{stream_id:path}"): "read", ("GET", "/v1/creators/{creator_id:path}"): "read",
    ("GET", "/v1/merchants/{merchant_id:path}/standing"): "read", ("GET", "/v1/enforcement/actions"): "read",
    ("GET", "/console/"): OPEN, ("GET", "/console/signin"): OPEN, ("POST", "/console/signin"): OPEN,
    **{(method, f"/console{path}"): SESSION for method, path in (
        ("POST", "/signout"), ("GET", "/queue"), ("GET", "/audit"), ("GET", "/models/{name}/{version}"),
        ("GET", "/models/{name}/{version}/card"), ("GET", "/decisions"), ("GET", "/decisions/export.{format}"), ("GET", "/verdicts/export.{format}"),
        ("GET", "/decisions/{decision_id:int}"), ("POST", "/decisions/{decision_id:int}/verdict"),
        ("POST", "/decisions/{decision_id:int}/skip"),
        ("GET", "/charts/{name}.png"), ("GET", "/rooms"), ("GET", "/lookup"), ("GET", "/rooms/{stream_id:path}"),
        ("GET", "/creators/{creator_id:path}"), ("GET", "/merchants/{merchant_id:path}"), ("GET", "/appeals"),
        ("GET", "/appeals/{appeal_id:int}"), ("POST", "/appeals/{appeal_id:int}/decision"),
        ("GET", "/{address:path}"))},  # the console's 404 page for any other address
}


def _example(path: str) -> str:
    """A concrete path for a declared one (``{x:int}`` -> 7, other parameters -> ``x``)."""
    return re.sub(r"\{[^}:]+:int\}", "7", re.sub(r"\{([^}:]+)(:path)?\}", r"x", path))


def service_routes() -> set[tuple[str, str]]:
    """(method, route) of every API and every route of every mounted app."""
    from serving.service import ShopGuard

    routes = {("POST", method.route) for method in ShopGuard.apis.values()}
    for app, prefix, _ in ShopGuard.mount_apps:
        for route in app.routes:
            for method in (getattr(route, "methods", None) or ()):
                if method != "HEAD":
                    routes.add((method, prefix.rstrip("/") + route.path))
    return routes


def test_every_route_is_named_with_what_it_needs() -> None:
    routes = service_routes()
    assert routes - set(EXPECTED) == set(), "a new route: name its scope here and in serving/auth.py"
    assert set(EXPECTED) - routes == set()
    for (method, route), needed in EXPECTED.items():
        assert required_scope(method, _example(route)) == needed, (method, route)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/anything-new"), ("POST", "/v1/models/"), ("DELETE", "/v1/streams/x"), ("POST", "/v1/streams/x"),
    ("PUT", "/v1/feedback"), ("GET", "/admin"), ("POST", "/v1/merchants/x/standing"),
])
def test_a_route_nobody_named_needs_admin(method: str, path: str) -> None:
    assert required_scope(method, path) == "admin"


def test_only_health_the_description_and_the_signin_are_open() -> None:
    for path in ("/readyz", "/livez", "/healthz", "/docs.json", "/console/signin", "/console/static/console.css"):
        assert required_scope("GET", path) == OPEN
    assert required_scope("GET", "/console/queue") == SESSION and required_scope("GET", "/metrics") == "read"
