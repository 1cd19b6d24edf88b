"""Merchant graph features out of core (DuckDB) for 1,000,000 merchants and 10,000,000
links, checked against the in-memory ``kinds/merchant_risk/features.py`` on a sample. Prints JSON:
seconds, peak memory of the process, and the largest difference on the sample.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kinds.merchant_risk.features import (
    MERCHANT_FEATURE_SPEC,
    MerchantGraph,
    build_merchant_features,
)
from kinds.merchant_risk.graph_scale import graph_features_duckdb

ROOT = Path(__file__).resolve().parent.parent


def synthetic_graph(merchants: int, links: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random merchants (own features, 60% known labels) and random typed links."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("M", np.arange(merchants).astype(str))
    frame = pd.DataFrame(rng.random((merchants, len(MERCHANT_FEATURE_SPEC.own_features))),
                         columns=list(MERCHANT_FEATURE_SPEC.own_features))
    frame.loc[rng.random(merchants) < 0.05, "cs_response_minutes"] = np.nan
    frame.insert(0, "merchant_id", ids)
    frame["known_label"] = np.where(rng.random(merchants) < 0.6, (rng.random(merchants) < 0.1).astype(float), np.nan)
    types = np.array(MERCHANT_FEATURE_SPEC.link_types)
    edges = pd.DataFrame({"src": ids[rng.integers(0, merchants, links)], "dst": ids[rng.integers(0, merchants, links)],
                          "link_type": types[rng.integers(0, len(types), links)]})
    return frame, edges


def sample_check(merchants: pd.DataFrame, links: pd.DataFrame, ids: np.ndarray, matrix: np.ndarray,
                 sample: int = 1000) -> float:
    """Largest |DuckDB - in-memory| over ``sample`` merchants, the in-memory side built on the
    sample's neighbourhood (every feature of a merchant depends only on its links and its
    neighbours' values)."""
    chosen = set(merchants["merchant_id"].sample(sample, random_state=1))
    incident = links[links["src"].isin(chosen) | links["dst"].isin(chosen)]
    nodes = chosen | set(incident["src"]) | set(incident["dst"])
    local = merchants[merchants["merchant_id"].isin(nodes)].reset_index(drop=True)
    features = list(MERCHANT_FEATURE_SPEC.own_features)
    graph = MerchantGraph.build(local["merchant_id"].to_numpy(), local[features].to_numpy(np.float64),
                                list(incident.itertuples(index=False, name=None)), MERCHANT_FEATURE_SPEC.link_types,
                                {m: int(v) for m, v in zip(local["merchant_id"], local["known_label"], strict=True)
                                 if v == v})
    rows = np.flatnonzero(local["merchant_id"].isin(chosen).to_numpy())
    expected = build_merchant_features(graph, rows, MERCHANT_FEATURE_SPEC)
    position = pd.Index(ids).get_indexer(local["merchant_id"].to_numpy()[rows])
    diff = np.abs(np.nan_to_num(matrix[position], nan=-1e9) - np.nan_to_num(expected, nan=-1e9))
    return float(diff.max())


def _compute(folder: str, memory_limit: str) -> None:
    """The DuckDB step in its own process, so that its peak memory is measured alone."""
    ids, matrix = graph_features_duckdb(Path(folder) / "merchants.parquet", Path(folder) / "links.parquet",
                                        MERCHANT_FEATURE_SPEC, label_column="known_label",
                                        memory_limit=memory_limit, temp_directory=str(Path(folder) / "spill"))
    np.save(Path(folder) / "ids.npy", ids.astype(str))
    np.save(Path(folder) / "matrix.npy", matrix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--merchants", type=int, default=1_000_000)
    parser.add_argument("--links", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", default="2GB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopguard-graph-") as tmp:
        folder = Path(tmp)
        merchants, links = synthetic_graph(args.merchants, args.links)
        merchants.to_parquet(folder / "merchants.parquet", index=False)
        links.to_parquet(folder / "links.parquet", index=False)
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=_compute, args=(str(folder), args.memory_limit))
        child.start()
        child.join()
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        ids, matrix = np.load(folder / "ids.npy"), np.load(folder / "matrix.npy")
        max_diff = sample_check(merchants, links, ids, matrix)
    print(json.dumps({"benchmark": "merchant_graph_scale", "engine": "duckdb", "merchants": args.merchants,
                      "links": args.links, "features": matrix.shape[1], "seconds": seconds,
                      "merchants_per_s": args.merchants / seconds, "memory_limit": args.memory_limit,
                      "peak_rss_mb_duckdb_process": peak,
                      "sample_max_abs_diff_vs_in_memory": max_diff}, indent=2))


if __name__ == "__main__":
    main()
