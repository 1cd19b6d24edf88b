"""false-marketing throughput: PyTorch eager vs ONNX fp32 vs ONNX int8 in-process, and the
stream endpoint over HTTP. Prints JSON.

- in-process: segments of ~40 characters, batches of 32, segments/s for each runtime;
  agreement of int8 with PyTorch (max |diff|) and per-category F1 change at the review
  thresholds on freshly generated labelled segments;
- HTTP: streams of 50 segments from 4 concurrent clients (segments/s), latency p50 / p99
  of a stream of 10 segments, server RSS;
- HTTP, many small calls: 16 concurrent clients each sending 10-segment streams, with the
  service batching concurrent calls (``serving/microbatch.py``) and without
  (``SHOPGUARD_STREAM_BATCH_SEGMENTS=1``): segments/s and the p50 / p99 each costs;
- ``--enforcement``: the same 16 clients on 2 workers, stateless (``SHOPGUARD_ENFORCEMENT=off``)
  and stateful (each call a numbered chunk of a live room with its host: rooms, credit and
  points committed before each answer), in one run: segments/s of each and their ratio.

Needs a production false-marketing model in ``SHOPGUARD_HOME`` (``make train-demo``).

    .venv/bin/python benchmarks/stream_throughput.py [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.load import (
    concurrent_load,
    rss_mb,
    sequential_latency,
    served,
    worker_cpu_seconds,
)
from features.marketing import MARKETING_CATEGORIES
from features.text import normalize_text
from kinds.false_marketing.encoder import OnnxEncoder
from kinds.false_marketing.generator import TranscriptGenerationConfig, generate_transcripts
from kinds.false_marketing.runtime import (
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    TOKENIZER_FILE,
)
from registry.store import ModelRegistry
from training.classification_metrics import binary_metrics
from training.text_encoder import load_base_model, predict_torch

ROOT = Path(__file__).resolve().parent.parent

BATCH = 32


def segments_of_about_40_chars(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Generated segments joined pairwise to about 40 characters, with their labels."""
    frame = generate_transcripts(TranscriptGenerationConfig(n=2 * n, seed=seed), progress=False)
    texts, labels = [], []
    for first, second in zip(frame.iloc[::2].itertuples(), frame.iloc[1::2].itertuples(), strict=False):
        texts.append((first.text + second.text)[:48])
        cats = set(filter(None, first.labels.split("|"))) | set(filter(None, second.labels.split("|")))
        labels.append([c in cats for c in MARKETING_CATEGORIES])
    return texts[:n], np.array(labels[:n], dtype=int)


def rate(predict: Any, texts: list[str]) -> tuple[float, np.ndarray]:
    predict(texts[:BATCH])  # warm-up
    begin = time.perf_counter()
    outputs = [predict(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)]
    return len(texts) / (time.perf_counter() - begin), np.vstack(outputs)


def in_process(bundle_path: Path, thresholds: dict, n: int) -> dict[str, Any]:
    import torch

    texts, labels = segments_of_about_40_chars(n, seed=21)
    normalized = [normalize_text(t).text for t in texts]
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer, model = load_base_model(bundle_path, len(MARKETING_CATEGORIES))
    model.eval()
    eager_rate, eager = rate(lambda batch: predict_torch(model, tokenizer, batch, batch_size=BATCH), normalized)
    fp32_rate, fp32 = rate(OnnxEncoder(bundle_path / ONNX_FP32_FILE, bundle_path / TOKENIZER_FILE).predict, normalized)
    int8_rate, int8 = rate(OnnxEncoder(bundle_path / ONNX_INT8_FILE, bundle_path / TOKENIZER_FILE).predict, normalized)
    f1_change = {}
    for j, category in enumerate(MARKETING_CATEGORIES):
        if labels[:, j].any() and category in thresholds:
            before = binary_metrics(labels[:, j], eager[:, j], thresholds[category]).review.f1
            after = binary_metrics(labels[:, j], int8[:, j], thresholds[category]).review.f1
            f1_change[category] = after - before
    return {
        "segments": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])), "batch_size": BATCH,
        "pytorch_eager_segments_per_s": eager_rate, "onnx_fp32_segments_per_s": fp32_rate,
        "onnx_int8_segments_per_s": int8_rate, "int8_speedup_over_eager": int8_rate / eager_rate,
        "max_abs_diff_int8_vs_eager": float(np.abs(int8 - eager).max()),
        "max_abs_diff_fp32_vs_eager": float(np.abs(fp32 - eager).max()),
        "f1_change_int8_vs_eager_at_review_threshold": f1_change,
        "max_abs_f1_change": max((abs(v) for v in f1_change.values()), default=0.0),
    }


