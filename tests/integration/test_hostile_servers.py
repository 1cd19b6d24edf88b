"""Broken and hostile conditions that need a server of their own (issue 18): a damaged
decision journal at start, calls over their time budget, and slow clients holding
connections. Each runs a real ``bentoml serve`` over a copy of the trained home."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psutil
import pytest
from sqlalchemy import create_engine

from serving.decision_log import DecisionRecord
from serving.decision_queries import query_decisions
from serving.journal import QUARANTINE_FOLDER, journal_line
from tests.conftest import auth_headers
from tests.integration.server import api_post, running_server

pytestmark = pytest.mark.integration

LISTING = {"listing_id": "L-hs", "title": "加厚保温杯", "category": "home", "price": 59.0}
CLAIM = "这个产品吃了以后三天就能把高血压降下来 医院都不用去了 加微信私聊 "


@pytest.fixture()
def home(trained_home, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(trained_home, copy, ignore=shutil.ignore_patterns("server-*.log", "journal"))
    return copy


def _logged(home: Path, **filters) -> list[dict]:
    return query_decisions(create_engine(f"sqlite:///{home / 'shopguard.db'}"), **filters)


def _server_log(home: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in home.glob("server-*.log"))


def _workers(home: Path) -> list[psutil.Process]:
    server = next(p for p in psutil.process_iter(["cmdline", "environ"])
                  if "serving.service:ShopGuard" in " ".join(p.info["cmdline"] or [])
                  and (p.info["environ"] or {}).get("SHOPGUARD_HOME") == str(home))
    return [c for c in server.children(recursive=True) if "python" in c.name()]


def _seconds_until_idle(workers: list[psutil.Process], limit: float = 15.0) -> float:
    """Seconds until the workers use under 10% of a core over half a second."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = sum(sum(w.cpu_times()[:2]) for w in workers)
        time.sleep(0.5)
        if sum(sum(w.cpu_times()[:2]) for w in workers) - before < 0.05:
            return time.monotonic() - started
    return limit


def test_a_damaged_journal_is_quarantined_replayed_and_scoring_goes_on(home) -> None:
    journal = home / "journal"
    journal.mkdir()
    record = DecisionRecord("journal-probe", "listing", "L-journal-ok", "allow", 0.1, "listing-quality:v1", [],
                            {"title": "t"})
    line = journal_line(record.row(datetime.now(UTC)))
    (journal / "decisions-1-x.jsonl").write_bytes(line + line[:50])  # torn last line
    other = DecisionRecord("journal-probe", "listing", "L-journal-2", "allow", 0.1, "listing-quality:v1", [], {})
    (journal / "decisions-2-y.jsonl").write_bytes(b"\x00\xffgarbage\n" + journal_line(other.row(datetime.now(UTC))))
    (journal / "decisions-3-z.jsonl").write_bytes(b"")
    (journal / "decisions-4-dir.jsonl").mkdir()  # cannot be read as a file
    with running_server(home) as base:
        ready = httpx.get(f"{base}/readyz", timeout=30)
        started = time.monotonic()
        scored = api_post(f"{base}/v1/listings/score", json={"listings": [LISTING]}, timeout=30)
        took = time.monotonic() - started
    assert ready.status_code == 200 and ready.json()["decision_log"]["running"] is True
    assert scored.status_code == 200 and took < 5  # not the 10 s wait of a dead writer
    assert sorted(r["entity_id"] for r in _logged(home, request_id="journal-probe")) == ["L-journal-2",
                                                                                        "L-journal-ok"]
    assert not list(journal.glob("decisions-*.jsonl"))
    quarantined = [json.loads(line) for p in (journal / QUARANTINE_FOLDER).glob("*.jsonl")
                   for line in p.read_text().splitlines()]
    assert sorted((q["source"], q["line"]) for q in quarantined) == [("decisions-1-x.jsonl", 2),
                                                                     ("decisions-2-y.jsonl", 1)]
    assert list((journal / QUARANTINE_FOLDER).glob("decisions-4-dir.*.unreadable"))
    log = _server_log(home)
    assert "decisions-1-x.jsonl line 2: not JSON" in log and "decisions-2-y.jsonl line 1: not UTF-8" in log


def _heavy_stream(name: str) -> dict:
    text = (CLAIM * 60)[:1900]
    return {"stream_id": name, "segments": [{"text": text, "start_ms": i * 1000, "end_ms": i * 1000 + 900}
                                            for i in range(50)]}


def test_calls_over_their_time_budget_are_cancelled_not_abandoned(home) -> None:
    env = {"SHOPGUARD_REQUEST_BUDGET_SECONDS": "0.5", "SHOPGUARD_DEVICE": "cpu"}
    with running_server(home, extra_env=env) as base:
        workers = _workers(home)
        with ThreadPoolExecutor(8) as pool:
            calls = {f"S-budget-{i}": pool.submit(api_post, f"{base}/v1/streams/score", timeout=60,
                                                  json=_heavy_stream(f"S-budget-{i}")) for i in range(8)}
            answers = {name: future.result() for name, future in calls.items()}
        idle_after = _seconds_until_idle(workers)
        after = api_post(f"{base}/v1/listings/score", json={"listings": [LISTING]}, timeout=30)
    statuses = sorted(r.status_code for r in answers.values())
    assert set(statuses) <= {200, 503} and 503 in statuses, statuses
    for name, response in answers.items():
        logged = _logged(home, entity_id=name)
        if response.status_code == 503:
            body = response.json()
            assert body["fallback_decision"] == "review" and body["error"] == "time_budget_exceeded"
            assert response.headers["retry-after"]
            assert logged == [], f"{name} was answered 503 but its decision was logged"
        else:
            assert len(logged) == 1 and logged[0]["request_id"] == response.json()["request_id"]
    assert idle_after < 5, f"the worker was still busy {idle_after:.1f} s after the last answer"
    assert after.status_code == 200


