"""false-marketing, one held-out room fold: train as the pipeline trains a fold (generated
rows + the real rows of the other rooms), score the fold's rooms and evasions generated from
their violating sentences. Compares training settings (``--set key=value``, e.g.
``evasion_copies=0``) on rooms no variant saw. Prints JSON.

The fold is training's own (``training.grouped.group_folds``, ``real_folds`` folds, seed 0). Evasions come
from ``training.data.evasions.generate`` with seed 7 (training's copies use the config seed on
other rooms). Thresholds for the recall figures are set on the fold's clean sentences (5% or
the given share flagged), the same way for every variant, so they compare variants; the
pipeline's own thresholds come from all the folds. Figures in the README were measured with 4 folds
(`--set real_folds=4`).

    .venv/bin/python benchmarks/marketing_fold.py --base-model .shopguard/base_models/char-bert-... \\
        --set evasion_copies=0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from features.evasion import resolve_plain
from features.marketing import MARKETING_CATEGORIES
from features.text import normalize_many
from kinds.false_marketing.blend import blend
from kinds.false_marketing.pipeline import (
    EncoderJob,
    FalseMarketingConfig,
    FalseMarketingTrainer,
    load_training_data,
    split_segments,
)
from training.data.evasions import KINDS, generate
from training.grouped import group_folds


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _rates(scores: np.ndarray, threshold: float) -> float:
    return round(float((scores >= threshold).mean()), 4) if len(scores) else float("nan")


def validation_with(texts: list[str], rows: np.ndarray, data: Any) -> tuple[list[str], np.ndarray]:
    """Validation rows read with their context."""
    return [texts[i] for i in rows], data.labels[rows]


def previous_sentences(generated_file: Path, real_file: Path, data: Any, texts: list[str]) -> list[str]:
    """Each row's previous sentence (normalized; empty for a first one): generated rows by
    stream and segment index, real rows by their clip's order in ../shared/data."""
    import pandas as pd

    from training.data.live_asr import CLIPS_FILE, _read_jsonl, split_sentences
    from training.data.real_text import require_shared_data

    frame = pd.read_parquet(generated_file)
    n_generated = len(frame)
    before = [""] * len(texts)
    order = frame.sort_values(["stream_id", "segment_index"]).index.to_numpy()
    for previous, current in zip(order[:-1], order[1:], strict=True):
        if frame.at[previous, "stream_id"] == frame.at[current, "stream_id"]:
            before[current] = texts[previous]
    previous_of: dict[str, str] = {}
    for clip in _read_jsonl(require_shared_data() / CLIPS_FILE):
        sentences = split_sentences(clip["text"])
        for prior, sentence in zip(["", *sentences[:-1]], sentences, strict=True):
            previous_of.setdefault(sentence, prior)
    real_texts = data.texts[n_generated:]
    prior_texts = normalize_many([previous_of.get(t, "") for t in real_texts])
    before[n_generated:] = prior_texts
    return before


@dataclass
class FoldRows:
    """One held-out room fold of the trainer's: its real rows, the training rows of its run and
    the validation rows (texts and labels; ``validation_rows``: their indices)."""

    held: np.ndarray
    train: np.ndarray
    validation: tuple[list[str], np.ndarray]
    validation_rows: np.ndarray


def fold_rows(data: Any, texts: list[str], config: FalseMarketingConfig, fold: int) -> FoldRows:
    """The rows of room fold ``fold`` as the pipeline's held-out run of it takes them."""
    generated = np.flatnonzero(~data.real)
    splits = split_segments(data.labels[generated], config)
    real_rows = np.flatnonzero(data.real)
    folds = group_folds(data.groups[real_rows], config.real_folds, config.seed)
    validation_rows = generated[splits.validation]
    return FoldRows(real_rows[folds[fold]], np.concatenate([generated[splits.train], np.delete(real_rows, folds[fold])]),
                    ([texts[i] for i in validation_rows], data.labels[validation_rows]), validation_rows)