def stream_body(texts: list[str], start: int, size: int, stream: int) -> dict[str, Any]:
    chosen = [texts[(start + k) % len(texts)] for k in range(size)]
    return {"stream_id": f"bench-{stream}", "segments": [
        {"text": t, "start_ms": k * 4000, "end_ms": (k + 1) * 4000} for k, t in enumerate(chosen)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--segments", type=int, default=2048)
    parser.add_argument("--small-calls-only", action="store_true", help="only the 16 x 10-segment scenario")
    parser.add_argument("--enforcement", action="store_true", help="only stateless vs stateful, 2 workers")
    parser.add_argument("--clients", type=int, default=SMALL_CALL_CLIENTS, help="--enforcement: concurrent clients")
    args = parser.parse_args()
    texts, _ = segments_of_about_40_chars(1000, seed=22)
    if args.enforcement:
        print(json.dumps({"benchmark": "stream_throughput",
                          "enforcement": enforcement_cost(texts, args.seconds, clients=args.clients)}, indent=2))
        return
    if args.small_calls_only:
        print(json.dumps({"benchmark": "stream_throughput", "http_16_clients_10_segments":
                          small_calls(texts, args.seconds)}, indent=2))
        return
    bundle = ModelRegistry().load("false-marketing:production")
    thresholds = {c: t for c, t in bundle.manifest.thresholds.items() if c in MARKETING_CATEGORIES}
    result: dict[str, Any] = {"benchmark": "stream_throughput", "model": bundle.tag,
                              "in_process": in_process(bundle.path, thresholds, args.segments)}
    with served() as (base, process):
        url = f"{base}/v1/streams/score"
        load = concurrent_load(url, lambda c, n: (stream_body(texts, (c + 4 * n) * 50, 50, c), 50),
                               clients=4, seconds=args.seconds)
        result["http_streams"] = {"segments_per_s": load["items_per_s"], "segments_per_stream": 50,
                                  "clients": 4, "errors": load["errors"]}
        result["http_stream_of_10"] = {**sequential_latency(
            url, lambda n: stream_body(texts, n * 10, 10, n), requests=200, warmup=10),
            "segments_per_stream": 10}
        result["server_rss_mb"] = rss_mb(process)
    result["http_16_clients_10_segments"] = small_calls(texts, args.seconds)
    print(json.dumps(result, indent=2))


SMALL_CALL_CLIENTS = 16


def small_calls(texts: list[str], seconds: float) -> dict[str, Any]:
    """16 clients each sending 10-segment streams, with and without batching across calls
    (each client has one call in flight, so the in-flight limit is raised to let all in), on
    one worker process and on two (``shopguard serve --workers 2``: one per core, as the
    Python side of scoring holds one core per process)."""
    figures: dict[str, Any] = {}
    for workers in (1, 2):
        for name, segments in (("batched", "256"), ("one_call_at_a_time", "1")):
            env = {"SHOPGUARD_STREAM_BATCH_SEGMENTS": segments, "SHOPGUARD_MAX_IN_FLIGHT": str(SMALL_CALL_CLIENTS),
                   "SHOPGUARD_WORKERS": str(workers)}
            with served(extra_env=env) as (base, process):
                before = worker_cpu_seconds(process)
                load = concurrent_load(f"{base}/v1/streams/score",
                                       lambda c, n: (stream_body(texts, (c * 37 + n * 10) % 1000, 10, c), 10),
                                       clients=SMALL_CALL_CLIENTS, seconds=seconds)
                cpu = [round(b - a, 1) for a, b in zip(before, worker_cpu_seconds(process), strict=True)]
            figures[f"{workers}_worker_{name}"] = {
                "segments_per_s": load["items_per_s"], "p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"],
                "errors": load["errors"], "cpu_seconds_per_worker": cpu}
        figures[f"{workers}_worker_speedup"] = (figures[f"{workers}_worker_batched"]["segments_per_s"]
                                                / figures[f"{workers}_worker_one_call_at_a_time"]["segments_per_s"])
    figures["clients"], figures["segments_per_stream"] = SMALL_CALL_CLIENTS, 10
    return figures


def enforcement_cost(texts: list[str], seconds: float, workers: int = 2, clients: int = SMALL_CALL_CLIENTS
                     ) -> dict[str, Any]:
    """The 16 x 10-segment load on ``workers`` workers without enforcement and with every call a
    chunk of a live room (the clients' rooms, one host each, chunk numbers counting up)."""
    import uuid

    run = uuid.uuid4().hex[:6]
    figures: dict[str, Any] = {}
    for name, enforcement in (("stateless", "off"), ("stateful", "on")):
        env = {"SHOPGUARD_MAX_IN_FLIGHT": str(clients), "SHOPGUARD_WORKERS": str(workers),
               "SHOPGUARD_ENFORCEMENT": enforcement}

        def body(client: int, number: int, stateful: bool = enforcement == "on") -> tuple[dict[str, Any], int]:
            payload = stream_body(texts, (client * 37 + number * 10) % 1000, 10, client)
            payload["stream_id"] = f"bench-{run}-{client}"
            if stateful:
                payload |= {"chunk": number, "creator_id": f"bench-host-{run}-{client}"}
            return payload, 10

        with served(extra_env=env) as (base, _process):
            load = concurrent_load(f"{base}/v1/streams/score", body, clients=clients, seconds=seconds)
        figures[name] = {"segments_per_s": load["items_per_s"], "p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"],
                         "errors": load["errors"]}
    figures["stateful_share_of_stateless"] = round(figures["stateful"]["segments_per_s"]
                                                   / figures["stateless"]["segments_per_s"], 3)
    figures |= {"clients": clients, "segments_per_stream": 10, "workers": workers}
    return figures


if __name__ == "__main__":
    main()
