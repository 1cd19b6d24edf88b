"""Shared pieces of the HTTP benchmarks: start ``bentoml serve``, drive it with concurrent
clients for a fixed time, time sequential requests, read the server's memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
Body = tuple[dict[str, Any], int]  # JSON payload, items in it


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(timeout: float = 180.0, extra_env: dict[str, str] | None = None, log: Path | None = None
           ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the service on a free loopback port; yield its base URL and process (its output
    goes to ``log`` when given)."""
    port = free_port()
    from common.settings import load_settings

    settings = load_settings()  # as `shopguard serve` does: BentoML's store is the home's
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", "SHOPGUARD_HOME": str(settings.home),
           "BENTOML_HOME": str(settings.bentoml_home), **(extra_env or {})}
    AUTH_HEADERS["Authorization"] = f"Bearer {benchmark_token()}"
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", "serving.service:ShopGuard",
         "--port", str(port), "--host", "127.0.0.1"], cwd=ROOT, env=env,
        stdout=output, stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the service did not become ready")
            time.sleep(0.5)
        wait_until_workers_idle(process, deadline)
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        if log is not None:
            output.close()


def wait_until_workers_idle(process: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until no worker process is busy: /readyz answers as soon as one worker has loaded
    its models, and a load started then lands every connection on that worker."""
    workers = psutil.Process(process.pid).children(recursive=True)
    while time.monotonic() < deadline:
        for worker in workers:
            worker.cpu_percent(None)
        time.sleep(1.0)
        if all(worker.cpu_percent(None) < 20 for worker in workers):
            return


AUTH_HEADERS: dict[str, str] = {}


def benchmark_token() -> str:
    """A fresh token (scopes score, read) in the benchmarked home's database."""
    import secrets

    from common.settings import load_settings
    from database.engine import make_engine
    from serving.auth import TokenStore

    store = TokenStore(make_engine(load_settings().database_url))
    return store.create(f"benchmark-{secrets.token_hex(4)}", ("score", "read"), "benchmarks")


def rss_mb(process: subprocess.Popen[bytes]) -> float:
    """Resident memory of a process and its children, in MiB."""
    parent = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 2**20


def worker_cpu_seconds(process: subprocess.Popen[bytes]) -> list[float]:
    """CPU seconds so far of each worker process under the server (how evenly the load was
    spread over ``--workers``)."""
    children = psutil.Process(process.pid).children(recursive=True)
    return [round(sum(child.cpu_times()[:2]), 1) for child in children]


def concurrent_load(url: str, body_for: Callable[[int, int], Body], clients: int,
                    seconds: float) -> dict[str, float]:
    """``clients`` threads posting ``body_for(client, request_number)`` for ``seconds``;
    items per second over all clients and the latency percentiles of the answered calls."""
    items, errors = [0] * clients, [0] * clients
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=120, headers=AUTH_HEADERS) as session:
            number = 0
            while time.monotonic() < stop:
                payload, count = body_for(index, number)
                sent = time.perf_counter()
                response = session.post(url, json=payload)
                if response.status_code == 200:
                    items[index] += count
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    errors[index] += 1
                number += 1

    begin = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    percentiles = np.percentile(latencies, [50, 99]) if latencies else [float("nan")] * 2
    return {"items_per_s": sum(items) / (time.perf_counter() - begin), "clients": clients,
            "errors": sum(errors), "p50_ms": float(percentiles[0]), "p99_ms": float(percentiles[1])}


def sequential_latency(url: str, body_for: Callable[[int], dict[str, Any]], requests: int,
                       warmup: int = 20) -> dict[str, float]:
    """p50 / p99 latency in ms of sequential requests (after ``warmup`` untimed ones)."""
    timings = []
    with httpx.Client(timeout=60, headers=AUTH_HEADERS) as session:
        for number in range(requests + warmup):
            begin = time.perf_counter()
            session.post(url, json=body_for(number)).raise_for_status()
            if number >= warmup:
                timings.append((time.perf_counter() - begin) * 1000)
    return {"p50_ms": float(np.percentile(timings, 50)), "p99_ms": float(np.percentile(timings, 99)),
            "requests": requests}
