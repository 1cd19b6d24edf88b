"""Fitting a ``false-marketing`` run's parts: the encoder (trained, saved with its tokenizer and
exported to ONNX fp32 and int8), the TF-IDF scorers and the novelty signal (``FittedParts``), and
the held-out room folds (``FoldJob``), each trained in a process of its own beside the served
encoder (``EncoderJob``). The spawned processes import ``_run_job_in_process`` from this module
by path: it stays at module level."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse

from common.settings import Device
from features.marketing import MARKETING_CATEGORIES
from features.novelty import BigramNovelty
from features.text import normalize_many
from features.text_scorer import CharNgramScorer
from features.text_scorer import tfidf as tfidf_rows
from kinds.false_marketing.blend import tfidf_scores
from kinds.false_marketing.config import FalseMarketingConfig
from kinds.false_marketing.data import MarketingData, TrainingRowsOf, training_rows
from kinds.false_marketing.encoder import OnnxEncoder
from kinds.false_marketing.runtime import ONNX_FP32_FILE, ONNX_INT8_FILE, TOKENIZER_FILE
from training import sound_embeddings
from training.data.evasions import common_characters, generate
from training.data.real_text import ingame_ads, shared_data_dir
from training.grouped import group_folds
from training.pipeline import CharTfidf, Progress, fit_char_scorer, no_progress
from training.pretrain import verify_base_model
from training.text_encoder import (
    build_char_tokenizer,
    build_encoder,
    export_onnx,
    load_base_model,
    quantize_int8,
    quiet_transformers,
    torch_device,
    train_encoder,
)


@dataclass
class HeldOutEvasions:
    """Disguised copies of the held-out violating rows (``training.data.evasions.generate``: one
    of each kind that applies to a sentence), scored by the fold run that never saw their group.
    They are measured, never used to choose anything."""

    source: np.ndarray  # each copy's position in ``HeldOutRooms.rows``
    kind: np.ndarray  # the evasion kind of each copy (``training.data.evasions.KINDS``)
    texts: list[str]  # as a viewer would see them: what the lexicon rules read
    transformer: np.ndarray
    tfidf: np.ndarray
    novelty: np.ndarray
    served: np.ndarray | None = None  # the blend, once its weight is chosen


@dataclass
class HeldOutRooms:
    """Out-of-fold scores of the real rows: each row scored by a run that never saw its group
    (and, with ``evasions``, disguised copies of its violating rows scored by the same run)."""

    rows: np.ndarray  # indices into the data
    folds: int
    fold: np.ndarray  # each row's fold
    transformer: np.ndarray
    tfidf: np.ndarray
    novelty: np.ndarray
    served: np.ndarray | None = None  # the blend, once its weight is chosen
    evasions: HeldOutEvasions | None = None

    def subset(self, keep: np.ndarray) -> HeldOutRooms:
        """The rows where ``keep`` is true (without evasions: choices read real rows only)."""
        return HeldOutRooms(self.rows[keep], self.folds, self.fold[keep], self.transformer[keep], self.tfidf[keep],
                            self.novelty[keep], None if self.served is None else self.served[keep])


class FoldEvasions(NamedTuple):
    """Disguised copies of a fold's violating rows (``fold_evasions``)."""

    source: np.ndarray  # each copy's position in the held-out rows
    kind: list[str]
    texts: list[str]  # as a viewer would see them
    normalized: list[str]  # what the fold run scores


# The held-out copies are drawn with another seed than the training copies (``with_evasions``).
HELD_OUT_EVASION_SEED_OFFSET = 1


def fold_evasions(data: MarketingData, positions: np.ndarray, rows: np.ndarray, seed: int) -> FoldEvasions:
    """Disguised copies of a fold's violating rows (``rows``: the data indices of the held-out
    rows at ``positions``), one of each evasion kind that applies. A copy that normalization
    turns back into its original (traditional characters, punctuation and space fillers) is no
    evasion the model faces, and is left out."""
    violating = data.labels[rows].any(axis=1)
    raw = [data.texts[i] for i in rows[violating]]
    made = generate(raw, seed)
    originals = normalize_many(raw)
    normalized = normalize_many([e.text for e in made])
    keep = [j for j, e in enumerate(made) if normalized[j] and normalized[j] != originals[e.row]]
    return FoldEvasions(positions[violating][[made[j].row for j in keep]].astype(np.int64),
                        [made[j].kind for j in keep], [made[j].text for j in keep], [normalized[j] for j in keep])


