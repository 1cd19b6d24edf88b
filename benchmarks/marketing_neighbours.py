"""Do the neighbouring sentences of a call lift a sentence's held-out score? (issue 30, item 3)

Every labelled ``live_asr`` sentence carries the score of a false-marketing run that never saw
its room (``heldout_segments.parquet`` of a ``--real`` training run). The sentences are put back
in broadcast order and cut into calls of ``--chunk-sentences`` (as the enforcement replay and a
live-room client send them). Per variant, a logistic regression over the sentence's own logit
and its neighbours' (the previous sentence of the same call; the strongest other sentence and the
mean of the call) is fitted on the other room folds and scores each fold (cross-fitted, the
training run's folds). Prints one JSON line per variant: ROC-AUC, and recall / precision / F1 /
efficacy recall with the served share of clean sentences flagged and with 5%.

    SHOPGUARD_HOME=.shopguard .venv/bin/python benchmarks/marketing_neighbours.py [--segments FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

VARIANTS = {
    "own score": ["own"],
    "+ previous sentence": ["own", "previous"],
    "+ previous and next sentence": ["own", "previous", "next"],
    "+ previous, strongest other and mean of the call": ["own", "previous", "strongest_other", "call_mean"],
}
NOTHING = -8.0  # the logit standing for "no such neighbour in the call"


def neighbour_features(frame: pd.DataFrame, chunk_sentences: int) -> pd.DataFrame:
    """``frame`` (one row per sentence, in broadcast order per room) with the logit columns."""
    frame = frame.copy()
    clipped = frame["score"].clip(1e-6, 1 - 1e-6)
    frame["own"] = np.log(clipped / (1 - clipped))
    frame["call"] = frame.groupby("room").cumcount() // chunk_sentences
    calls = frame.groupby(["room", "call"])["own"]
    frame["previous"] = calls.shift(1).fillna(NOTHING)
    frame["next"] = calls.shift(-1).fillna(NOTHING)
    frame["call_mean"] = calls.transform("mean")
    top_two = calls.transform(lambda s: s.nlargest(2).iloc[-1] if len(s) > 1 else NOTHING)
    top = calls.transform("max")
    frame["strongest_other"] = np.where(frame["own"] < top, top, top_two)
    return frame


def cross_fitted(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Each fold's probabilities from a regression fitted on the other folds."""
    out = np.zeros(len(frame))
    for fold in sorted(frame["fold"].unique()):
        train, test = (frame["fold"] != fold).to_numpy(), (frame["fold"] == fold).to_numpy()
        model = LogisticRegression(C=1.0).fit(frame.loc[train, columns], frame.loc[train, "violating"])
        out[test] = model.predict_proba(frame.loc[test, columns])[:, 1]
    return out


def operating_point(frame: pd.DataFrame, scores: np.ndarray, clean_share: float) -> dict[str, float]:
    """Recall, precision, F1 and efficacy recall with ``clean_share`` of clean sentences flagged."""
    violating = frame["violating"].to_numpy() == 1
    flagged = scores > np.quantile(scores[~violating], 1 - clean_share)
    hits = int((flagged & violating).sum())
    recall, precision = hits / violating.sum(), hits / max(1, flagged.sum())
    efficacy = frame["labels"].str.contains("efficacy_claim").to_numpy()
    return {"recall": round(recall, 3), "precision": round(precision, 3),
            "f1": round(2 * recall * precision / max(recall + precision, 1e-9), 3),
            "efficacy_recall": round(float(flagged[efficacy].mean()), 3)}


def main() -> None:
    from common.settings import load_settings
    from kinds.false_marketing.pipeline import heldout_segments_file
    from registry.store import ModelRegistry
    from training.data.real_text import require_shared_data
    from training.room_replay import broadcast_order

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=Path, default=None, help="heldout_segments.parquet (default: production's)")
    parser.add_argument("--chunk-sentences", type=int, default=5, help="sentences per call")
    args = parser.parse_args()
    settings = load_settings()
    path = args.segments or heldout_segments_file(settings.home,
                                                  ModelRegistry(settings).resolve("false-marketing:production"))
    order = broadcast_order(require_shared_data())
    frame = pd.read_parquet(path).merge(order[["sha256", "order"]], on="sha256")
    frame = frame.sort_values(["room", "order"]).reset_index(drop=True)
    frame["violating"] = (frame["labels"] != "").astype(int)
    frame = neighbour_features(frame, args.chunk_sentences)
    served_share = float((frame.loc[frame["violating"] == 0, "decision"] != "allow").mean())
    for name, columns in VARIANTS.items():
        scores = cross_fitted(frame, columns)
        print(json.dumps({"benchmark": "marketing_neighbours", "variant": name, "sentences": len(frame),
                          "rooms": int(frame["room"].nunique()), "chunk_sentences": args.chunk_sentences,
                          "roc_auc": round(float(roc_auc_score(frame["violating"], scores)), 4),
                          f"at_served_clean_flagged_{served_share:.3f}": operating_point(frame, scores, served_share),
                          "at_clean_flagged_0.05": operating_point(frame, scores, 0.05)},
                         ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
