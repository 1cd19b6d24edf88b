"""The console in process (Starlette's test client over a real SQLite home): sign-in and
its cookie, CSRF, escaping, 4xx pages for bad parameters, verdicts through the feedback
code, contradicting verdicts shown, keyset paging and exports. The browser tests
(``tests/integration/test_console_browser.py``) drive the same pages in Chromium."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from common.settings import load_settings
from database.engine import make_engine
from serving.auth import TokenStore
from serving.decision_log import decision_log_table
from serving.feedback import FeedbackStore

HOSTILE = '<script>window.x=1</script>"><img src=x onerror=alert(1)>\u202e'
SPAN = {"start": 2, "end": 6, "text": "全网最低", "category": "absolute_claim", "source": "lexicon", "rule_id": "abs-1"}


def _decision(i: int, entity_type: str, decision: str = "review", **inputs: object) -> dict:
    model = {"listing": "listing-quality:v1", "stream": "false-marketing:v1", "merchant": "merchant-risk:v1"}
    return {"request_id": f"req{i:04d}", "at": datetime.now(UTC) - timedelta(minutes=100 - i),
            "entity_type": entity_type, "entity_id": f"{entity_type[0].upper()}{i}", "decision": decision,
            "score": 0.5 + i / 1000, "model": model[entity_type], "record_id": f"rec{i}",
            "reasons": [{"code": "model_score", "detail": HOSTILE}], "inputs": inputs}


@pytest.fixture()
def console(isolated_home):
    """A signed-out client of the console mounted at /console, its engine and two tokens."""
    from serving.console import state as state_module
    from serving.console.app import console_app

    state_module.state.cache_clear()
    engine = make_engine(load_settings().database_url)
    tokens = TokenStore(engine)
    secrets = {"reviewer": tokens.create("rita", ("read", "feedback"), "test"),
               "reader": tokens.create("otto", ("read",), "test"), "scorer": tokens.create("sam", ("score",), "test"),
               "feedback": tokens.create("fay", ("feedback",), "test")}
    rows = [_decision(i, "listing", title=f"listing {i}", category="beauty", price=1.0) for i in range(60)]
    rows.append(_decision(60, "listing", title=HOSTILE, category="beauty", price=1.0))
    rows.append(_decision(61, "stream", segments=[{"text": "这是全网最低价", "start_ms": 0, "end_ms": 4000}],
                          segment_decisions=["review"], segment_labels=[["absolute_claim"]], segment_spans=[[SPAN]]))
    rows.append(_decision(62, "merchant", "allow", merchant_id="M62", links=[{"merchant_id": "M7", "link_type": "ip"}]))
    with engine.begin() as conn:
        conn.execute(decision_log_table.insert(), rows)
    client = TestClient(Starlette(routes=[Mount("/console", console_app)]), base_url="http://testserver")
    yield client, engine, secrets
    state_module.state.cache_clear()


def _sign_in(client: TestClient, token: str) -> int:
    page = client.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/console/signin", data={"csrf": csrf, "token": token, "next": "/console/queue"},
                       follow_redirects=False).status_code


def _sign_in_page(client: TestClient, token: str) -> str:
    page = client.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/console/signin", data={"csrf": csrf, "token": token}, follow_redirects=False).text


def _csrf(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def test_sign_in_sets_a_signed_httponly_strict_cookie_and_sign_out_ends_it(console) -> None:
    client, _, secrets = console
    assert client.get("/console/queue", follow_redirects=False).headers["location"].startswith("/console/signin")
    assert _sign_in(client, "sg_not-a-token") == 401
    assert _sign_in(client, secrets["scorer"]) == 403  # neither read nor feedback: told so, not "unknown"
    refused = _sign_in_page(client, secrets["scorer"])
    assert "only the score scope" in refused and "unknown" not in refused
    assert "unknown or revoked" in _sign_in_page(client, "sg_not-a-token")
    assert _sign_in(client, secrets["reviewer"]) == 303
    cookie = client.cookies.get("shopguard_console")
    assert cookie and secrets["reviewer"] not in cookie
    page = client.get("/console/queue")
    assert page.status_code == 200 and "rita" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    client.cookies.clear()
    tampered_payload = ("B" if cookie[0] == "A" else "A") + cookie[1:]
    for forged in (cookie[:-3] + ("abc" if cookie[-3:] != "abc" else "xyz"), tampered_payload):
        answer = client.get("/console/queue", headers={"cookie": f"shopguard_console={forged}"},
                            follow_redirects=False)
        assert answer.status_code == 303
    _sign_in(client, secrets["reviewer"])
    assert client.post("/console/signout", data={"csrf": _csrf(client, "/console/queue")},
                       follow_redirects=False).status_code == 303
    assert client.get("/console/queue", follow_redirects=False).status_code == 303


def test_a_revoked_token_ends_its_session(console) -> None:
    client, engine, secrets = console
    _sign_in(client, secrets["reader"])
    assert client.get("/console/audit").status_code == 200
    TokenStore(engine).revoke("otto")
    assert client.get("/console/audit", follow_redirects=False).status_code == 303


def test_logged_input_is_escaped_and_spans_cut_at_their_characters(console) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reviewer"])
    for path in ("/console/queue", "/console/decisions/61", "/console/decisions"):
        text = client.get(path).text
        assert "<script>window.x" not in text and "<img src=x" not in text, path
    hostile = client.get("/console/decisions/61").text
    assert "&lt;script&gt;window.x=1&lt;/script&gt;" in hostile
    assert "\u202e" not in hostile and "\u27e8U+202E\u27e9" in hostile  # the override shown, never obeyed
    queue = client.get("/console/queue").text  # each item summed up by its title or first segment
    assert ">listing 59<" in queue and "absolute_claim</span> 这是全网最低价<" in queue
    stream = client.get("/console/decisions/62").text
    assert re.search(r'<mark class="cat-0" data-start="2" data-end="6" data-category="absolute_claim"[^>]*>全网最低</mark>',
                     stream)
    from serving.console.views import highlighted

    overlapping = [{"start": 0, "end": 4, "category": "a"}, {"start": 2, "end": 6, "category": "b"},
                   {"start": 9, "end": 99, "category": "c"}]
    pieces = highlighted("0123456789", overlapping)
    assert "".join(p["text"] for p in pieces) == "0123456789"
    assert [(p["start"], p["end"], p["span"]["category"]) for p in pieces if p["span"]] == [
        (0, 4, "a"), (4, 6, "b"), (9, 10, "c")]
    merchant = client.get("/console/decisions/63").text
    assert 'href="/console/decisions?entity=M7"' in merchant


def test_bad_parameters_answer_4xx_pages_that_name_the_field(console) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reviewer"])
    for path, field in (("/console/decisions?since=yesterday", "since"), ("/console/decisions?colour=red", "colour"),
                        ("/console/queue?cursor=1:x", "cursor"), ("/console/queue?model=nope", "model"),
                        ("/console/decisions?version=v1", "version"), ("/console/decisions?before=-1", "before"),
                        # pages whose parameters are read by hand: an unknown one, a repeated one
                        ("/console/rooms?foo=1", "foo"), ("/console/appeals?foo=1", "foo"),
                        ("/console/audit?foo=1", "foo"), ("/console/merchants/m1?foo=1", "foo"),
                        ("/console/models/listing-quality/v1?foo=1", "foo"),
                        ("/console/lookup?type=room&id=x&foo=1", "foo"), ("/console/appeals?decided=abc", "decided"),
                        ("/console/decisions?type=listing&type=merchant", "type"),
                        ("/console/rooms?action=all&action=stop", "action")):
        page = client.get(path)
        assert page.status_code == 400 and f"<code>{field}</code>" in page.text, path
    assert client.get("/console/rooms?action=all").status_code == 200
    assert client.get("/console/appeals?status=all&decided=3").status_code == 200
    assert client.get("/console/decisions/999999").status_code == 404
    assert client.get("/console/models/listing-quality/nope").status_code == 404


def test_a_verdict_goes_through_the_feedback_code_and_leaves_the_queue(console) -> None:
    client, engine, secrets = console
    _sign_in(client, secrets["reviewer"])
    assert re.search(r'id="queue-count">62<', client.get("/console/queue").text)
    bad = client.post("/console/decisions/62/verdict", data={"csrf": "forged", "verdict": "ok"})
    assert bad.status_code == 403
    csrf = _csrf(client, "/console/decisions/62")
    stored = client.post("/console/decisions/62/verdict", data={"csrf": csrf, "verdict": "violation",
                                                                "categories-0": "absolute_claim"},
                         follow_redirects=False)
    assert stored.status_code == 303 and "done=62" in stored.headers["location"]
    rows = FeedbackStore(engine).rows("stream")
    assert [(r["reviewer"], r["segment_index"], r["label"], r["request_id"]) for r in rows] == [
        ("rita", 0, "absolute_claim", "req0061")]
    assert re.search(r'id="queue-count">61<', client.get("/console/queue").text)
    client.post("/console/decisions/62/verdict", data={"csrf": csrf, "verdict": "ok"})  # rita changes her verdict
    page = client.get("/console/decisions/62").text
    assert page.count("changed by a later verdict of rita") == 1 and "contradicts an earlier verdict" not in page
    from serving.feedback import Feedback

    FeedbackStore(engine).add(Feedback("S61", "price_fraud", "otto", "stream", "", "req0061", 0))  # another reviewer
    assert client.get("/console/decisions/62").text.count("contradicts an earlier verdict") == 1
    wrong = client.post("/console/decisions/62/verdict", data={"csrf": csrf, "verdict": "violation",
                                                               "categories-0": "made_up"})
    assert wrong.status_code == 422 and "made_up" in wrong.text
    before = len(FeedbackStore(engine).rows("stream"))
    for data, field in (({"note": "长" * 4001}, "note"), ({"categories-7": "absolute_claim"}, "categories-7"),
                        ({"categories-x": "absolute_claim"}, "categories-x"),
                        ({"categories-00": "absolute_claim"}, "categories-00")):  # not segment 0 written again
        refused = client.post("/console/decisions/62/verdict", data={"csrf": csrf, "verdict": "violation",
                                                                     "categories-0": "absolute_claim", **data})
        assert refused.status_code == 400 and f"<code>{field}</code>" in refused.text, field  # was cut or dropped
    listing_csrf = _csrf(client, "/console/decisions/1")
    on_listing = client.post("/console/decisions/1/verdict", data={"csrf": listing_csrf, "verdict": "ok",
                                                                   "categories-0": "absolute_claim"})
    assert on_listing.status_code == 400 and "<code>categories-0</code>" in on_listing.text
    assert len(FeedbackStore(engine).rows("stream")) == before and not FeedbackStore(engine).rows("listing")


def test_a_read_only_token_cannot_give_verdicts(console) -> None:
    client, engine, secrets = console
    _sign_in(client, secrets["reader"])
    csrf = _csrf(client, "/console/queue")
    assert client.post("/console/decisions/1/verdict", data={"csrf": csrf, "verdict": "ok"}).status_code == 403
    assert FeedbackStore(engine).rows() == []


def test_queue_and_search_page_by_keyset_and_export_every_match(console) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reader"])
    first = client.get("/console/queue?type=listing").text
    following = re.search(r'href="(/console/queue\?[^"]*cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(following).text
    ids = lambda text: set(re.findall(r'href="/console/decisions/(\d+)[?"]', text))  # noqa: E731
    assert len(ids(first)) == 50 and len(ids(second)) == 11 and not ids(first) & ids(second)
    by_category = client.get("/console/queue?category=absolute_claim").text
    assert ids(by_category) == {"62"}
    by_score = client.get("/console/queue?order=score").text
    assert re.findall(r'href="/console/decisions/(\d+)[?"]', by_score)[:2] == ["62", "61"]
    csv = client.get("/console/decisions/export.csv?model=listing-quality").text.splitlines()
    assert len(csv) == 62 and csv[1].split(",")[2].endswith("+00:00")
    table = pq.read_table(io.BytesIO(client.get("/console/decisions/export.parquet?type=stream").content))
    assert table.num_rows == 1 and table.column("reasons").to_pylist()[0][0]["code"] == "model_score"


def test_times_with_a_zone_filter_like_the_same_time_in_utc(console) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reader"])
    rows = lambda query: len(client.get(f"/console/decisions/export.csv?{query}").text.splitlines()) - 1  # noqa: E731
    assert rows("since=2030-01-01") == 0 and rows("since=2000-01-01") == 63
    # The same instants with a zone: before, any zoned time was dropped and every decision matched.
    assert rows("since=2030-01-01T00:00:00Z") == 0 and rows("since=2030-01-01T08:00:00%2B08:00") == 0
    assert rows("until=2000-01-01T00:00:00-05:00") == 0 and rows("since=2000-01-01T00:00:00Z") == 63
    earlier = datetime.now(UTC) - timedelta(minutes=40.5)  # decisions 60-62 are 38-40 minutes old, 59 is 41
    zoned = earlier.astimezone(timezone(timedelta(hours=-5))).isoformat().replace("+", "%2B")
    assert rows(f"since={zoned}") == rows(f"since={earlier.replace(tzinfo=None).isoformat()}") == 3
    assert '<b id="search-count">3</b> decision(s) match' in client.get(f"/console/decisions?since={zoned}").text
    past_the_last = client.get(f"/console/decisions?since={zoned}&before=1").text  # every match is newer
    assert '<b id="search-count">3</b> decision(s) match' in past_the_last and "No older decision matches." in past_the_last
    for path in ("/console/decisions/export.csv", "/console/queue", "/console/verdicts/export.csv"):
        answer = client.get(f"{path}?since=9999-12-31T23:59:59-23:59")  # past year 9999 once in UTC: a 500 before
        assert answer.status_code == 400 and "<code>since</code>" in answer.text, path
        # A bare number is not an ISO time: pydantic had read since=-1 as a Unix time (1969).
        for value in ("-1", "1700000000", "1.5e9"):
            answer = client.get(f"{path}?since={value}")
            assert answer.status_code == 400 and "<code>since</code>" in answer.text and "ISO time" in answer.text, (
                path, value)


def test_the_signing_secret_is_made_once_and_private(tmp_path) -> None:
    import os

    from serving.console.session import console_secret

    first, again = console_secret(tmp_path), console_secret(tmp_path)
    assert first == again and len(first) == 64
    assert os.stat(tmp_path / "console.secret").st_mode & 0o077 == 0
    assert os.listdir(tmp_path) == ["console.secret"]  # no temporary file left behind


def test_signing_out_ends_the_session_on_the_server(console) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reviewer"])
    saved = client.cookies.get("shopguard_console")
    client.post("/console/signout", data={"csrf": _csrf(client, "/console/queue")}, follow_redirects=False)
    client.cookies.clear()
    replayed = client.get("/console/queue", headers={"cookie": f"shopguard_console={saved}"}, follow_redirects=False)
    assert replayed.status_code == 303 and "/console/signin" in replayed.headers["location"]
    assert _sign_in(client, secrets["reviewer"]) == 303  # a new session works
    assert client.get("/console/queue").status_code == 200


def test_sign_in_attempts_are_limited_per_client(console, caplog) -> None:
    client, _, secrets = console
    statuses = [_sign_in(client, "sg_wrong") for _ in range(10)]
    assert statuses == [401] * 10
    with caplog.at_level("INFO", logger="shopguard.console"):
        limited = [client.post("/console/signin", data={"csrf": "x", "token": secrets["reviewer"]}) for _ in range(5)]
    assert {r.status_code for r in limited} == {429}
    assert 1 <= int(limited[0].headers["retry-after"]) <= 60
    assert len([r for r in caplog.records if "tried more than" in r.getMessage()]) == 1  # logged once, compactly


def test_a_feedback_only_token_opens_the_queue_and_its_items_only(console) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["feedback"])
    assert client.get("/console/queue").status_code == 200
    assert client.get("/console/decisions/62").status_code == 200  # a pending review
    assert client.get("/console/decisions/63").status_code == 403  # an allow decision, outside the queue
    assert client.post("/console/decisions/63/verdict",
                       data={"csrf": _csrf(client, "/console/queue"), "verdict": "ok"}).status_code == 403
    for path in ("/console/decisions", "/console/audit", "/console/decisions/export.csv"):
        assert client.get(path).status_code == 403, path
    assert client.get("/console/appeals").status_code == 200


@pytest.mark.parametrize(("page", "model"), [("/console/queue", "listing-quality:v1"),
                                             ("/console/decisions/62", "false-marketing:v1")])
def test_a_feedback_only_token_is_shown_no_link_it_cannot_open(console, page, model) -> None:
    """Model pages need ``read`` (README: a feedback-only token opens the queue, its items and
    appeals): its pages name the model version without linking it; ``read`` still links it."""
    client, _, secrets = console
    _sign_in(client, secrets["feedback"])
    text = client.get(page).text
    links = set(re.findall(r'href="(/console/[^"#?]*)', text)) - {"/console/signout"}
    assert model in text
    for link in links:
        assert client.get(link).status_code != 403, link
    client.post("/console/signout", data={"csrf": _csrf(client, page)})
    _sign_in(client, secrets["reviewer"])
    assert f'href="/console/models/{model.replace(":", "/")}"' in client.get(page).text


def test_one_bad_record_degrades_its_own_item_not_the_queue(console) -> None:
    client, engine, secrets = console
    with engine.begin() as conn:  # an operator's repair gone wrong: an unknown type, a malformed segment
        conn.execute(decision_log_table.insert(), [
            {**_decision(70, "listing", title="ok"), "entity_type": "Listing"},
            _decision(71, "stream", segments=[{"text": "全网最低价", "start_ms": "abc", "end_ms": None}],
                      segment_decisions="nope", segment_labels=None, segment_spans=7)])
    _sign_in(client, secrets["reviewer"])
    queue = client.get("/console/queue?order=score")
    assert queue.status_code == 200 and " 这是全网最低价<" in queue.text and "cannot be read" in queue.text
    ids = {row_id for (row_id,) in engine.connect().execute(
        decision_log_table.select().with_only_columns(decision_log_table.c.id).where(
            decision_log_table.c.record_id.in_(["rec70", "rec71"])))}
    for decision_id in ids:
        page = client.get(f"/console/decisions/{decision_id}")
        assert page.status_code in (404, 422) and "Traceback" not in page.text


@pytest.mark.parametrize(("path", "field"), [
    ("/console/decisions/99999999999999999999999", "decision_id"), ("/console/decisions?before=99999999999999999999", "before"),
    ("/console/queue?cursor=0.5:99999999999999999999", "cursor"), ("/console/queue?cursor=nan:5", "cursor"),
    ("/console/appeals/99999999999999999999999", "appeal_id"),
])
def test_integer_parameters_beyond_a_database_integer_are_400(console, path, field) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reviewer"])
    page = client.get(path)
    assert page.status_code == 400 and f"<code>{field}</code>" in page.text


def test_exports_are_bounded_per_caller_and_in_total(console) -> None:
    from serving.console.state import state

    client, _, secrets = console
    _sign_in(client, secrets["reader"])
    slots = state().exports
    assert client.get("/console/decisions/export.csv").status_code == 200 and slots.running() == 0  # released
    assert slots.claim("otto") is None and slots.claim("otto") is None  # two of otto's exports running
    refused = client.get("/console/decisions/export.parquet")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    assert slots.claim("a") is None and slots.claim("b") is None  # the worker's four
    _sign_in(client, secrets["reviewer"])
    assert client.get("/console/decisions/export.csv").status_code == 503
    for caller in ("otto", "otto", "a", "b"):
        slots.release(caller)
    assert client.get("/console/decisions/export.csv").status_code == 200 and slots.running() == 0


def test_appeal_pages_name_rooms_and_decisions_without_links_for_a_token_that_cannot_open_them() -> None:
    """The appeal pages are open to ``review`` tokens; room, creator, merchant and decision
    pages need ``read``: without it their macros name the entity and the request, unlinked."""
    from serving.console.app import TEMPLATES

    macros = TEMPLATES.get_template("_enforcement.html").module
    for linked, expected in ((True, 1), (False, 0)):
        room = str(macros.entity_link("/console", "room", "room-1", linked))
        merchant = str(macros.entity_link("/console", "merchant", "M1", linked))
        decision = str(macros.decision_ref("/console", "abc123def4567", 2, linked))
        assert [x.count("<a ") for x in (room, merchant, decision)] == [expected] * 3
        assert "room-1" in room and "M1" in merchant and "abc123def456" in decision and "#2" in decision


def _appealed_charge(engine, **appeal: object) -> int:
    """A creator's charge for segment 0 of call ``req0061`` and an appeal of it (``appeal``:
    its status and decision); the appeal's id."""
    from policy.store import appeals_table, ledger_table

    at = datetime.now(UTC)
    with engine.begin() as conn:
        entry_id = conn.execute(ledger_table.insert().values(
            entity_type="creator", entity_id="C61", at=at, points=-1, balance=9, kind="charge",
            rule="creators.points.absolute_claim (block)", policy_version="p@1", status="provisional",
            category="absolute_claim", stream_id="S61", request_id="req0061", segment_index=0)).inserted_primary_key[0]
        return conn.execute(appeals_table.insert().values(
            ledger_entry_id=entry_id, entity_type="creator", entity_id="C61", appellant="host", reason="r",
            filed_at=at, **appeal)).inserted_primary_key[0]


