"""Listing scoring throughput and latency, in-process and over HTTP. Prints JSON.

Needs a production listing-quality model in ``SHOPGUARD_HOME`` (``make train-demo``).

    .venv/bin/python benchmarks/listing_throughput.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model_registry.registry import ModelRegistry  # noqa: E402
from model_registry.runtimes.listing import ListingQualityModel  # noqa: E402
from training.data.listings import ListingGenerationConfig, generate_listings  # noqa: E402

API_FIELDS = ["listing_id", "merchant_id", "title", "description", "category", "price", "list_price",
              "image_count", "sales", "rating", "review_count", "negative_review_rate",
              "return_rate", "complaint_rate"]


def api_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Generated listings as API request records."""
    frame = generate_listings(ListingGenerationConfig(n=n, seed=seed), progress=False)
    records = []
    for row in frame[API_FIELDS].to_dict(orient="records"):
        clean = {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}
        for key in ("image_count", "sales", "review_count"):
            if key in clean:
                clean[key] = int(clean[key])
        records.append(clean)
    return records


def in_process(records: list[dict[str, Any]], batch: int) -> dict[str, float]:
    """Feature building + model + reasons, as the service does, without HTTP."""
    model = ListingQualityModel.from_bundle(ModelRegistry().load("listing-quality:production"))
    columns_batches = []
    for start in range(0, len(records), batch):
        chunk = records[start:start + batch]
        columns_batches.append({f: [r.get(f) for r in chunk] for f in API_FIELDS})
    model.score(columns_batches[0])  # warm-up
    begin = time.perf_counter()
    for columns in columns_batches:
        model.score(columns)
    elapsed = time.perf_counter() - begin
    return {"listings_per_s": len(records) / elapsed, "batch_size": batch, "listings": len(records)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", "serving.service:ShopGuard",
         "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("server did not become ready")


def rss_mb(process: subprocess.Popen[bytes]) -> float:
    parent = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 2**20


def http_batches(url: str, records: list[dict[str, Any]], batch: int, clients: int,
                 seconds: float) -> dict[str, float]:
    """``clients`` threads posting batches of ``batch`` listings for ``seconds``."""
    done = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=60) as session:
            position = index * batch
            while time.monotonic() < stop:
                chunk = records[position % len(records):position % len(records) + batch]
                if len(chunk) < batch:
                    chunk = records[:batch]
                response = session.post(url, json={"listings": chunk})
                if response.status_code == 200:
                    done[index] += len(chunk)
                else:
                    errors[index] += 1
                position += batch * clients

    begin = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    return {"listings_per_s": sum(done) / elapsed, "batch_size": batch, "clients": clients,
            "errors": sum(errors)}


def single_latency(url: str, records: list[dict[str, Any]], requests: int) -> dict[str, float]:
    """Sequential one-listing requests: latency percentiles in ms."""
    timings = []
    with httpx.Client(timeout=30) as session:
        for i in range(requests + 20):
            begin = time.perf_counter()
            response = session.post(url, json={"listings": [records[i % len(records)]]})
            response.raise_for_status()
            if i >= 20:  # first requests warm up connections and caches
                timings.append((time.perf_counter() - begin) * 1000)
    return {"p50_ms": float(np.percentile(timings, 50)), "p99_ms": float(np.percentile(timings, 99)),
            "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--listings", type=int, default=5000)
    args = parser.parse_args()
    records = api_records(args.listings, seed=123)
    result: dict[str, Any] = {"benchmark": "listing_throughput", "cpu_count": os.cpu_count()}
    result["in_process"] = in_process(records, batch=1000)
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/v1/listings/score"
    try:
        result["http_batch"] = http_batches(url, records, batch=100, clients=4, seconds=args.seconds)
        result["http_single"] = single_latency(url, records, requests=500)
        result["server_rss_mb"] = rss_mb(server)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    result["http_over_in_process"] = (result["http_batch"]["listings_per_s"]
                                      / result["in_process"]["listings_per_s"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
