"""Listing scoring throughput and latency, in-process and over HTTP. Prints JSON.

Needs a production listing-quality model in ``SHOPGUARD_HOME`` (``make train-demo``).

    .venv/bin/python benchmarks/listing_throughput.py [--seconds 15] [--decision-log-overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.load import concurrent_load, rss_mb, sequential_latency, served
from kinds.listing_quality.generator import (
    ListingGenerationConfig,
    generate_listings,
    to_api_records,
)
from kinds.listing_quality.record import ListingRecord
from kinds.listing_quality.runtime import ListingQualityModel
from registry.store import ModelRegistry

ROOT = Path(__file__).resolve().parent.parent


def in_process(records: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    """Feature building + model + reasons for review / block results (as the service does),
    without HTTP, from the three input shapes: API records (pydantic, the service), plain dicts
    and a table (batch jobs)."""
    import pandas as pd

    model = ListingQualityModel.from_bundle(ModelRegistry().load("listing-quality:production"))
    shapes = {"pydantic_records": [ListingRecord.model_validate(r) for r in records], "dicts": records,
              "table": pd.DataFrame(records)}
    model.score(records[:batch])  # warm-up (builds the normalization patterns once)
    figures: dict[str, Any] = {"batch_size": batch, "listings": len(records)}
    for name, data in shapes.items():
        begin = time.perf_counter()
        for start in range(0, len(records), batch):
            model.score(data[start:start + batch])
        figures[f"{name}_per_s"] = len(records) / (time.perf_counter() - begin)
    figures["listings_per_s"] = figures["pydantic_records_per_s"]
    figures["reasons"] = reason_agreement(model, records)
    return figures


def reason_agreement(model: ListingQualityModel, records: list[dict[str, Any]]) -> dict[str, float]:
    """How often the served reasons (decision-path attribution) name the same top features as
    TreeSHAP, on the listings sent to review or block."""
    import numpy as np

    from kinds.listing_quality.features import build_listing_features
    from kinds.listing_quality.record import LISTING_FIELDS
    from kinds.runtime import as_columns

    matrix = build_listing_features(as_columns(records, LISTING_FIELDS), model.state).matrix
    flagged = matrix[model.predict_matrix(matrix) >= model.thresholds.review]
    path = model.attribution.contributions(model.booster, flagged)[:, :-1]
    begin = time.perf_counter()
    shap = np.asarray(model.booster.predict(flagged, pred_contrib=True))[:, :-1]
    shap_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    model.attribution.contributions(model.booster, flagged)
    path_seconds = time.perf_counter() - begin
    top_path, top_shap = np.argsort(-path, axis=1)[:, :3], np.argsort(-shap, axis=1)[:, :3]
    return {"flagged_rows": len(flagged),
            "top1_same_as_treeshap": float((top_path[:, 0] == top_shap[:, 0]).mean()),
            "top3_overlap_with_treeshap": float(np.mean([len(set(a) & set(b)) / 3
                                                         for a, b in zip(top_path, top_shap, strict=True)])),
            "treeshap_us_per_row": shap_seconds / max(len(flagged), 1) * 1e6,
            "path_us_per_row": path_seconds / max(len(flagged), 1) * 1e6}


def http_figures(records: list[dict[str, Any]], batch_of_100: Any, seconds: float,
                 extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """HTTP batch throughput (4 clients), single-listing latency and server RSS."""
    with served(extra_env=extra_env) as (base, process):
        url = f"{base}/v1/listings/score"
        load = concurrent_load(url, batch_of_100, clients=4, seconds=seconds)
        return {
            "http_batch": {"listings_per_s": load["items_per_s"], "batch_size": 100, "clients": 4,
                           "errors": load["errors"]},
            "http_single": sequential_latency(url, lambda n: {"listings": [records[n % len(records)]]},
                                              requests=500),
            "server_rss_mb": rss_mb(process),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--listings", type=int, default=10000)
    parser.add_argument("--in-process-only", action="store_true", help="skip the HTTP figures")
    parser.add_argument("--decision-log-overhead", action="store_true",
                        help="also serve with SHOPGUARD_DECISION_LOG=off and report the difference")
    args = parser.parse_args()
    records = to_api_records(generate_listings(ListingGenerationConfig(n=args.listings, seed=123),
                                               progress=False))
    result: dict[str, Any] = {"benchmark": "listing_throughput", "cpu_count": os.cpu_count(),
                              "in_process": in_process(records, batch=1000)}
    if args.in_process_only:
        print(json.dumps(result, indent=2))
        return

    def batch_of_100(client: int, number: int) -> tuple[dict[str, Any], int]:
        start = ((client + 4 * number) * 100) % (len(records) - 100)
        return {"listings": records[start:start + 100]}, 100

    result.update(http_figures(records, batch_of_100, args.seconds))
    if args.decision_log_overhead:
        without = http_figures(records, batch_of_100, args.seconds, {"SHOPGUARD_DECISION_LOG": "off"})
        result["without_decision_log"] = without
        result["decision_log_overhead"] = {
            "batch_throughput_loss": 1 - result["http_batch"]["listings_per_s"] / without["http_batch"]["listings_per_s"],
            "single_p50_added_ms": result["http_single"]["p50_ms"] - without["http_single"]["p50_ms"],
            "single_p99_added_ms": result["http_single"]["p99_ms"] - without["http_single"]["p99_ms"],
        }
    result["http_over_in_process"] = (result["http_batch"]["listings_per_s"]
                                      / result["in_process"]["listings_per_s"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
