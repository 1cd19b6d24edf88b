"""false-marketing's TF-IDF scorers on real live rooms they never saw: other learners and inputs.

Protocol as ``benchmarks/marketing_tfidf_weights.py`` (the served setting: real rows weighted 5x,
C 16, character 1-3-grams), with the trainer's 3 room folds. Each variant changes one thing:

- ``class-balanced``: positive rows of each category weighted up to balance its classes;
- ``NB-SVM``: features scaled by their naive-Bayes log-count ratio (Wang & Manning, 2012);
- ``resolved text``: the evasion resolver (``features.evasion``) in front of the scorer;
- ``clause boost``: a sentence's logit raised by 0.3 of the margin its best clause (or two
  neighbouring clauses, cut at commas) scores above the whole sentence;
- ``+ GBDT``: LightGBM on the same TF-IDF features (n-grams in at least 5 training rows),
  binary label, its logit mixed 0.35 into the binary logit of the served scorers (slow: about
  40 s a fold).

Prints one JSON line per variant: binary ROC-AUC (maximum over categories), recall and F1 with 5%
of clean held-out sentences flagged, and the hosts' own evasions (某 inside a word) caught and
clean ones flagged at that cut.

    .venv/bin/python benchmarks/marketing_tfidf_variants.py --data data/transcripts.parquet \\
        --real data/live_asr.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from features.evasion import resolve_plain
from features.text import normalize_many
from features.text_scorer import NgramHashing, smooth_idf, tfidf
from kinds.false_marketing.evaluation import HOST_EVASION
from kinds.false_marketing.pipeline import MARKETING_CATEGORIES, MarketingData, load_training_data
from training.grouped import group_folds

REAL_WEIGHT, C = 5.0, 16.0
CLAUSE_BOOST, GBDT_SHARE = 0.3, 0.35
HASHING = NgramHashing(2**17, 1, 3)


@dataclass
class Rows:
    """The benchmark's rows: data, normalized texts, real and generated indices, room folds."""

    data: MarketingData
    texts: list[str]
    real: np.ndarray
    generated: np.ndarray
    folds: list[np.ndarray]

    def train(self, fold: np.ndarray) -> np.ndarray:
        """Generated rows and the real rows of the other folds."""
        return np.concatenate([self.generated, np.delete(self.real, fold)])


Fit = Callable[[sparse.csr_matrix, np.ndarray, np.ndarray, np.ndarray], Callable[[sparse.csr_matrix], np.ndarray]]


def logistic(matrix: sparse.csr_matrix, labels: np.ndarray, train: np.ndarray, weights: np.ndarray,
             class_weight: str | None = None) -> Callable[[sparse.csr_matrix], np.ndarray]:
    """The served learner: liblinear logistic regression; returns a logit function."""
    model = LogisticRegression(C=C, max_iter=2000, solver="liblinear", class_weight=class_weight)
    model.fit(matrix[train], labels[train], sample_weight=weights[train])
    return model.decision_function


def nb_svm(matrix: sparse.csr_matrix, labels: np.ndarray, train: np.ndarray, weights: np.ndarray
           ) -> Callable[[sparse.csr_matrix], np.ndarray]:
    """Logistic regression on features scaled by the weighted naive-Bayes log-count ratio."""
    rows, y, w = matrix[train], labels[train], weights[train]
    positive = 1.0 + np.asarray(rows[y == 1].T @ w[y == 1]).ravel()
    negative = 1.0 + np.asarray(rows[y == 0].T @ w[y == 0]).ravel()
    scale = sparse.diags(np.log((positive / positive.sum()) / (negative / negative.sum())))
    score = logistic(matrix @ scale, labels, train, weights)
    return lambda new: score(new @ scale)


def held_out_logits(rows: Rows, texts: list[str], fit: Fit) -> np.ndarray:
    """Per-category logits of every real row from scorers that never saw its room."""
    counts = HASHING.counts(texts)
    weights = np.where(rows.data.real, REAL_WEIGHT, 1.0)
    logits = np.full((len(rows.real), len(MARKETING_CATEGORIES)), -20.0)
    for fold in rows.folds:
        train = rows.train(fold)
        matrix = tfidf(counts, smooth_idf(counts[train]))
        for j in range(len(MARKETING_CATEGORIES)):
            labels = rows.data.labels[:, j]
            if labels[train].min() != labels[train].max():
                logits[fold, j] = fit(matrix, labels, train, weights)(matrix[rows.real[fold]])
    return logits


