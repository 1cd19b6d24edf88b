"""false-marketing, one held-out room fold: segments of several sentences read whole, sentence
by sentence, and without their sentence ends. Trains the fold as the pipeline does
(``benchmarks/marketing_fold.py``), cuts each held-out clip into runs of k consecutive
sentences (a segment is violating when one of its sentences is), and scores every run:

- ``whole``: as one text, in windows of 126 characters (the runtime before
  ``kinds/false_marketing/sentences.py``);
- ``by_sentence``: the highest of its sentences' scores (the runtime now);
- ``no_sentence_ends``: the run with its sentence ends removed (speech recognition that does not
  punctuate), in windows of 126 characters only, and with the clause windows a long text is
  also read in now (``encoder.text_windows``).

Every reading blends the encoder and the TF-IDF scorers per window, as served (blend weight
0.25 unless ``--weight``). Thresholds are set at 5% of the fold's clean single sentences
flagged, so all readings are compared at the same cut. Prints JSON.

    .venv/bin/python benchmarks/marketing_sentences.py --base-model .shopguard/base_models/char-bert-...
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from benchmarks.marketing_fold import fold_parser, fold_rows
from features.marketing import MARKETING_CATEGORIES
from features.text import normalize_many
from kinds.false_marketing.blend import BlendSpace, blend, tfidf_scores
from kinds.false_marketing.encoder import max_by_owner, text_windows, windows
from kinds.false_marketing.pipeline import (
    FalseMarketingConfig,
    FalseMarketingTrainer,
    FittedParts,
    MarketingData,
    load_training_data,
)
from training.data.live_asr import CLIPS_FILE, _read_jsonl, split_sentences
from training.data.real_text import require_shared_data

RUN_LENGTHS = (2, 3, 5)
SENTENCE_END = re.compile(r"[。？！?!]")
Reader = Callable[[list[str]], np.ndarray]


def clip_runs(data: MarketingData, held: np.ndarray) -> list[list[int]]:
    """The held-out rows in the order their clips say them, one list per clip."""
    row_of = {data.texts[i]: int(i) for i in held}
    clips = []
    for clip in _read_jsonl(require_shared_data() / CLIPS_FILE):
        rows = [row_of[s] for s in split_sentences(clip["text"]) if s in row_of]
        if rows:
            clips.append(rows)
    return clips


def reader(parts: FittedParts, weight: float, space: BlendSpace,
           windows_of: Callable[[str], list[tuple[int, str]]]) -> Reader:
    """Binary scores of raw texts: normalized, each window (``windows_of``) blended as served,
    per text the strongest window's highest category."""
    def read(raw: list[str]) -> np.ndarray:
        owners, pieces = [], []
        for index, text in enumerate(normalize_many(raw)):
            for _, piece in windows_of(text):
                owners.append(index)
                pieces.append(piece)
        scores = blend(parts.int8.predict_pieces(pieces), tfidf_scores(parts.tfidf, pieces, MARKETING_CATEGORIES),
                       weight, space).max(axis=1, keepdims=True)
        return max_by_owner(scores, np.array(owners, dtype=np.int64), len(raw))[:, 0]
    return read


def _figures(violating: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    return {"roc_auc": round(float(roc_auc_score(violating, scores)), 4),
            "recall": round(float((scores[violating] >= threshold).mean()), 4),
            "clean_flagged": round(float((scores[~violating] >= threshold).mean()), 4)}


def compare(data: MarketingData, clips: list[list[int]], readers: dict[str, Reader],
            sentence_score: dict[int, float], threshold: float, k: int) -> dict[str, Any]:
    """Runs of ``k`` sentences: ROC-AUC and flagged shares of each reading."""
    runs = [clip[j:j + k] for clip in clips for j in range(0, len(clip), k)]
    violating = np.array([bool(data.labels[run].any()) for run in runs])
    joined = ["".join(data.texts[i] for i in run) for run in runs]
    unpunctuated = [SENTENCE_END.sub("", text) for text in joined]
    readings = {"whole": readers["windows"](joined),
                "by_sentence": np.array([max(sentence_score[i] for i in run) for run in runs]),
                "no_sentence_ends, 126-character windows": readers["windows"](unpunctuated),
                "no_sentence_ends, with clause windows": readers["text_windows"](unpunctuated)}
    figures: dict[str, Any] = {"segments": len(runs), "violating_share": round(float(violating.mean()), 4),
                               "mean_characters": round(float(np.mean([len(t) for t in unpunctuated])), 1)}
    return figures | {name: _figures(violating, scores, threshold) for name, scores in readings.items()}


def main() -> None:
    parser = fold_parser(__doc__.split("\n")[0])
    parser.add_argument("--weight", type=float, action="append", help="transformer weights of the blend (0.25)")
    args = parser.parse_args()
    config = FalseMarketingConfig(base_model=str(args.base_model) if args.base_model else None)
    import torch

    torch.set_num_threads(config.num_threads or 1)
    trainer = FalseMarketingTrainer(config, progress=lambda m: print(m, flush=True, file=sys.stderr))
    data = load_training_data([args.data], [args.real])
    texts = normalize_many(list(data.texts))
    rows = fold_rows(data, texts, config, args.fold)
    held, train_rows, validation = rows.held, rows.train, rows.validation
    clips = clip_runs(data, held)
    result: dict[str, Any] = {"fold": args.fold, "held_out_sentences": int(len(held))}
    with tempfile.TemporaryDirectory() as work:
        chosen = trainer._training_rows(data, train_rows, texts)
        parts = trainer.fitter.fit_parts(*chosen, validation, Path(work) / "fold", select_best=False)
        violating = data.labels[held].any(axis=1)
        for weight in args.weight or [0.25]:
            readers = {"windows": reader(parts, weight, config.blend_space, windows),
                       "text_windows": reader(parts, weight, config.blend_space, text_windows)}
            sentences = readers["windows"]([data.texts[i] for i in held])
            threshold = float(np.quantile(sentences[~violating], 0.95))
            figures: dict[str, Any] = {"sentences": _figures(violating, sentences, threshold)}
            score_of = dict(zip(held.tolist(), sentences.tolist(), strict=True))
            for k in RUN_LENGTHS:
                figures[f"{k}_sentences"] = compare(data, clips, readers, score_of, threshold, k)
            result[f"weight_{weight}"] = figures
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
