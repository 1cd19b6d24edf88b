"""The review queue worked all day by several reviewers (Starlette's test client over a real
SQLite home, the fixture of ``test_console.py``): Enter never gives a verdict, claims, one
item per listing, the flagged segment and the score that decided, the next item in the
reviewer's order with a confirmation, skip, a changed verdict reversing what the earlier one
caused, linked merchants, the budget per kind, and hostile values escaped throughout."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from serving.auth import TokenStore
from serving.console.claims import claims_table
from serving.decision_log import decision_log_table
from serving.feedback import FeedbackStore
from tests.unit.test_serving.test_console import HOSTILE, _decision, _sign_in
from tests.unit.test_serving.test_console import console as console  # noqa: PLC0414 - the shared fixture

PRICE_SPAN = {"start": 0, "end": 5, "text": "原价999", "category": "price_fraud", "source": "lexicon", "rule_id": "p-1"}


def _client() -> TestClient:
    from serving.console.app import console_app

    return TestClient(Starlette(routes=[Mount("/console", console_app)]), base_url="http://testserver")


def _second_reviewer(engine) -> TestClient:
    """Bob, a second reviewer (read and feedback) in his own browser."""
    client = _client()
    assert _sign_in(client, TokenStore(engine).create("bob", ("read", "feedback"), "test")) == 303
    return client


def _verdict_form(page: str) -> tuple[str, str]:
    """The verdict form's action and CSRF token."""
    action = re.search(r'<form method="post" action="([^"]+/verdict[^"]*)"', page).group(1).replace("&amp;", "&")
    return action, re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _insert(engine, *rows: dict) -> list[int]:
    with engine.begin() as conn:
        conn.execute(decision_log_table.insert(), list(rows))
        found = conn.execute(decision_log_table.select().with_only_columns(decision_log_table.c.id).where(
            decision_log_table.c.record_id.in_([r["record_id"] for r in rows])).order_by(decision_log_table.c.id))
        return [row_id for (row_id,) in found]


def _stream(i: int, entity_id: str, merchant_id: str | None = None) -> dict:
    """A stream call whose segment 0 is allowed with the highest score and segment 2 is at
    review for price_fraud (the reason names the segment, not its category)."""
    row = _decision(i, "stream", segments=[{"text": "欢迎宝宝们", "start_ms": 0, "end_ms": 4000},
                                           {"text": "今天天气好", "start_ms": 4000, "end_ms": 8000},
                                           {"text": "原价999今天只要99" + HOSTILE, "start_ms": 8000, "end_ms": 12000}],
                    segment_decisions=["allow", "allow", "review"], segment_scores=[0.91, 0.2, 0.63],
                    segment_labels=[[], [], ["price_fraud"]], segment_spans=[[], [], [PRICE_SPAN]],
                    merchant_id=merchant_id)
    return {**row, "entity_id": entity_id, "score": 0.91,
            "reasons": [{"code": "review_segment", "detail": "segment(s) [2] at review"}]}


def test_enter_in_the_note_cannot_give_a_verdict(console) -> None:
    client, engine, secrets = console
    _sign_in(client, secrets["reviewer"])
    page = client.get("/console/decisions/62").text
    form = page[page.index('class="verdict"'):]
    form = form[:form.index("</form>")]
    first_button = re.search(r"<button[^>]*>", form).group(0)  # the default button: what Enter "clicks"
    assert 'type="submit"' in first_button and 'name="verdict" value=""' in first_button
    assert '<textarea id="note" name="note"' in form and 'input id="note"' not in form
    action, csrf = _verdict_form(page)
    for pressed_enter in ({"verdict": ""}, {}):
        answer = client.post(action, data={"csrf": csrf, "note": "typed, then Enter", "categories-0": "absolute_claim",
                                           **pressed_enter}, follow_redirects=False)
        assert answer.status_code == 204 and answer.text == ""  # the browser stays on the page
    assert FeedbackStore(engine).rows() == []
    refused = client.post(action, data={"csrf": csrf, "verdict": "maybe"})
    assert refused.status_code == 400 and "<code>verdict</code>" in refused.text