@dataclass
class FittedParts:
    """One training run's models: the encoder (PyTorch and ONNX), the TF-IDF scorers and the
    novelty signal, all fitted on the same rows."""

    torch_model: Any
    tokenizer: Any
    training: dict[str, Any]
    int8: OnnxEncoder
    fp32: OnnxEncoder
    tfidf: dict[str, CharNgramScorer]
    novelty: BigramNovelty

    def scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's and the TF-IDF scorers' probabilities for normalized texts."""
        return self.int8.predict(texts), tfidf_scores(self.tfidf, texts, MARKETING_CATEGORIES)


# Real in-game chat for the off_platform TF-IDF scorer alone: normalized texts and labels (1: ad spam).
Chat = tuple[list[str], np.ndarray]
NO_CHAT: Chat = ([], np.zeros(0))


@dataclass(frozen=True)
class FoldJob:
    """One held-out fold's training: its rows (texts, labels, weights, known categories, real
    marks), the validation rows, its work folder, the held-out texts it scores, the label its
    progress lines start with (``fold 2/3``), the chat rows
    of its off_platform TF-IDF scorer and the disguised copies of its violating held-out texts
    (scored apart: the int8 encoder's scale is a batch's, so they never move the texts' scores)."""

    rows: TrainingRowsOf
    validation: tuple[list[str], np.ndarray]
    work: Path
    held_out_texts: list[str]
    label: str
    chat: Chat = NO_CHAT
    evasion_texts: list[str] = field(default_factory=list)


# A fold run's scores of texts: encoder, TF-IDF (NaN: no scorer) and novelty.
FoldPartScores = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class FoldScores:
    """A fold run's scores of its held-out texts and of their disguised copies."""

    held_out: FoldPartScores
    evasions: FoldPartScores


@dataclass(frozen=True)
class EncoderJob:
    """The served encoder's training: its rows and validation rows, the folder its files are
    written to (checkpoint, tokenizer, ONNX fp32 and int8), whether to keep its best epoch, the
    label its progress lines start with (``served``) and the chat rows of its off_platform
    TF-IDF scorer."""

    rows: TrainingRowsOf
    validation: tuple[list[str], np.ndarray]
    work: Path
    select_best: bool
    label: str = ""
    chat: Chat = NO_CHAT


def off_platform_chat(exclude: set[str], rows: int, seed: int) -> Chat:
    """Up to ``rows`` normalized in-game chat messages of the train file (label 1: ad spam,
    selling outside the platform) drawn with ``seed``, none of them in ``exclude`` (the training
    file's normalized texts, all of its splits) nor in the validation file (the in-game check's);
    none without ../shared/data."""
    root = shared_data_dir()
    if rows == 0 or root is None:
        return NO_CHAT
    frame = ingame_ads(root, "train")
    checked = set(normalize_many([str(t) for t in ingame_ads(root, "validation")["text"]]))
    # Twice the rows drawn, then normalized: enough once the excluded ones are out.
    drawn = np.random.default_rng(seed).permutation(len(frame))[:2 * rows]
    normalized = normalize_many([str(t) for t in frame["text"].to_numpy()[drawn]])
    keep = [k for k, t in enumerate(normalized) if t and t not in exclude and t not in checked][:rows]
    return [normalized[k] for k in keep], frame["label"].to_numpy()[drawn[keep]].astype(np.float64)


def available_cores() -> int:
    """The cores this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _run_job_in_process(arguments: tuple[FalseMarketingConfig, Device, FoldJob | EncoderJob]
                        ) -> FoldScores | dict[str, Any]:
    """A job in a process of its own (spawned: nothing of the parent's torch state), with
    ``num_threads`` threads; its progress goes to the log (stderr)."""
    import logging
    import sys

    import torch

    config, device, job = arguments
    log = logging.getLogger("shopguard.training")
    if not log.handlers:  # our progress only: the libraries' INFO lines (ONNX export, optimizer) stay quiet
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    fitter = PartsFitter(config, progress=lambda message: log.info("%s", message), device=device)
    return fitter.run_job(job)


class PartsFitter:
    """Fits one training run's parts (``FittedParts``): the encoder (trained, saved and exported
    to ONNX fp32 and int8), the TF-IDF scorers and the novelty signal; and the held-out room
    folds, each a run of its own, side by side in processes (``parallel_folds``) or in turn."""

    def __init__(self, config: FalseMarketingConfig, progress: Progress | None = None,
                 device: Device = "cpu") -> None:
        self.config = config
        self.device = device
        self.progress = progress or no_progress

    def with_label(self, label: str) -> PartsFitter:
        """This fitter with each progress line starting ``label: `` (``fold 2/3: epoch 1/3: ...``),
        so that the lines of folds trained side by side say which fold they are; itself without
        a label."""
        if not label:
            return self
        return PartsFitter(self.config, lambda message: self.progress(f"{label}: {message}"), self.device)

    def fit_tfidf(self, texts: list[str], labels: np.ndarray, real: np.ndarray,
                  chat: Chat = NO_CHAT) -> dict[str, CharNgramScorer]:
        """One TF-IDF scorer per category with both classes in training; ``real`` marks the
        rows weighted by ``tfidf_real_weight``. The off_platform scorer also reads the ``chat``
        rows (the IDF is ``texts``' alone)."""
        features = CharTfidf.fit(texts, self.config.tfidf_hash_features)
        weights = np.where(real, self.config.tfidf_real_weight, 1.0)
        chat_texts, spam = chat
        extra = {"off_platform": chat} if chat_texts else {}
        scorers = {category: fit_char_scorer(features, labels[:, j], self.config.tfidf_regularization_c,
                                             sample_weight=weights)
                   for j, category in enumerate(MARKETING_CATEGORIES)
                   if category not in extra and labels[:, j].min() != labels[:, j].max()}
        if chat_texts:
            column = MARKETING_CATEGORIES.index("off_platform")
            combined = CharTfidf(features.hashing, features.idf, sparse.vstack(
                [features.matrix, tfidf_rows(features.hashing.counts(chat_texts), features.idf)]).tocsr())
            scorers["off_platform"] = fit_char_scorer(
                combined, np.concatenate([labels[:, column], spam]), self.config.tfidf_regularization_c,
                sample_weight=np.concatenate([weights, np.ones(len(chat_texts))]))
        return scorers

    def encoder_start(self, texts: list[str]) -> tuple[Any, Any]:
        """A fresh encoder with a tokenizer built on ``texts``, or the configured base checkpoint."""
        import torch

        config = self.config
        if config.base_model:
            verify_base_model(Path(config.base_model))
            torch.manual_seed(config.seed)  # the new head, then dropout: the same run twice gives the same model
            return load_base_model(Path(config.base_model), len(MARKETING_CATEGORIES), config.attention_dropout)
        tokenizer = build_char_tokenizer(texts, extra_chars=common_characters() if config.sound_embeddings else ())
        return tokenizer, build_encoder(len(tokenizer), len(MARKETING_CATEGORIES), config.hidden_size,
                                        config.layers, config.heads, config.intermediate_size,
                                        config.dropout, config.seed, config.attention_dropout)

    def fit_parts(self, texts: list[str], labels: np.ndarray, weights: np.ndarray, known: np.ndarray | None,
                   real: np.ndarray, validation: tuple[list[str], np.ndarray], work: Path, select_best: bool,
                   label: str = "", chat: Chat = NO_CHAT) -> FittedParts:
        """Train the encoder (saved with its ONNX files in ``work``), the TF-IDF scorers and the
        novelty signal on the same rows (and ``chat`` for the off_platform TF-IDF scorer)."""
        job = EncoderJob((texts, labels, weights, known, real), validation, work, select_best, label, chat)
        training, model, tokenizer = self._train_encoder(job)
        return self.parts_from_files(job, training, model, tokenizer)  # the trained model, not read back

    def train_encoder_files(self, job: EncoderJob) -> dict[str, Any]:
        """Train the encoder of ``job`` and write its checkpoint, tokenizer and ONNX files (fp32
        and int8) into ``job.work``; returns the training history."""
        return self._train_encoder(job)[0]

    def _train_encoder(self, job: EncoderJob) -> tuple[dict[str, Any], Any, Any]:
        """``train_encoder_files``, also returning the trained model and its tokenizer."""
        config = self.config
        texts, labels, weights, known, _ = job.rows
        tokenizer, model = self.encoder_start(texts)
        if config.sound_embeddings:
            sound_embeddings.attach(model, tokenizer)
        device = torch_device(self.device)
        self.progress(f"training the encoder on {device} on {len(texts):,} segments "
                       f"({sum(p.numel() for p in model.parameters()):,} parameters)")
        training = train_encoder(
            model, tokenizer, (texts, labels), job.validation, epochs=config.epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate, weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
            patience=config.patience, seed=config.seed, device=device, max_seconds=config.max_train_seconds,
            progress=self.progress, known_categories=known, weights=weights, select_best=job.select_best)
        sound_embeddings.merge(model)
        job.work.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            model.save_pretrained(job.work)
            tokenizer.save_pretrained(job.work)
        export_onnx(model, job.work / ONNX_FP32_FILE)
        quantize_int8(job.work / ONNX_FP32_FILE, job.work / ONNX_INT8_FILE)
        return training, model, tokenizer

    def parts_from_files(self, job: EncoderJob, training: dict[str, Any], torch_model: Any = None,
                          tokenizer: Any = None) -> FittedParts:
        """The parts of a trained encoder's files (the PyTorch model read back unless given),
        with the TF-IDF scorers and the novelty signal fitted on the job's rows."""
        texts, labels, _, _, real = job.rows
        if torch_model is None:
            tokenizer, torch_model = load_base_model(job.work, len(MARKETING_CATEGORIES))
            torch_model.eval()
        return FittedParts(torch_model, tokenizer, training,
                           OnnxEncoder(job.work / ONNX_INT8_FILE, job.work / TOKENIZER_FILE),
                           OnnxEncoder(job.work / ONNX_FP32_FILE, job.work / TOKENIZER_FILE),
                           self.fit_tfidf(texts, labels, real, job.chat), BigramNovelty.fit(texts))

    def run_job(self, job: FoldJob | EncoderJob) -> FoldScores | dict[str, Any]:
        """A fold's held-out scores, or the served encoder's files and training history; its
        progress lines start with the job's label."""
        fitter = self.with_label(job.label)
        return fitter.train_encoder_files(job) if isinstance(job, EncoderJob) else fitter.score_fold(job)

    def held_out_rooms(self, data: MarketingData, texts: list[str], train_rows: np.ndarray,
                        validation: tuple[list[str], np.ndarray], work: Path,
                        served: EncoderJob | None = None, chat: Chat = NO_CHAT
                        ) -> tuple[HeldOutRooms | None, dict[str, Any] | None]:
        """Out-of-fold scores of the real rows and of disguised copies of the violating ones
        (None without real rows), and the training history of the ``served`` encoder when one
        is given: it trains beside the folds (it needs nothing of theirs), so its files are in
        ``served.work`` when this returns."""
        real_rows = np.flatnonzero(data.real)
        if not len(real_rows):
            return None, None if served is None else self.run_job(served)
        folds = group_folds(data.groups[real_rows], self.config.real_folds, self.config.seed)
        fold_of = np.zeros(len(real_rows), dtype=np.int64)
        for k, fold in enumerate(folds):
            fold_of[fold] = k
        held = HeldOutRooms(real_rows, len(folds), fold_of, np.zeros((len(real_rows), len(MARKETING_CATEGORIES))),
                            np.full((len(real_rows), len(MARKETING_CATEGORIES)), np.nan), np.zeros(len(real_rows)))
        seed = self.config.seed + HELD_OUT_EVASION_SEED_OFFSET
        evaded = [fold_evasions(data, fold, real_rows[fold], seed) for fold in folds]
        jobs = [FoldJob(training_rows(self.config, data, np.concatenate([train_rows, np.delete(real_rows, fold)]), texts),
                        validation, work / f"fold{k}", [texts[i] for i in real_rows[fold]],
                        f"fold {k + 1}/{len(folds)}", chat, evaded[k].normalized)
                for k, fold in enumerate(folds)]
        outcomes = self.run_jobs(([] if served is None else [served]) + jobs)
        training = outcomes.pop(0) if served is not None else None
        results: list[FoldScores] = outcomes
        for fold, result in zip(folds, results, strict=True):
            held.transformer[fold], held.tfidf[fold], held.novelty[fold] = result.held_out
        transformer, tfidf, novelty = (np.concatenate(parts) for parts in zip(*(r.evasions for r in results),
                                                                                strict=True))
        held.evasions = HeldOutEvasions(np.concatenate([e.source for e in evaded]),
                                        np.array([kind for e in evaded for kind in e.kind], dtype=object),
                                        [text for e in evaded for text in e.texts], transformer, tfidf, novelty)
        return held, training

    def run_jobs(self, jobs: list[FoldJob | EncoderJob]) -> list[Any]:
        """Each job's result, in order: in processes side by side on CPU (``parallel_folds``),
        else one after the other here. The served encoder's job comes first: it is the longest."""
        workers = self.config.parallel_folds or max(1, available_cores() // max(1, self.config.num_threads))
        workers = min(workers, len(jobs))
        if workers <= 1 or str(torch_device(self.device)) != "cpu":
            return [self.run_job(job) for job in jobs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        folds = sum(isinstance(job, FoldJob) for job in jobs)
        self.progress(f"training {folds} held-out folds{' and the served encoder' if folds < len(jobs) else ''}, "
                       f"{workers} at once (one process each)")
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(_run_job_in_process, [(self.config, self.device, job) for job in jobs]))

    def score_fold(self, job: FoldJob) -> FoldScores:
        """Train one held-out fold's parts and score its held-out texts and, apart, their
        disguised copies (encoder, TF-IDF, novelty)."""
        parts = self.fit_parts(*job.rows, job.validation, job.work, select_best=False, chat=job.chat)

        def scored(texts: list[str]) -> FoldPartScores:
            if not texts:  # a fold without violating rows has no copies
                columns = len(MARKETING_CATEGORIES)
                return np.zeros((0, columns)), np.zeros((0, columns)), np.zeros(0)
            return (*parts.scores(texts), parts.novelty.score(texts))

        result = FoldScores(scored(job.held_out_texts), scored(job.evasion_texts))
        shutil.rmtree(job.work)
        return result
