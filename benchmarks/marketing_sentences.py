"""false-marketing, one held-out room fold: segments of several sentences read whole or
sentence by sentence. Trains the fold as the pipeline does (``benchmarks/marketing_fold.py``),
cuts each held-out clip into runs of k consecutive sentences (a segment is violating when one
of its sentences is), and scores every run twice: as one text (the runtime before
``kinds/false_marketing/sentences.py``) and as the highest of its sentences' scores (the
runtime now). Thresholds are set at 5% of the fold's clean single sentences flagged, so both
readings are compared at the same cut. Prints JSON.

    .venv/bin/python benchmarks/marketing_sentences.py --base-model .shopguard/base_models/char-bert-...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from features.text import normalize_many
from kinds.false_marketing.blend import blend
from kinds.false_marketing.pipeline import (
    FalseMarketingConfig,
    FalseMarketingTrainer,
    MarketingData,
    load_training_data,
    split_segments,
)
from training.data.live_asr import CLIPS_FILE, _read_jsonl, split_sentences
from training.data.real_text import require_shared_data
from training.grouped import group_folds

RUN_LENGTHS = (2, 3, 5)


def clip_runs(data: MarketingData, held: np.ndarray) -> list[list[int]]:
    """The held-out rows in the order their clips say them, one list per clip."""
    row_of = {data.texts[i]: int(i) for i in held}
    clips = []
    for clip in _read_jsonl(require_shared_data() / CLIPS_FILE):
        rows = [row_of[s] for s in split_sentences(clip["text"]) if s in row_of]
        if rows:
            clips.append(rows)
    return clips


def compare(data: MarketingData, clips: list[list[int]], score_texts, sentence_score: dict[int, float],
            threshold: float, k: int) -> dict[str, Any]:
    """Runs of ``k`` sentences: ROC-AUC and flagged shares read whole and sentence by sentence."""
    runs = [clip[j:j + k] for clip in clips for j in range(0, len(clip), k)]
    violating = np.array([bool(data.labels[run].any()) for run in runs])
    whole = score_texts(["".join(data.texts[i] for i in run) for run in runs])
    by_sentence = np.array([max(sentence_score[i] for i in run) for run in runs])
    figures: dict[str, Any] = {"segments": len(runs), "violating_share": round(float(violating.mean()), 4)}
    for name, scores in (("whole", whole), ("by_sentence", by_sentence)):
        figures[name] = {"roc_auc": round(float(roc_auc_score(violating, scores)), 4),
                         "recall": round(float((scores[violating] >= threshold).mean()), 4),
                         "clean_flagged": round(float((scores[~violating] >= threshold).mean()), 4)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/transcripts.parquet"))
    parser.add_argument("--real", type=Path, default=Path("data/live_asr.jsonl"))
    parser.add_argument("--base-model", type=Path, default=None)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--weight", type=float, action="append", help="transformer weights of the blend (0.25)")
    args = parser.parse_args()
    config = FalseMarketingConfig(base_model=str(args.base_model) if args.base_model else None)
    import torch

    torch.set_num_threads(config.num_threads or 1)
    trainer = FalseMarketingTrainer(config, progress=lambda m: print(m, flush=True, file=sys.stderr))
    data = load_training_data([args.data], [args.real])
    texts = normalize_many(list(data.texts))
    generated = np.flatnonzero(~data.real)
    splits = split_segments(data.labels[generated], config)
    real_rows = np.flatnonzero(data.real)
    folds = group_folds(data.groups[real_rows], config.real_folds, config.seed)
    held = real_rows[folds[args.fold]]
    train_rows = np.concatenate([generated[splits.train], np.delete(real_rows, folds[args.fold])])
    validation = ([texts[i] for i in generated[splits.validation]], data.labels[generated[splits.validation]])
    clips = clip_runs(data, held)
    result: dict[str, Any] = {"fold": args.fold, "held_out_sentences": int(len(held))}
    with tempfile.TemporaryDirectory() as work:
        chosen = trainer._training_rows(data, train_rows, texts)
        parts = trainer.fitter.fit_parts(*chosen, validation, Path(work) / "fold", select_best=False)
        encoder, tfidf = parts.scores([texts[i] for i in held])
        violating = data.labels[held].any(axis=1)
        for weight in args.weight or [0.25]:
            sentences = blend(encoder, tfidf, weight, config.blend_space).max(axis=1)
            threshold = float(np.quantile(sentences[~violating], 0.95))

            def score_texts(raw: list[str], weight: float = weight) -> np.ndarray:
                return blend(*parts.scores(normalize_many(raw)), weight, config.blend_space).max(axis=1)

            figures: dict[str, Any] = {"sentences": {
                "roc_auc": round(float(roc_auc_score(violating, sentences)), 4),
                "recall": round(float((sentences[violating] >= threshold).mean()), 4), "clean_flagged": 0.05}}
            score_of = dict(zip(held.tolist(), sentences.tolist(), strict=True))
            for k in RUN_LENGTHS:
                figures[f"{k}_sentences"] = compare(data, clips, score_texts, score_of, threshold, k)
            result[f"weight_{weight}"] = figures
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