def test_every_checkbox_sits_inside_its_label(console) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reviewer"])
    page = client.get("/console/decisions/62").text
    boxes = re.findall(r'<input type="checkbox" id="c-0-(\w+)"', page)
    assert len(boxes) == 8 and "fake_endorsement" in boxes
    for category in boxes:
        assert re.search(rf'<label class="check" for="c-0-{category}"><input type="checkbox" id="c-0-{category}"'
                         rf'[^>]*> {category}</label>', page), category


def test_a_listing_scored_many_times_is_one_item_and_one_verdict_clears_it(console) -> None:
    client, engine, secrets = console
    ids = _insert(engine, *[{**_decision(100 + n, "listing", title=f"again {n}", category="beauty", price=1.0),
                             "entity_id": HOSTILE} for n in range(9)],
                  _decision(120, "listing", title="was doubtful", category="beauty"),
                  {**_decision(121, "listing", "allow", title="now fine", category="beauty"), "entity_id": "L120"})
    _sign_in(client, secrets["reviewer"])
    queue = client.get("/console/queue?type=listing").text
    assert re.search(r'id="queue-count">62<', queue)  # 61 listings of the fixture + the 9 scorings of one
    assert re.findall(r'href="/console/decisions/(\d+)\?type=listing"', queue).count(str(ids[8])) == 1
    assert not {str(i) for i in ids[:8]} & set(re.findall(r'/console/decisions/(\d+)\?', queue))
    assert "scored 9×" in queue and "<script>window.x" not in queue
    assert f"/decisions/{ids[9]}?" not in queue  # its latest decision is an allow: nothing to review
    action, csrf = _verdict_form(client.get(f"/console/decisions/{ids[8]}").text)
    client.post(action, data={"csrf": csrf, "verdict": "violation"})
    assert re.search(r'id="queue-count">61<', client.get("/console/queue?type=listing").text)
    [row] = FeedbackStore(engine).rows("listing")
    assert (row["entity_id"], row["request_id"], row["label"]) == (HOSTILE, "req0108", "inferior")


def test_a_stream_item_shows_its_flagged_segment_category_and_deciding_score(console) -> None:
    client, engine, secrets = console
    [stream_id] = _insert(engine, _stream(130, "S-flagged"))
    _sign_in(client, secrets["reviewer"])
    queue = client.get("/console/queue?type=stream").text
    row = queue[queue.index(f"/decisions/{stream_id}?"):]
    row = row[:row.index("</tr>")]
    assert '<span class="seg-ref">segment 2</span> <span class="label">price_fraud</span> 原价999今天只要99' in row
    assert ">0.630<" in row and "0.910" in row  # the deciding score; the highest one in its note
    assert "&lt;script&gt;" in row and "<script>" not in row
    page = client.get(f"/console/decisions/{stream_id}").text
    assert re.search(r"<code>review_segment</code>.*segment 2: price_fraud", page)
    assert 'id="score">0.6300 <span class="hint">(segment 0, at allow, scored higher (0.910)' in page
    assert 'id="c-2-price_fraud" name="categories-2" value="price_fraud" checked' in page
    assert 'id="c-0-price_fraud" name="categories-0" value="price_fraud" >' in page  # not flagged: unchecked
    action, csrf = _verdict_form(page)
    client.post(action, data={"csrf": csrf, "verdict": "ok"})
    rows = FeedbackStore(engine).rows("stream")
    assert [(r["segment_index"], r["label"], r["request_id"]) for r in rows] == [(2, "ok", "req0130")]


