"""merchant-risk throughput with graph features. Prints JSON.

- in-process: 100,000 merchants and 1,000,000 links (the generator's merchants and links,
  topped up with random links), feature building + model for all of them at once, with
  the elapsed time and the process's peak RSS;
- HTTP: batches of 100 merchants, 4 concurrent clients, against ``bentoml serve``.

Needs a production merchant-risk model in ``SHOPGUARD_HOME`` (``make train-demo``).

    .venv/bin/python benchmarks/merchant_throughput.py [--merchants 100000 --links 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.load import concurrent_load, rss_mb, served
from kinds.merchant_risk.features import (
    MERCHANT_BEHAVIOUR_FEATURES,
    MerchantGraph,
    build_merchant_features,
)
from kinds.merchant_risk.generator import LINK_TYPES, MerchantGenerationConfig, generate_merchants
from kinds.merchant_risk.runtime import MerchantRiskModel
from registry.store import ModelRegistry

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_process(model: MerchantRiskModel, n: int, n_links: int) -> dict[str, Any]:
    merchants, links = generate_merchants(MerchantGenerationConfig(n=n, seed=11))
    rng = np.random.default_rng(0)
    extra = n_links - len(links)
    ids = merchants["merchant_id"].to_numpy()
    edge_list = list(links.itertuples(index=False, name=None))
    if extra > 0:
        edge_list += list(zip(ids[rng.integers(0, n, extra)], ids[rng.integers(0, n, extra)],
                              np.asarray(LINK_TYPES)[rng.integers(0, 4, extra)], strict=True))
    values = merchants[list(MERCHANT_BEHAVIOUR_FEATURES)].to_numpy(np.float64)
    before = peak_rss_mb()
    start = time.perf_counter()
    graph = MerchantGraph.build(ids, values, edge_list, model.spec.link_types, {})
    built = time.perf_counter()
    matrix = build_merchant_features(graph, np.arange(n), model.spec)
    featured = time.perf_counter()
    scores = model.predict_matrix(matrix)
    done = time.perf_counter()
    return {"merchants": n, "links": len(edge_list), "merchants_per_s": n / (done - start),
            "seconds_graph_index": built - start, "seconds_features": featured - built,
            "seconds_model": done - featured, "peak_rss_mb_before": before,
            "peak_rss_mb_after": peak_rss_mb(), "blocked_share": float((scores >= model.thresholds.block).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--merchants", type=int, default=100_000)
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    model = MerchantRiskModel.from_bundle(ModelRegistry().load("merchant-risk:production"))
    result: dict[str, Any] = {"benchmark": "merchant_throughput", "model": model.tag,
                              "in_process": in_process(model, args.merchants, args.links)}
    merchants, _ = generate_merchants(MerchantGenerationConfig(n=5000, seed=12))
    records = [{k: (v if k == "merchant_id" else float(v)) for k, v in row.items()}
               for row in merchants[["merchant_id", *MERCHANT_BEHAVIOUR_FEATURES]].to_dict(orient="records")]

    def batch_of_100(client: int, number: int) -> tuple[dict[str, Any], int]:
        start = ((client + 4 * number) * 100) % (len(records) - 100)
        return {"merchants": records[start:start + 100]}, 100

    with served() as (base, process):
        load = concurrent_load(f"{base}/v1/merchants/score", batch_of_100, clients=4, seconds=args.seconds)
        result["http"] = {"merchants_per_s": load["items_per_s"], "batch_size": 100, "clients": 4,
                          "errors": load["errors"]}
        result["server_rss_mb"] = rss_mb(process)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