def test_a_decision_page_shows_the_appeals_of_its_charges_and_its_policy(console) -> None:
    # An overturn by appeal once left the decision page saying "No verdict yet" and nothing more.
    client, engine, secrets = console
    at = datetime.now(UTC)
    _appealed_charge(engine, status="overturned", decided_by="lead", decided_at=at, note=HOSTILE)
    with engine.connect() as conn:
        stream_id = conn.execute(select(decision_log_table.c.id).where(
            decision_log_table.c.request_id == "req0061")).scalar_one()
    assert _sign_in(client, secrets["reviewer"]) == 303
    page = client.get(f"/console/decisions/{stream_id}").text
    appeals = page[page.index('id="appeals"'):]
    assert "creator C61" in appeals and "absolute_claim" in appeals and "overturned" in appeals and "lead" in appeals
    assert HOSTILE not in page  # escaped
    assert "not logged (decided before decisions named their policy)" in page
    listing = client.get("/console/decisions/1").text
    assert 'id="appeals"' not in listing  # another call's appeals are not shown


def test_an_appeal_of_a_reviewers_finding_logged_without_its_call_shows_on_that_listings_decisions(console) -> None:
    # Findings logged before they named their call carry no request id: their appeals are shown
    # on the listing's decisions, and never on another entity's with the same id.
    from policy.store import appeals_table, ledger_table

    client, engine, secrets = console
    at = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(decision_log_table.insert(), [
            {**_decision(70, "listing", listing_id="L70", title="t", category="beauty", price=1.0),
             "entity_id": "L70"},
            {**_decision(71, "stream", segments=[]), "entity_id": "L70"}])
        entry_id = conn.execute(ledger_table.insert().values(
            entity_type="merchant", entity_id="M8", at=at, points=4, balance=4, kind="charge",
            rule="merchants.listing_block_points (listing L70 confirmed inferior)", policy_version="p@1",
            status="final", listing_id="L70", request_id=None)).inserted_primary_key[0]
        conn.execute(appeals_table.insert().values(
            ledger_entry_id=entry_id, entity_type="merchant", entity_id="M8", appellant="shop", reason="r",
            filed_at=at, status="pending", note=""))
        ids = dict(conn.execute(select(decision_log_table.c.entity_type, decision_log_table.c.id).where(
            decision_log_table.c.request_id.in_(["req0070", "req0071"]))).all())
    assert _sign_in(client, secrets["reviewer"]) == 303
    assert "merchant M8" in client.get(f"/console/decisions/{ids['listing']}").text
    assert 'id="appeals"' not in client.get(f"/console/decisions/{ids['stream']}").text