def test_claims_show_who_holds_an_item_refuse_others_verdicts_and_expire(console) -> None:
    client, engine, secrets = console
    _sign_in(client, secrets["reviewer"])
    assert 'class="claim mine"' in client.get("/console/decisions/62").text  # rita opens it: hers
    bob = _second_reviewer(engine)
    queue = bob.get("/console/queue").text
    row = queue[queue.index("/decisions/62"):]
    assert re.search(r'taken by <b dir="auto">rita</b> until <time', row[:row.index("</tr>")])
    page = bob.get("/console/decisions/62").text
    assert re.search(r'Claimed: <b dir="auto">rita</b> opened this item and holds it until', page)
    assert 'id="verdict-ok"' not in page and 'id="skip"' in page  # read, not decide
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    refused = bob.post("/console/decisions/62/verdict", data={"csrf": csrf, "verdict": "ok"})
    assert refused.status_code == 409 and "<code>claim</code>" in refused.text and "rita holds this item" in refused.text
    assert FeedbackStore(engine).rows() == []
    following = bob.post("/console/decisions/1/skip", data={"csrf": csrf}, follow_redirects=False)
    assert following.headers["location"].startswith("/console/decisions/61?")  # from the top, past rita's item
    with engine.begin() as conn:  # ten minutes later
        conn.execute(update(claims_table).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert 'class="claim mine"' in bob.get("/console/decisions/62").text
    assert re.search(r'Claimed: <b dir="auto">bob</b>', client.get("/console/decisions/62").text)


def test_the_next_item_keeps_the_reviewers_filter_and_order_and_says_what_was_stored(console) -> None:
    client, engine, secrets = console
    [hostile_id] = _insert(engine, {**_decision(140, "listing", title="x", category="beauty"), "entity_id": HOSTILE,
                                    "score": 0.99})
    _sign_in(client, secrets["reviewer"])
    first = client.get("/console/queue?type=listing&order=score").text
    opened = re.search(r'href="(/console/decisions/\d+\?[^"]+)"', first).group(1).replace("&amp;", "&")
    assert opened == f"/console/decisions/{hostile_id}?type=listing&order=score"
    action, csrf = _verdict_form(client.get(opened).text)
    assert action.endswith("/verdict?type=listing&order=score")
    stored = client.post(action, data={"csrf": csrf, "verdict": "violation", "note": HOSTILE}, follow_redirects=False)
    location = stored.headers["location"]
    assert location.startswith("/console/decisions/61?type=listing&order=score&done=")  # the next by score
    page = client.get(location).text
    assert re.search(r'Stored: <b>inferior</b> on listing <span dir="auto" class="entity">&lt;script&gt;', page)
    assert "<script>window" not in page and "\u202e" not in page
    change = re.search(r'href="([^"]+)" id="change-verdict"', page).group(1).replace("&amp;", "&")
    assert change == f"/console/decisions/{hostile_id}?type=listing&order=score"
    assert "Your verdict: <b>inferior</b>" in client.get(change).text
    bob = _second_reviewer(engine)  # rita's verdict is not bob's to be told about
    assert 'id="flash"' not in bob.get(f"/console/queue?done={hostile_id}&stored=1-99").text


def test_skip_releases_the_claim_and_goes_on(console) -> None:
    client, engine, secrets = console
    _sign_in(client, secrets["reviewer"])
    page = client.get("/console/decisions/62?type=stream").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    skipped = client.post("/console/decisions/62/skip?type=stream", data={"csrf": csrf}, follow_redirects=False)
    assert skipped.headers["location"] == "/console/queue?type=stream&skipped=62"  # nothing else in that filter
    assert "Skipped stream" in client.get(skipped.headers["location"]).text
    with engine.connect() as conn:
        assert conn.execute(claims_table.select()).first() is None
    assert client.post("/console/decisions/62/skip", data={"csrf": "forged"}).status_code == 403


def test_a_changed_verdict_reverses_what_the_earlier_one_caused(console) -> None:
    from policy.state import ChunkScored, FlaggedInput
    from serving.console.state import state

    client, engine, secrets = console
    [decision_id] = _insert(engine, _stream(150, "room-u", merchant_id="m-u"))
    state().enforcement.record_chunk(ChunkScored(datetime.now(UTC), "room-u", "req0150", 3, (
        FlaggedInput(2, "review", ("price_fraud",)),), merchant_id="m-u"), "sha")
    _sign_in(client, secrets["reviewer"])

    def give(**form: str) -> str:
        action, csrf = _verdict_form(client.get(f"/console/decisions/{decision_id}").text)
        return client.get(client.post(action, data={"csrf": csrf, **form}, follow_redirects=False)
                          .headers["location"]).text

    def standing() -> list[str]:
        ledger = state().enforcement.merchant_state("m-u")["ledger"]
        reversed_ids = {e["refers_to"] for e in ledger if e["kind"] == "reversal"}
        return sorted(e["category"] for e in ledger if e["kind"] == "charge" and e["id"] not in reversed_ids)

    assert "Stored: <b>violation: segment 2 price_fraud</b>" in give(verdict="violation", **{"categories-2": "price_fraud"})
    assert standing() == ["price_fraud"]
    page = give(verdict="violation", **{"categories-2": "counterfeit"})  # changed: price_fraud withdrawn
    assert "Stored: <b>violation: segment 2 counterfeit</b>" in page
    assert standing() == ["counterfeit"]
    give(verdict="ok")
    assert standing() == [] and state().enforcement.merchant_state("m-u")["points"] == 0
    labels = [(r["segment_index"], r["label"]) for r in FeedbackStore(engine).rows("stream")]
    assert labels == [(2, "price_fraud"), (2, "ok"), (2, "counterfeit"), (2, "ok")]
    page = client.get(f"/console/decisions/{decision_id}").text
    assert page.count("changed by a later verdict of rita") == 3 and "contradicts" not in page


def test_a_merchant_reason_citing_linked_merchants_lists_them(console, monkeypatch) -> None:
    from serving.console.state import state

    client, engine, secrets = console
    reason = {"code": "linked_to_flagged_merchants", "detail": "100% of linked merchants with known labels are flagged"}
    [lonely, ringed] = _insert(
        engine, {**_decision(160, "merchant", merchant_id="M160", links=[]), "reasons": [reason]},
        {**_decision(161, "merchant", merchant_id="M161", links=[{"merchant_id": HOSTILE, "link_type": "ip"}]),
         "reasons": [reason]})
    _sign_in(client, secrets["reviewer"])
    page = client.get(f"/console/decisions/{lonely}").text
    assert 'id="linked-merchants"' in page and 'id="no-links"' in page  # no bundle to read here: said so
    monkeypatch.setattr(state(), "linked_merchants", lambda tag, ids: [
        {"merchant_id": "<b>M9</b>", "link_type": "shared_payout_account", "known": 1}] if "M161" in ids else [])
    page = client.get(f"/console/decisions/{ringed}").text
    table = page[page.index('id="linked"'):page.index("</table>", page.index('id="linked"'))]
    assert "&lt;script&gt;window.x=1" in table and "this request" in table
    assert "&lt;b&gt;M9&lt;/b&gt;" in table and "reference graph" in table and "<td>flagged</td>" in table


def test_the_budget_line_gives_each_kind_its_true_share(console, monkeypatch) -> None:
    from serving.console.state import state

    client, _, secrets = console
    _sign_in(client, secrets["reviewer"])
    unknown = client.get("/console/queue").text  # no model registered: no budget claimed
    assert "at most 5%" not in unknown and "no readable production version" in unknown
    monkeypatch.setattr(state(), "review_budgets", lambda: {
        "listing": {"model": "listing-quality:v1", "budget": 0.05}, "stream": {"model": None, "budget": None},
        "merchant": {"model": "merchant-risk:v1", "budget": None}})
    page = client.get("/console/queue").text
    listing = re.search(r'<li data-type="listing" class="over">(.*?)</li>', page, re.S).group(1)
    assert "61 of 61" in listing and "100.0%" in listing and "at most 5%" in listing and "above that budget" in listing
    merchant = re.search(r'<li data-type="merchant" class="">(.*?)</li>', page, re.S).group(1)
    assert "0 of 1" in merchant and "0.0%" in merchant and "trained without a review budget" in merchant


@pytest.mark.parametrize("path", ["/console/queue?stored=1-2;x", "/console/decisions/62?skipped=-1",
                                  "/console/decisions/62?order=random"])
def test_bad_queue_parameters_on_an_item_are_400(console, path) -> None:
    client, _, secrets = console
    _sign_in(client, secrets["reviewer"])
    assert client.get(path).status_code == 400