def clause_boosted(rows: Rows) -> np.ndarray:
    """Served logits, raised by ``CLAUSE_BOOST`` of the margin of the best clause window."""
    owners, windows = [], []
    for k, i in enumerate(rows.real):
        parts = [p for p in re.split(r"[，,、；;：:]", rows.data.texts[i]) if p.strip()]
        if len(parts) > 1:
            for window in parts + [a + "，" + b for a, b in zip(parts[:-1], parts[1:], strict=True)]:
                owners.append(k)
                windows.append(window)
    owner = np.array(owners)
    window_counts = HASHING.counts(normalize_many(windows))
    counts = HASHING.counts(rows.texts)
    weights = np.where(rows.data.real, REAL_WEIGHT, 1.0)
    whole = np.full((len(rows.real), len(MARKETING_CATEGORIES)), -20.0)
    best = np.full_like(whole, -50.0)
    for fold in rows.folds:
        train, inside = rows.train(fold), np.isin(owner, fold)
        idf = smooth_idf(counts[train])
        matrix, window_matrix = tfidf(counts, idf), tfidf(window_counts, idf)
        for j in range(len(MARKETING_CATEGORIES)):
            labels = rows.data.labels[:, j]
            if labels[train].min() != labels[train].max():
                score = logistic(matrix, labels, train, weights)
                whole[fold, j] = score(matrix[rows.real[fold]])
                np.maximum.at(best[:, j], owner[inside], score(window_matrix[inside]))
    return whole + CLAUSE_BOOST * np.clip(best - whole, 0, None)


def gbdt_binary(rows: Rows) -> np.ndarray:
    """Held-out logits of LightGBM on TF-IDF for the binary label (any category)."""
    import lightgbm as lgb

    counts = HASHING.counts(rows.texts)
    weights = np.where(rows.data.real, REAL_WEIGHT, 1.0)
    violating = (rows.data.labels.max(axis=1) > 0).astype(int)
    out = np.zeros(len(rows.real))
    for fold in rows.folds:
        train = rows.train(fold)
        kept = np.flatnonzero(np.bincount(counts[train].indices, minlength=counts.shape[1]) >= 5)
        matrix = tfidf(counts, smooth_idf(counts[train]))[:, kept].astype(np.float32)
        model = lgb.LGBMClassifier(n_estimators=600, learning_rate=0.05, num_leaves=31, colsample_bytree=0.3,
                                   subsample=0.8, subsample_freq=1, verbose=-1, n_jobs=2, random_state=0)
        model.fit(matrix[train], violating[train], sample_weight=weights[train])
        out[fold] = model.predict(matrix[rows.real[fold]], raw_score=True)
    return out


def figures(rows: Rows, binary: np.ndarray, clean_share: float = 0.05) -> dict[str, float]:
    """Binary ROC-AUC; recall, F1 and the hosts' evasions with ``clean_share`` of clean rows flagged."""
    violating = rows.data.labels[rows.real].max(axis=1) > 0
    host = np.array([bool(HOST_EVASION.search(rows.data.texts[i])) for i in rows.real])
    flagged = binary > np.quantile(binary[~violating], 1 - clean_share)
    recall = (flagged & violating).sum() / violating.sum()
    precision = (flagged & violating).sum() / max(flagged.sum(), 1)
    return {"binary_roc_auc": round(float(roc_auc_score(violating, binary)), 4),
            "recall": round(float(recall), 3), "f1": round(float(2 * precision * recall / (precision + recall)), 3),
            "host_evasions_caught": round(float(flagged[violating & host].mean()), 3),
            "host_evasions_clean_flagged": round(float(flagged[~violating & host].mean()), 3)}


def variants(rows: Rows, with_gbdt: bool) -> dict[str, Callable[[], np.ndarray]]:
    """Each variant's binary held-out score (a logit: the maximum over categories)."""
    def served() -> np.ndarray:
        return held_out_logits(rows, rows.texts, logistic).max(axis=1)

    found = {
        "served (logistic regression)": served,
        "class-balanced": lambda: held_out_logits(
            rows, rows.texts, lambda *a: logistic(*a, class_weight="balanced")).max(axis=1),
        "NB-SVM": lambda: held_out_logits(rows, rows.texts, nb_svm).max(axis=1),
        "resolved text": lambda: held_out_logits(rows, [resolve_plain(t) for t in rows.texts], logistic).max(axis=1),
        f"clause boost {CLAUSE_BOOST}": lambda: clause_boosted(rows).max(axis=1),
    }
    if with_gbdt:
        found[f"+ GBDT {GBDT_SHARE}"] = lambda: (1 - GBDT_SHARE) * served() + GBDT_SHARE * gbdt_binary(rows)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="generated segments (transcripts.parquet)")
    parser.add_argument("--real", type=Path, required=True, help="labelled real sentences with a room column")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--no-gbdt", action="store_true", help="skip the slow LightGBM variant")
    args = parser.parse_args()
    data = load_training_data([args.data], [args.real])
    real = np.flatnonzero(data.real)
    rows = Rows(data, normalize_many(list(data.texts)), real, np.flatnonzero(~data.real),
                group_folds(data.groups[real], args.folds, 0))
    for name, score in variants(rows, not args.no_gbdt).items():
        started = time.perf_counter()
        print(json.dumps({"benchmark": "marketing_tfidf_variants", "variant": name, "real_rows": len(real),
                          "rooms": len(set(data.groups[real])), **figures(rows, score()),
                          "seconds": round(time.perf_counter() - started, 1)}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
