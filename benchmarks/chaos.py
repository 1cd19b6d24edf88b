"""Faults under load, counted: for each fault, the requests sent, their status classes, the
decisions answered to clients, the decisions in the log, and the answered decisions missing
from it (must be 0). Prints JSON.

Faults: SIGTERM of the server under load; SIGKILL of the worker under load; a 20 s exclusive
lock held by another process; ``shopguard audit decisions --out`` exports running beside the
service; overload (300 clients sending 100-listing batches). Each runs on a copy of the
home, so the demo's own database is untouched.

Needs production models in ``SHOPGUARD_HOME`` (``make train-demo``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load import AUTH_HEADERS, served  # noqa: E402
from serving.decision_log import iter_decisions  # noqa: E402

LISTING = {"title": "加厚保温杯 双层真空 大容量", "category": "home", "price": 59.0, "image_count": 4}


class Load:
    """Clients posting listing batches until stopped; counts statuses and answered ids."""

    def __init__(self, url: str, clients: int, batch: int, timeout: float = 60) -> None:
        self.url, self.batch, self.timeout = url, batch, timeout
        self.prefix = f"chaos-{uuid.uuid4().hex[:8]}-"  # this load's ids, apart from the home's older rows
        self.statuses: Counter[str] = Counter()
        self.answered: set[str] = set()
        self.latencies: list[float] = []
        self._stop, self._lock = threading.Event(), threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _client(self, index: int) -> None:
        with httpx.Client(timeout=self.timeout, headers=AUTH_HEADERS) as session:
            k = 0
            while not self._stop.is_set():
                ids = [f"{self.prefix}{index}-{k}-{j}" for j in range(self.batch)]
                k += 1
                started = time.monotonic()
                try:
                    response = session.post(self.url, json={"listings": [{**LISTING, "listing_id": i} for i in ids]})
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.statuses[type(exc).__name__] += 1
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.statuses[f"{response.status_code // 100}xx" if response.status_code != 503 else "503"] += 1
                    self.latencies.append(time.monotonic() - started)
                    if response.status_code == 200:
                        self.answered.update(r["listing_id"] for r in response.json()["results"])

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)


def logged_ids(home: Path, prefix: str) -> list[str]:
    """The listing ids of one load in the decision log (read in chunks)."""
    engine = create_engine(f"sqlite:///{home / 'shopguard.db'}")
    return [r["entity_id"] for chunk in iter_decisions(engine) for r in chunk if r["entity_id"].startswith(prefix)]


def report(load: Load, home: Path, seconds: float, **extra: Any) -> dict[str, Any]:
    """The fault's counts."""
    logged = logged_ids(home, load.prefix)
    return {"requests": sum(load.statuses.values()), "statuses": dict(load.statuses),
            "answered_decisions": len(load.answered), "logged_decisions": len(logged),
            "lost_decisions": len(load.answered - set(logged)), "duplicated_decisions": len(logged) - len(set(logged)),
            "seconds": round(seconds, 1), **extra}


@contextmanager
def home_copy(source: Path) -> Iterator[Path]:
    """A copy of the home (database, journal-free) pointed at by the environment."""
    with tempfile.TemporaryDirectory(prefix="shopguard-chaos-") as tmp:
        home = Path(tmp) / "home"
        shutil.copytree(source, home, ignore=shutil.ignore_patterns("journal", "*.log", "demo.token"))
        previous = {k: os.environ.get(k) for k in ("SHOPGUARD_HOME", "BENTOML_HOME")}
        os.environ["SHOPGUARD_HOME"] = str(home)
        os.environ["BENTOML_HOME"] = str(home / "bentoml") if (home / "bentoml").is_dir() else previous[
            "BENTOML_HOME"] or str(source / "bentoml")
        try:
            yield home
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.2)


def fault_sigterm(source: Path, seconds: float) -> dict[str, Any]:
    with home_copy(source) as home:
        started = time.monotonic()
        with served() as (base, _), Load(f"{base}/v1/listings/score", 4, 20) as load:
            time.sleep(seconds)  # leaving the blocks: SIGTERM while the clients still send
        return report(load, home, time.monotonic() - started)


def fault_sigkill_worker(source: Path, seconds: float) -> dict[str, Any]:
    with home_copy(source) as home:
        started = time.monotonic()
        with served() as (base, process), Load(f"{base}/v1/listings/score", 4, 20) as load:
            time.sleep(seconds / 2)
            workers = [p for p in psutil.Process(process.pid).children(recursive=True) if "python" in p.name()]
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
            time.sleep(seconds / 2)
        return report(load, home, time.monotonic() - started, killed_workers=len(workers))


def fault_lock(source: Path, seconds: float, lock_seconds: float = 20.0) -> dict[str, Any]:
    with home_copy(source) as home:
        started = time.monotonic()
        with served() as (base, _), Load(f"{base}/v1/listings/score", 4, 20) as load:
            time.sleep(seconds / 4)
            holder = sqlite3.connect(home / "shopguard.db", timeout=30)
            holder.execute("BEGIN EXCLUSIVE")
            time.sleep(lock_seconds)
            holder.rollback()
            holder.close()
            wait_for(lambda: not list((home / "journal").glob("decisions-*.jsonl")), 30)
        journal_left = len(list((home / "journal").glob("decisions-*.jsonl")))
        return report(load, home, time.monotonic() - started, lock_seconds=lock_seconds,
                      journal_files_left=journal_left)


def fault_audit_exports(source: Path, seconds: float) -> dict[str, Any]:
    with home_copy(source) as home:
        started, exports = time.monotonic(), 0
        with served() as (base, _), Load(f"{base}/v1/listings/score", 4, 20) as load:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                subprocess.run([str(Path(sys.executable).parent / "shopguard"), "audit", "decisions", "--limit", "3",
                                "--out", str(home / "export.parquet")], capture_output=True, check=True,
                               env=os.environ.copy())
                exports += 1
        return report(load, home, time.monotonic() - started, exports=exports)


def fault_overload(source: Path, seconds: float, clients: int = 300) -> dict[str, Any]:
    with home_copy(source) as home:
        started = time.monotonic()
        with served() as (base, process), Load(f"{base}/v1/listings/score", clients, 100, timeout=90) as load:
            time.sleep(seconds)
            rss = sum(p.memory_info().rss for p in [psutil.Process(process.pid),
                                                   *psutil.Process(process.pid).children(recursive=True)]) / 2**20
        latencies = sorted(load.latencies)
        p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else None
        return report(load, home, time.monotonic() - started, clients=clients, server_rss_mb=round(rss),
                      p99_latency_s=p99)


FAULTS = {"sigterm": fault_sigterm, "sigkill_worker": fault_sigkill_worker, "lock_20s": fault_lock,
          "audit_exports": fault_audit_exports, "overload_300_clients": fault_overload}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="load duration per fault")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated subset of {list(FAULTS)}")
    args = parser.parse_args()
    source = Path(os.environ.get("SHOPGUARD_HOME", ".shopguard")).resolve()
    results = {name: FAULTS[name](source, args.seconds) for name in args.faults.split(",")}
    print(json.dumps({"faults": results, "total_lost_decisions": sum(r["lost_decisions"] for r in results.values())},
                     indent=2))


if __name__ == "__main__":
    main()
