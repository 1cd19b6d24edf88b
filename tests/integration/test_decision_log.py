"""The decision log on real servers: records are findable by request id and none is lost
when the server is stopped with SIGTERM under load."""

from __future__ import annotations

import shutil
import threading

import httpx
import pytest
from sqlalchemy import create_engine

from serving.decision_log import query_decisions
from tests.conftest import run_cli
from tests.integration.server import running_server

pytestmark = pytest.mark.integration

LISTING = {"listing_id": "L-log", "merchant_id": "M-log", "title": "加厚保温杯", "category": "home",
           "price": 59.0, "image_count": 4}


def test_a_response_request_id_finds_its_records(server, trained_home, tmp_path) -> None:
    listings = [{**LISTING, "listing_id": f"L-log-{i}"} for i in range(3)]
    body = httpx.post(f"{server}/v1/listings/score", json={"listings": listings}, timeout=30).json()
    export = tmp_path / "audit.csv"
    for _ in range(20):  # the writer flushes within a fraction of a second
        printed = run_cli("audit", "decisions", "--request-id", body["request_id"], "--out", str(export),
                          home=trained_home).stdout
        if "3 decision(s)" in printed:
            break
    assert "3 decision(s)" in printed
    import pandas as pd

    frame = pd.read_csv(export)
    assert sorted(frame["entity_id"]) == ["L-log-0", "L-log-1", "L-log-2"]
    assert set(frame["decision"]) <= {"allow", "review", "block"}
    assert frame["model"].str.startswith("listing-quality:v").all()
    assert "L-log-0" in frame["inputs"].iloc[0] or "L-log" in " ".join(frame["inputs"])


def test_sigterm_under_load_loses_no_accepted_record(trained_home, tmp_path) -> None:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    per_request, requests, clients = 20, 60, 4
    accepted: list[str] = []
    lock = threading.Lock()
    # Nothing is written during the run: only the shutdown flush can save the records.
    with running_server(home, extra_env={"SHOPGUARD_DECISION_LOG_FLUSH_SECONDS": "3600"}) as base:
        def client(index: int) -> None:
            with httpx.Client(timeout=60) as session:
                for k in range(index, requests, clients):
                    batch = [{**LISTING, "listing_id": f"L-{k}-{j}"} for j in range(per_request)]
                    response = session.post(f"{base}/v1/listings/score", json={"listings": batch})
                    assert response.status_code == 200
                    with lock:
                        accepted.append(response.json()["request_id"])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine = create_engine(f"sqlite:///{home / 'shopguard.db'}")
        written_before_stop = len(query_decisions(engine))
        # leaving the block sends SIGTERM right after the last response
    assert len(accepted) == requests
    assert written_before_stop < requests * per_request  # the records were still queued
    rows = query_decisions(engine)
    logged = {r["request_id"] for r in rows}
    assert set(accepted) <= logged
    assert sum(1 for r in rows if r["request_id"] in set(accepted)) == requests * per_request