def fold_parser(description: str) -> argparse.ArgumentParser:
    """The options of a one-fold benchmark: the files, the base encoder and the fold."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=Path("data/transcripts.parquet"))
    parser.add_argument("--real", type=Path, default=Path("data/live_asr.jsonl"))
    parser.add_argument("--base-model", type=Path, default=None)
    parser.add_argument("--fold", type=int, default=0)
    return parser


def main() -> None:
    parser = fold_parser(__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--clean-flagged", type=float, default=0.05)
    parser.add_argument("--context-chars", type=int, default=0, help=(
        "the encoder reads this many last characters of the previous sentence of the same clip (real rows) "
        "or stream (generated rows) before [SEP] (0: none; the TF-IDF scorers never do)"))
    args = parser.parse_args()
    overrides = {k: _value(v) for k, _, v in (item.partition("=") for item in args.set)}
    config = FalseMarketingConfig(base_model=str(args.base_model) if args.base_model else None, **overrides)
    import torch

    torch.set_num_threads(config.num_threads or 1)
    trainer = FalseMarketingTrainer(config, progress=lambda m: print(m, flush=True, file=__import__("sys").stderr))
    data = load_training_data([args.data], [args.real])
    texts = normalize_many(list(data.texts))
    rows = fold_rows(data, texts, config, args.fold)
    held, train_rows, validation = rows.held, rows.train, rows.validation
    begin = time.perf_counter()
    labels = data.labels[held]
    violating = labels.any(axis=1)
    evasions = generate([data.texts[i] for i in held[violating]], seed=7)
    evaded_texts = normalize_many([e.text for e in evasions])
    with tempfile.TemporaryDirectory() as work:
        chosen = trainer._training_rows(data, train_rows, texts)
        if args.context_chars:
            before = previous_sentences(args.data, args.real, data, texts)
            with_context = [f"{before[i][-args.context_chars:]}[SEP]{texts[i]}" for i in range(len(texts))]
            job = EncoderJob(trainer._training_rows(data, train_rows, with_context), validation_with(
                with_context, rows.validation_rows, data), Path(work) / "fold", select_best=False)
            parts = trainer.fitter.parts_from_files(
                EncoderJob(chosen, validation, job.work, False), trainer.fitter.train_encoder_files(job))
            violating_rows = held[violating]
            evaded_context = [f"{before[violating_rows[e.row]][-args.context_chars:]}[SEP]{t}"
                              for e, t in zip(evasions, evaded_texts, strict=True)]
            scored = {"held": (parts.int8.predict([with_context[i] for i in held]),
                               parts.scores([texts[i] for i in held])[1]),
                      "evasions": (parts.int8.predict(evaded_context), parts.scores(evaded_texts)[1])}
        else:
            parts = trainer.fitter.fit_parts(*chosen, validation, Path(work) / "fold", select_best=False)
            scored = {"held": parts.scores([texts[i] for i in held]), "evasions": parts.scores(evaded_texts)}
            # The same fold model with features/evasion.py's resolver in front (as a bundle turns it on).
            resolved = {"held": parts.scores([resolve_plain(texts[i]) for i in held]),
                        "evasions": parts.scores([resolve_plain(t) for t in evaded_texts])}
        seconds = time.perf_counter() - begin
    result: dict[str, Any] = {"settings": overrides, "context_chars": args.context_chars, "fold": args.fold,
                              "training_rows": len(chosen[0]),
                              "train_seconds": round(seconds, 1), "held_out_rows": int(len(held)),
                              "violating": int(violating.sum()), "evasions": len(evasions)}
    variants = [(f"blend_{w}", scored, w) for w in (1.0, 0.75, 0.5)]
    if not args.context_chars:
        variants += [(f"resolver_on_blend_{w}", resolved, w) for w in (1.0, 0.5)]
    for name, scores, weight in variants:
        held_scores = blend(*scores["held"], weight, trainer.config.blend_space)
        evasion_scores = blend(*scores["evasions"], weight, trainer.config.blend_space)
        binary = held_scores.max(axis=1)
        threshold = float(np.quantile(binary[~violating], 1 - args.clean_flagged))
        evaded_binary = evasion_scores.max(axis=1)
        efficacy = MARKETING_CATEGORIES.index("efficacy_claim")
        flags = binary >= threshold
        precision = float(flags[violating].sum() / max(1, flags.sum()))
        recall = float(flags[violating].mean())
        result[name] = {
            "roc_auc": round(float(roc_auc_score(violating, binary)), 4),
            "average_precision": round(float(average_precision_score(violating, binary)), 4),
            "recall_at_clean_flagged": round(recall, 4),
            "f1_at_clean_flagged": round(2 * precision * recall / max(1e-9, precision + recall), 4),
            "efficacy_ap": round(float(average_precision_score(labels[:, efficacy], held_scores[:, efficacy])), 4),
            "efficacy_recall": _rates(binary[labels[:, efficacy] > 0], threshold),
            "evasion_recall": _rates(evaded_binary, threshold),
            "evasion_recall_by_kind": {k: _rates(evaded_binary[[e.kind == k for e in evasions]], threshold)
                                       for k in KINDS},
        }
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
