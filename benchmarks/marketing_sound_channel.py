"""false-marketing's TF-IDF scorers with a sound channel: each Han character also read as its
toneless pinyin syllable (pypinyin's table, as the evasion generator reads it; a run of Latin
letters cut into syllables), hashed as a second block of 1-3-grams beside the character ones,
so a same-sound character or Latin pinyin shares its word's sound n-grams.

TF-IDF alone, the served setting (real rows weighted 5x, C 16), the trainer's 3 room folds.
For ``chars`` (served), ``chars + sound`` and ``sound alone``: binary ROC-AUC, recall and F1 with
5% of clean held-out sentences flagged, and at that cut the evasions generated from the held-out
violating sentences (one of each kind, ``training.data.evasions.generate``, seed 11) caught,
per kind, beside the same sentences undisguised. Prints one JSON line per variant.

    .venv/bin/python benchmarks/marketing_sound_channel.py --data data/transcripts.parquet \\
        --real data/live_asr.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.metrics import roc_auc_score

from benchmarks.marketing_tfidf_variants import HASHING, REAL_WEIGHT, Rows, logistic
from features.text import normalize_many
from features.text_scorer import smooth_idf, tfidf
from kinds.false_marketing.pipeline import MARKETING_CATEGORIES, load_training_data
from training.data.evasions import generate, homophone_table
from training.grouped import group_folds

Featurize = Callable[[list[str]], sparse.csr_matrix]


@lru_cache(maxsize=1)
def syllable_codes() -> dict[str, str]:
    """Each toneless syllable as one private-use character, so the character hashing reads it as one unit."""
    reading, _ = homophone_table()
    return {syllable: chr(0xE000 + i) for i, syllable in enumerate(sorted(set(reading.values())))}


def latin_syllables(run: str) -> str:
    """A run of Latin letters cut into syllables, longest first; a letter that starts none stays itself."""
    codes, out, i = syllable_codes(), [], 0
    while i < len(run):
        for length in range(min(6, len(run) - i), 0, -1):
            if run[i:i + length] in codes:
                out.append(codes[run[i:i + length]])
                i += length
                break
        else:
            out.append(run[i])
            i += 1
    return "".join(out)


def sound(text: str) -> str:
    """``text`` (normalized) with each Han character and each Latin pinyin syllable as its syllable's code."""
    reading, codes = homophone_table()[0], syllable_codes()
    out, letters = [], []
    for char in text:
        if "a" <= char <= "z":
            letters.append(char)
            continue
        if letters:
            out.append(latin_syllables("".join(letters)))
            letters = []
        out.append(codes.get(reading.get(char, ""), char))
    if letters:
        out.append(latin_syllables("".join(letters)))
    return "".join(out)


def chars(texts: list[str]) -> sparse.csr_matrix:
    """The served features: character 1-3-gram counts."""
    return HASHING.counts(texts)


def sounds(texts: list[str]) -> sparse.csr_matrix:
    """Syllable 1-3-gram counts."""
    return HASHING.counts([sound(t) for t in texts])


def run(name: str, featurize: Featurize, rows: Rows, evasions: list, evasion_fold: np.ndarray) -> dict:
    """Held-out logits of the real rows and of their evasions, and the figures at 5% of clean flagged."""
    data, started = rows.data, time.perf_counter()
    counts, evaded = featurize(rows.texts), featurize(normalize_many([e.text for e in evasions]))
    weights = np.where(data.real, REAL_WEIGHT, 1.0)
    real_logits = np.full((len(rows.real), len(MARKETING_CATEGORIES)), -20.0)
    evasion_logits = np.full((len(evasions), len(MARKETING_CATEGORIES)), -20.0)
    for f, fold in enumerate(rows.folds):
        train = rows.train(fold)
        idf = smooth_idf(counts[train])
        matrix, evaded_matrix, inside = tfidf(counts, idf), tfidf(evaded, idf), evasion_fold == f
        for j in range(len(MARKETING_CATEGORIES)):
            labels = data.labels[:, j]
            if labels[train].min() != labels[train].max():
                score = logistic(matrix, labels, train, weights)
                real_logits[fold, j] = score(matrix[rows.real[fold]])
                evasion_logits[inside, j] = score(evaded_matrix[inside])
    violating = data.labels[rows.real].max(axis=1) > 0
    binary, evaded_binary = real_logits.max(axis=1), evasion_logits.max(axis=1)
    cut = np.quantile(binary[~violating], 0.95)
    flagged = binary > cut
    recall, precision = flagged[violating].mean(), (flagged & violating).sum() / flagged.sum()
    position = {row: k for k, row in enumerate(rows.real)}
    kinds = np.array([e.kind for e in evasions])
    return {"benchmark": "marketing_sound_channel", "variant": name,
            "binary_roc_auc": round(float(roc_auc_score(violating, binary)), 4), "recall": round(float(recall), 3),
            "f1": round(float(2 * recall * precision / (recall + precision)), 3),
            "evasions_caught": round(float((evaded_binary > cut).mean()), 3),
            "undisguised_caught": round(float(flagged[[position[e.row] for e in evasions]].mean()), 3),
            **{f"{kind}_caught": round(float((evaded_binary[kinds == kind] > cut).mean()), 3)
               for kind in sorted(set(kinds))},
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="generated segments (transcripts.parquet)")
    parser.add_argument("--real", type=Path, required=True, help="labelled real sentences with a room column")
    args = parser.parse_args()
    data = load_training_data([args.data], [args.real])
    real = np.flatnonzero(data.real)
    rows = Rows(data, normalize_many(list(data.texts)), real, np.flatnonzero(~data.real),
                group_folds(data.groups[real], 3, 0))
    violating = real[data.labels[real].max(axis=1) > 0]
    evasions = [e for e in generate([data.texts[i] for i in violating], 11)]
    evasions = [type(e)(int(violating[e.row]), e.kind, e.source, e.text) for e in evasions]  # rows of ``data``
    fold_of = {int(row): f for f, fold in enumerate(rows.folds) for row in rows.real[fold]}
    evasion_fold = np.array([fold_of[e.row] for e in evasions])
    variants: dict[str, Featurize] = {"chars (served)": chars,
                                      "chars + sound": lambda t: sparse.hstack([chars(t), sounds(t)]).tocsr(),
                                      "sound alone": sounds}
    for name, featurize in variants.items():
        print(json.dumps(run(name, featurize, rows, evasions, evasion_fold)), flush=True)


if __name__ == "__main__":
    main()
