"""merchant-risk in generic mode on the real Amazon user-fraud data (CARE-GNN / DGAD).

Protocol (../shared/data/README.md): rows >= 2295; five stratified 60/40 train/test splits
with random_state 0..4; validation for early stopping and thresholds carved out of the 60%
train part; mean and std of ROC-AUC and AP on the test part, with and without graph
features. The data is exported to a Parquet table and an edge list and read back through
the pipeline's generic loader, as an analyst's files would be. Prints JSON.

    .venv/bin/python benchmarks/merchant_amazon.py [--splits 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io as sio
from scipy import sparse
from sklearn.model_selection import train_test_split

from kinds.merchant_risk.pipeline import (
    MerchantRiskConfig,
    MerchantRiskTrainer,
    load_merchant_table,
)
from training.splits import validation_from_train

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT.parent / "shared" / "data" / "amazon_users" / "Amazon.mat"
EXPECTED_SHA256 = "e36e1714864c755f101c1c5180510b7609fdc80db5d9a3264b388b0a98d5208e"
FIRST_LABELLED_ROW = 2295


def export_amazon(mat_path: Path, folder: Path) -> tuple[Path, Path]:
    """Write the labelled users as a generic table and their links as an edge list."""
    data = sio.loadmat(mat_path)
    keep = np.arange(FIRST_LABELLED_ROW, data["Label"].shape[0])
    features = data["Attributes"].tocsr()[keep].toarray()
    labels = data["Label"].ravel()[keep].astype(int)
    table = pd.DataFrame(features, columns=[f"f{i:02d}" for i in range(features.shape[1])])
    table.insert(0, "user_id", [f"U{i}" for i in keep])
    table["label"] = labels
    network = sparse.triu(data["Network"].tocsr()[keep][:, keep], k=1).tocoo()
    edges = pd.DataFrame({"src": [f"U{keep[i]}" for i in network.row],
                          "dst": [f"U{keep[j]}" for j in network.col]})
    table_path, edges_path = folder / "amazon_users.parquet", folder / "amazon_links.parquet"
    table.to_parquet(table_path, index=False)
    edges.to_parquet(edges_path, index=False)
    return table_path, edges_path


def run(table_path: Path, edges_path: Path, graph: bool, seeds: list[int]) -> dict[str, float | list]:
    """Train and test once per seed; mean / std of ROC-AUC and AP."""
    table = load_merchant_table(table_path, edges_path, label_column="label", id_column="user_id")
    aucs, aps = [], []
    for seed in seeds:
        train, test = train_test_split(np.arange(len(table.labels)), test_size=0.4,
                                       stratify=table.labels, random_state=seed)
        splits = validation_from_train(table.labels, train, test, validation_size=0.2, seed=seed)
        config = MerchantRiskConfig(seed=seed, graph_features=graph, bootstrap_samples=0)
        result = MerchantRiskTrainer(config).fit(table, splits)
        aucs.append(result.test_metrics.roc_auc)
        aps.append(result.test_metrics.pr_auc)
    return {"roc_auc_mean": float(np.mean(aucs)), "roc_auc_std": float(np.std(aucs)),
            "ap_mean": float(np.mean(aps)), "ap_std": float(np.std(aps)),
            "roc_auc_per_split": aucs, "ap_per_split": aps,
            "features": len(result.manifest.feature_set.features)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    if not DATA.is_file():
        print(json.dumps({"skipped": f"{DATA} not found (../shared/data is not in a fresh clone)"}))
        return
    digest = hashlib.sha256(DATA.read_bytes()).hexdigest()
    if digest != EXPECTED_SHA256:
        raise SystemExit(f"{DATA} has sha256 {digest}, expected {EXPECTED_SHA256}")
    seeds = list(range(args.splits))
    with tempfile.TemporaryDirectory() as tmp:
        table_path, edges_path = export_amazon(DATA, Path(tmp))
        start = time.perf_counter()
        result = {"benchmark": "merchant_amazon", "protocol": "rows>=2295, stratified 60/40, seeds "
                  f"{seeds}, validation = 20% of train", "data_sha256": digest,
                  "without_graph": run(table_path, edges_path, graph=False, seeds=seeds),
                  "with_graph": run(table_path, edges_path, graph=True, seeds=seeds)}
        result["seconds"] = time.perf_counter() - start
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
