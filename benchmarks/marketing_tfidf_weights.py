"""false-marketing's TF-IDF scorers on real live rooms they never saw: real-row weight and C.

Protocol: the labelled real sentences (``shopguard data live-asr``) are cut into 4 folds by
live room, as ``train false-marketing --real`` cuts them; for each fold one TF-IDF + logistic
regression scorer per category is fitted on the generated rows and the other folds' real rows
(IDF fitted on the same rows) and scores the held-out rooms. Prints one JSON line per setting:
ROC-AUC of the binary score (max over categories) and per category, and recall / F1 with 5%
of clean held-out sentences flagged. Takes about 20 s a setting on 2 cores.

    .venv/bin/python benchmarks/marketing_tfidf_weights.py --data data/transcripts.parquet \\
        --real data/live_asr.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from features.text import normalize_many
from features.text_scorer import NgramHashing, smooth_idf, tfidf
from kinds.false_marketing.pipeline import MARKETING_CATEGORIES, MarketingData, load_training_data
from training.grouped import group_folds
from training.pipeline import CharTfidf, fit_char_scorer, score_tfidf_rows

ROOT = Path(__file__).resolve().parent.parent

SETTINGS: dict[str, dict[str, float]] = {
    "before (real weight 1, C 4)": {"real_weight": 1.0, "c": 4.0},
    "real weight 3, C 4": {"real_weight": 3.0, "c": 4.0},
    "real weight 1, C 16": {"real_weight": 1.0, "c": 16.0},
    "served (real weight 5, C 16)": {"real_weight": 5.0, "c": 16.0},
    "real weight 10, C 4": {"real_weight": 10.0, "c": 4.0},
}


def held_out_scores(data: MarketingData, texts: list[str], folds: list[np.ndarray], real_weight: float,
                    c: float, hash_features: int = 2**17) -> np.ndarray:
    """Per-category probabilities of every real row from scorers that never saw its room."""
    real = np.flatnonzero(data.real)
    generated = np.flatnonzero(~data.real)
    hashing = NgramHashing(hash_features, 1, 3)
    counts = hashing.counts(texts)
    scores = np.zeros((len(real), len(MARKETING_CATEGORIES)))
    for fold in folds:
        train = np.concatenate([generated, np.delete(real, fold)])
        idf = smooth_idf(counts[train])
        # The trainer's own fitting function, on rows whose IDF saw only the training rows.
        features = CharTfidf(hashing, idf, tfidf(counts, idf))
        weights = np.where(data.real, real_weight, 1.0)
        for j in range(len(MARKETING_CATEGORIES)):
            if data.labels[train, j].min() == data.labels[train, j].max():
                continue
            scorer = fit_char_scorer(features, data.labels[:, j], c, rows=train, sample_weight=weights)
            scores[fold, j] = score_tfidf_rows(scorer, features.matrix[real[fold]])
    return scores


def figures(labels: np.ndarray, scores: np.ndarray, clean_share: float = 0.05) -> dict[str, object]:
    """Binary ROC-AUC, recall and F1 with ``clean_share`` of clean rows flagged, per-category ROC-AUC."""
    violating = labels.max(axis=1) > 0
    binary = scores.max(axis=1)
    flagged = binary > np.quantile(binary[~violating], 1 - clean_share)
    recall = float((flagged & violating).sum() / violating.sum())
    precision = float((flagged & violating).sum() / max(flagged.sum(), 1))
    return {
        "binary_roc_auc": round(float(roc_auc_score(violating, binary)), 4),
        f"recall_at_{clean_share:.0%}_clean_flagged": round(recall, 3),
        f"f1_at_{clean_share:.0%}_clean_flagged": round(2 * precision * recall / (precision + recall), 3),
        "roc_auc_per_category": {category: round(float(roc_auc_score(labels[:, j], scores[:, j])), 3)
                                 for j, category in enumerate(MARKETING_CATEGORIES) if labels[:, j].sum() >= 20},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="generated segments (transcripts.parquet)")
    parser.add_argument("--real", type=Path, required=True, help="labelled real sentences with a room column")
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    data = load_training_data([args.data], [args.real])
    texts = normalize_many(list(data.texts))
    real = np.flatnonzero(data.real)
    folds = group_folds(data.groups[real], args.folds, 0)
    for name, setting in SETTINGS.items():
        started = time.perf_counter()
        scores = held_out_scores(data, texts, folds, setting["real_weight"], setting["c"])
        print(json.dumps({"benchmark": "marketing_tfidf_weights", "setting": name, **setting,
                          "real_rows": len(real), "rooms": len(set(data.groups[real])),
                          **figures(data.labels[real], scores),
                          "seconds": round(time.perf_counter() - started, 1)}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