class SlowClients:
    """Connections sending a valid scoring call's headers, then its body one byte at a time."""

    def __init__(self, base: str, count: int, interval: float = 1.0) -> None:
        url = urlparse(base)
        body = json.dumps({"listings": [LISTING]}).encode()
        token = auth_headers()["Authorization"]
        head = (f"POST /v1/listings/score HTTP/1.1\r\nHost: {url.hostname}\r\nAuthorization: {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.body, self.interval = body, interval
        self.sockets = [socket.create_connection((url.hostname, url.port), timeout=30) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(head)
        self.answers: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        for position in range(len(self.body)):
            if self._stop.wait(self.interval):
                return
            for index, sock in enumerate(self.sockets):
                if index not in self.answers:
                    try:
                        sock.sendall(self.body[position:position + 1])
                    except OSError:
                        self.answers[index] = b""

    def close(self) -> list[bytes]:
        """Stop sending; each connection's answer (read until the server closed it)."""
        self._stop.set()
        self._thread.join()
        answers = []
        for sock in self.sockets:
            sock.settimeout(10)
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except OSError:
                pass
            sock.close()
            answers.append(data)
        return answers


def _ordinary_calls(base: str, seconds: float) -> list[httpx.Response]:
    responses = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        responses.append(api_post(f"{base}/v1/listings/score", json={"listings": [LISTING]}, timeout=30))
        time.sleep(0.2)
    return responses


def test_slow_clients_are_cut_off_and_cannot_lock_others_out(home) -> None:
    """Slow bodies are cut at the body timeout, and a crowd of them holding every open slot
    cannot keep a whole call out."""
    env = {"SHOPGUARD_BODY_TIMEOUT_SECONDS": "3", "SHOPGUARD_MAX_OPEN_REQUESTS": "300", "SHOPGUARD_DEVICE": "cpu"}
    with running_server(home, extra_env=env) as base:
        slow = SlowClients(base, 256)
        during = _ordinary_calls(base, 4)
        cut_off = slow.close()
        crowd = SlowClients(base, 310)  # more than the open-call limit, every slot held by a slow body
        time.sleep(1.5)
        admitted = api_post(f"{base}/v1/listings/score", json={"listings": [LISTING]}, timeout=30)
        crowded_out = crowd.close()
        after = api_post(f"{base}/v1/listings/score", json={"listings": [LISTING]}, timeout=30)
        url = urlparse(base)
        for _ in range(20):  # sign-in forms cut mid-body: each answered (nobody reads it), none left waiting
            with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
                sock.sendall(b"POST /console/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
                             b"urlencoded\r\nContent-Length: 1000\r\n\r\ntoken=abc")
        time.sleep(1)
        stopping = time.monotonic()
    stopped_in = time.monotonic() - stopping  # running_server's SIGTERM, waited for up to 30 s
    assert [r.status_code for r in during] == [200] * len(during) and len(during) >= 5
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in cut_off), {a[:12] for a in cut_off}
    assert json.loads(cut_off[0].partition(b"\r\n\r\n")[2])["detail"][0]["loc"] == ["body"]
    # A whole call is let in by evicting the oldest body still arriving after a second (408);
    # the slow bodies over the limit were shed (503), none was answered.
    assert admitted.status_code == 200, admitted.text
    assert {answer[:12] for answer in crowded_out} <= {b"HTTP/1.1 408", b"HTTP/1.1 503"}
    assert after.status_code == 200
    assert stopped_in < 10, f"the server took {stopped_in:.0f} s to stop after cut-off sign-in forms"


def test_an_unreadable_database_at_start_is_one_line_not_ready_and_no_restart_loop(home) -> None:
    import os

    for suffix in ("-wal", "-shm"):
        (home / f"shopguard.db{suffix}").unlink(missing_ok=True)
    with (home / "shopguard.db").open("r+b") as handle:  # the header overwritten
        handle.write(os.urandom(100))

    def storage_down(response: httpx.Response) -> bool:
        return response.status_code == 503 and response.json().get("storage", {}).get("available") is False

    with running_server(home, started=storage_down) as base:
        time.sleep(3)  # a worker restarting in a loop would log again meanwhile
        ready = httpx.get(f"{base}/readyz", timeout=10)
        scored = api_post(f"{base}/v1/listings/score", json={"listings": [LISTING]}, timeout=30)
        console = httpx.get(f"{base}/console/signin", timeout=10)
    assert ready.status_code == 503 and ready.json()["storage"]["problem"].startswith("damaged database")
    assert scored.status_code == 503 and scored.json()["error"] == "storage_unavailable"
    assert scored.json()["fallback_decision"] == "review"
    assert console.status_code == 503
    log = _server_log(home)
    assert 1 <= log.count("cannot be opened: damaged database") <= 4  # once per worker start, not a loop
    assert "Traceback" not in log
    from tests.conftest import run_cli

    cli = run_cli("models", "list", home=home, check=False, process=True)
    said = (cli.stdout + cli.stderr).strip().splitlines()
    assert cli.returncode != 0 and len(said) <= 3 and "cannot be opened: damaged database" in " ".join(said)