def test_a_reviewer_who_filed_an_appeal_is_shown_why_and_cannot_decide_it(console) -> None:
    # Four eyes: a token with the feedback scope could once file an appeal and decide it itself.
    from policy.store import appeals_table

    client, engine, secrets = console
    appeal_id = _appealed_charge(engine, status="pending", note="", filed_by="rita")
    assert _sign_in(client, secrets["reviewer"]) == 303
    page = client.get(f"/console/appeals/{appeal_id}").text
    assert "filed by &#39;rita&#39;: another reviewer decides it (four eyes)" in page and 'value="overturned"' not in page
    answer = client.post(f"/console/appeals/{appeal_id}/decision",
                         data={"csrf": _csrf(client, f"/console/appeals/{appeal_id}"), "outcome": "overturned"})
    assert answer.status_code == 403 and "four eyes" in answer.text
    with engine.connect() as conn:
        assert conn.execute(select(appeals_table.c.status).where(appeals_table.c.id == appeal_id)).scalar_one() \
            == "pending"
    client.cookies.clear()
    assert _sign_in(client, secrets["feedback"]) == 303  # another reviewer
    assert 'value="overturned"' in client.get(f"/console/appeals/{appeal_id}").text


def test_a_feedback_only_reviewer_sees_what_an_appeal_is_about_while_it_is_pending(console) -> None:
    # Such a reviewer could decide an appeal without any way to see the sentence charged.
    client, engine, secrets = console
    with engine.begin() as conn:  # the call's segment at block: not in the review queue
        conn.execute(decision_log_table.update().where(decision_log_table.c.request_id == "req0061").values(
            decision="block", inputs={"segments": [{"text": "这是全网最低价", "start_ms": 0, "end_ms": 4000}],
                                      "segment_decisions": ["block"]}))
    own = _appealed_charge(engine, status="pending", note="", filed_by="fay")
    assert _sign_in(client, secrets["feedback"]) == 303
    page = client.get(f"/console/appeals/{own}").text  # filing an appeal opens nothing
    assert "这是全网最低价" in page and 'id="charged-decision"' not in page
    with engine.connect() as conn:
        decision_id = conn.execute(select(decision_log_table.c.id).where(
            decision_log_table.c.request_id == "req0061")).scalar_one()
    assert client.get(f"/console/decisions/{decision_id}").status_code == 403
    appeal_id = _appealed_charge(engine, status="pending", note="")  # filed by another: fay may decide it
    page = client.get(f"/console/appeals/{appeal_id}").text
    assert "这是全网最低价" in page[page.index('id="charged-text"'):]
    link = re.search(r'id="charged-decision" href="/console/decisions/(\d+)"', page)
    assert link is not None and link.group(1) == str(decision_id)
    assert client.get(f"/console/decisions/{decision_id}").status_code == 200
    answer = client.post(f"/console/appeals/{appeal_id}/decision",
                         data={"csrf": _csrf(client, f"/console/appeals/{appeal_id}"), "outcome": "upheld"},
                         follow_redirects=False)
    assert answer.status_code == 303
    assert client.get(f"/console/decisions/{link.group(1)}").status_code == 403  # decided: the queue's again
