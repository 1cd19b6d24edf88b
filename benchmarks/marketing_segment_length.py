"""Should a segment of several sentences need a higher score to be flagged? (the sealed 2024
live-room transcripts flag 20% of clean segments against a target of 12%)

A segment takes its strictest sentence's decision, so the share of clean segments flagged grows
with the number of sentences. Every labelled ``live_asr`` sentence carries the score of a
false-marketing run that never saw its room (``heldout_segments.parquet`` of a ``--real``
training run). Each clip is cut into consecutive runs of k sentences (violating when one of
them is) and a run is flagged when its highest sentence score, lowered in log-odds by
``beta * ln k``, reaches the single cut that flags as many clean sentences as the served
decisions do (``beta`` 0 is the served rule). Prints one JSON line per ``beta``: ROC-AUC and F1
over all runs pooled, and per k the F1, recall and share of clean runs flagged.

    SHOPGUARD_HOME=.shopguard .venv/bin/python benchmarks/marketing_segment_length.py [--segments FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

RUN_LENGTHS = (1, 2, 3, 5, 8)
BETAS = (0.0, 0.25, 0.5, 1.0)


def logit(p: pd.Series) -> np.ndarray:
    """Log-odds, clipped away from 0 and 1."""
    clipped = np.clip(p.to_numpy(dtype=float), 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def runs_of(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Consecutive runs of ``k`` sentences of one clip: the highest log-odds and whether one violates."""
    rows = []
    for _, clip in frame.groupby(["room", "clip"], sort=False):
        clip = clip.sort_values("position")
        for start in range(0, len(clip) - k + 1, k):
            run = clip.iloc[start:start + k]
            rows.append((k, float(run["logit"].max()), bool(run["violating"].any())))
    return pd.DataFrame(rows, columns=["k", "top", "violating"])


def f1(violating: np.ndarray, flagged: np.ndarray) -> float:
    """Binary F1 of ``flagged`` against ``violating``."""
    return 2 * float((violating & flagged).sum()) / max(1, int(violating.sum() + flagged.sum()))


def figures(runs: pd.DataFrame, cut: float, beta: float) -> dict[str, object]:
    """ROC-AUC and F1 pooled, and per run length, with the length-lowered score."""
    adjusted = runs["top"].to_numpy() - beta * np.log(runs["k"].to_numpy())
    flagged, violating = adjusted >= cut, runs["violating"].to_numpy()
    per_length = {}
    for k in RUN_LENGTHS:
        m = runs["k"].to_numpy() == k
        per_length[f"k{k}"] = {"runs": int(m.sum()), "f1": round(f1(violating[m], flagged[m]), 3),
                               "recall": round(float(flagged[m & violating].mean()), 3),
                               "clean_flagged": round(float(flagged[m & ~violating].mean()), 3)}
    return {"benchmark": "marketing_segment_length", "beta": beta,
            "pooled_roc_auc": round(float(roc_auc_score(violating, adjusted)), 4),
            "pooled_f1": round(f1(violating, flagged), 3), **per_length}


def main() -> None:
    from common.settings import load_settings
    from kinds.false_marketing.pipeline import heldout_segments_file
    from registry.store import ModelRegistry
    from training.data.real_text import require_shared_data
    from training.room_replay import broadcast_order

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=Path, default=None, help="heldout_segments.parquet (default: production's)")
    args = parser.parse_args()
    settings = load_settings()
    path = args.segments or heldout_segments_file(settings.home,
                                                  ModelRegistry(settings).resolve("false-marketing:production"))
    order = broadcast_order(require_shared_data())
    frame = pd.read_parquet(path).merge(order[["sha256", "clip", "position"]], on="sha256")
    frame["violating"] = frame["labels"] != ""
    frame["logit"] = logit(frame["score"])
    clean = ~frame["violating"]
    served_share = float((frame.loc[clean, "decision"] != "allow").mean())
    cut = float(np.quantile(frame.loc[clean, "logit"], 1 - served_share))
    runs = pd.concat([runs_of(frame, k) for k in RUN_LENGTHS], ignore_index=True)
    for beta in BETAS:
        print(json.dumps({**figures(runs, cut, beta), "served_clean_share": round(served_share, 4)}), flush=True)


if __name__ == "__main__":
    main()
