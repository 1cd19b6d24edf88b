"""The ``false-marketing`` pipeline: multi-label transformer encoder over normalized
transcript segments, two baselines on the same split (lexicon only; TF-IDF character
n-grams + logistic regression), per-category thresholds, ONNX export with int8
quantization checked against PyTorch, model card and registration."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import AliasChoices, Field

from common.decisions import Thresholds
from common.settings import Device
from features.marketing import MARKETING_CATEGORIES, lexicon_scores, match_lexicon
from features.novelty import BigramNovelty
from features.text import normalize_many, script_of
from features.text_scorer import CharNgramScorer
from kinds import FALSE_MARKETING
from kinds.false_marketing.blend import blend, tfidf_scores
from kinds.false_marketing.encoder import OnnxEncoder
from kinds.false_marketing.runtime import (
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    TOKENIZER_FILE,
    FalseMarketingModel,
)
from policy.segments import (
    MODEL_ONLY_BLOCK_FLOOR,
    SegmentPolicy,
    measured_rule_evidence,
)
from registry.bundle import FeatureSetRef, Lineage, Manifest, sha256_file
from registry.metrics import BaselineSystem, ModelMetrics, MultiLabelMetrics
from registry.store import LoadedBundle, ModelRegistry, new_version
from training.classification_metrics import BinaryMetrics, binary_metrics
from training.data.evasions import evasion_rows
from training.data.loaders import DataValidationError, read_table
from training.grouped import group_folds, heldout_checks
from training.lineage import git_commit, library_versions, training_file
from training.pipeline import (
    BaseTrainingConfig,
    CharTfidf,
    Progress,
    fit_char_scorer,
    no_progress,
    register_model,
    split_rows,
)
from training.pretrain import BASE_MANIFEST, verify_base_model
from training.real_checks import RealWorldChecks, file_checks, marketing_checks, missing, rate_check
from training.row_identity import TEXT_IDENTITY, TrainingRows, text_keys
from training.splits import Splits
from training.text_encoder import (
    build_char_tokenizer,
    build_encoder,
    export_onnx,
    load_base_model,
    mean_average_precision,
    predict_torch,
    quantize_int8,
    quiet_transformers,
    torch_device,
    train_encoder,
)
from training.thresholds import (
    UNREACHABLE,
    ThresholdChoice,
    apply_review_budget,
    best_f1_thresholds,
    choose_thresholds,
)

MODEL_NAME = FALSE_MARKETING.name
FEATURE_SET = "normalized_text_v1"
LEXICON_THRESHOLDS = Thresholds(block=1.0, review=0.5)
NEVER = Thresholds(block=UNREACHABLE, review=UNREACHABLE)
SERVED_SYSTEM = "served: transformer + TF-IDF blend"
TRANSFORMER_SYSTEM = "transformer alone (int8 ONNX)"
TFIDF_SYSTEM = "TF-IDF char 1-3-grams + logistic regression"
LEXICON_SYSTEM = "lexicon rules only"


class FalseMarketingConfig(BaseTrainingConfig):
    """Parameters of a false-marketing training run. Unknown keys are rejected."""

    validation_size: float = Field(0.15, gt=0, lt=0.5)
    bootstrap_samples: int = Field(100, ge=0)
    num_threads: int = Field(1, ge=0, validation_alias=AliasChoices("num_threads", "torch_threads"),
                             description=("PyTorch threads (0: one per core; `torch_threads` is accepted too). "
                                          "One is the default: the small encoder's steps are short, and on a busy "
                                          "2-core machine two threads ran a step 10x slower than one"))
    base_model: str | None = Field(None, description="local checkpoint folder to fine-tune")
    hidden_size: int = Field(128, ge=16)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(256, ge=16)
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(3, ge=1, description=(
        "passes over the training rows; 3 scored held-out real rooms as 5 did (one room fold, demo data: "
        "blend ROC-AUC 0.834 / 0.837, average precision 0.454 / 0.456, efficacy AP 0.422 / 0.412; "
        "benchmarks/marketing_fold.py) in 60% of the time"))
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    patience: int = Field(2, ge=1)
    max_train_seconds: float | None = Field(None, gt=0)
    tfidf_hash_features: int = Field(2**17, ge=2**10)
    blend_weights: list[float] = Field(
        default_factory=lambda: [1.0, 0.75, 0.5, 0.25],
        description="transformer weights tried for the served blend with TF-IDF; chosen on held-out real "
                    "rooms when real files are given, else on validation")
    tfidf_regularization_c: float = Field(16.0, gt=0, description="inverse L2 strength of the TF-IDF scorers")
    tfidf_real_weight: float = Field(5.0, gt=0, description=(
        "weight of a real row (--real) against a --data row in the TF-IDF scorers' loss: real speech is what "
        "they must rank. With C 16, binary ROC-AUC of the TF-IDF scorers on held-out real rooms rose from 0.845 "
        "(weight 1, C 4) to 0.871 (benchmarks/marketing_tfidf_weights.py)"))
    review_budget: float = Field(0.05, gt=0, lt=1, description=(
        "largest share of ordinary (clean) traffic the model may send to review: held-out real rows and "
        "each source of clean validation text"))
    novelty_quantile: float = Field(0.99, gt=0, le=1, description=(
        "validation novelty quantile above which model-only evidence cannot block"))
    real_checks: bool = Field(True, description="run the real-world checks on ../shared/data")
    model_only_block_floor: float = Field(MODEL_ONLY_BLOCK_FLOOR, ge=0, le=1, description=(
        "evidence from the model alone never blocks below this score (it goes to review); with real "
        "files, raised where held-out real rooms show model-only blocks below the precision target"))
    real_folds: int = Field(3, ge=2, le=20, description=(
        "grouped folds over the real rows (--real): each fold's groups are held out of one training run. Three "
        "folds and the served encoder are four trainings: two rounds on two cores"))
    parallel_folds: int = Field(0, ge=0, le=32, description=(
        "held-out fold trainings run at once, each in a process of num_threads threads (0: one per core, at "
        "most the folds; 1: one after the other). Each fold is seeded alike either way, so the scores are the "
        "same; on CUDA they run one after the other"))
    real_weight: float = Field(3.0, gt=0, description=(
        "the encoder's loss weight of a real row (--real) against a --data row; 3 against 1 raised held-out "
        "real rooms' binary F1 from 0.630 to 0.647 and ROC-AUC from 0.897 to 0.901 (demo data, 4 room folds); "
        "6 gained little more (F1 0.652) and flagged more real reviews (5.0% against 3.1%) and titles"))
    generated_weight: float = Field(1.0, gt=0, description="loss weight of a --data row")
    evasion_copies: int = Field(1, ge=0, le=5, description=(
        "disguised copies (homophone, filler, look-alike, mask or pinyin: training.data.evasions) of each "
        "violating real training row, weighted as real rows; 0: none"))
    min_real_positives: int = Field(20, ge=1, description=(
        "a category's thresholds are chosen on held-out real rows when they hold this many of its positives"))
    model_only_block_precision: float = Field(0.9, gt=0, le=1, description=(
        "held-out real precision that model-only blocks must reach (else the floor is raised)"))


@dataclass
class MarketingData:
    """Segments and their multi-label truth (rows x ``MARKETING_CATEGORIES``)."""

    texts: list[str]
    labels: np.ndarray
    source: Path | None = None
    known_categories: np.ndarray | None = None  # 0/1 per category; None = all labelled
    evasion: np.ndarray | None = None  # True where the generator disguised a claim
    sources: np.ndarray | None = None  # where each row came from (generator's `source`)
    groups: np.ndarray | None = None  # real rows: their group (room); None for generated rows
    files: list[tuple[Path, int, bool]] = field(default_factory=list)  # (file, rows, real)

    @property
    def real(self) -> np.ndarray:
        """True for the rows of real labelled files (those with a group)."""
        if self.groups is None:
            return np.zeros(len(self.texts), dtype=bool)
        return np.array([g is not None for g in self.groups], dtype=bool)


@dataclass
class SystemEvaluation:
    """One system's per-category test metrics."""

    name: str
    per_category: dict[str, BinaryMetrics]


@dataclass
class HeldOutRooms:
    """Out-of-fold scores of the real rows: each row scored by a run that never saw its group."""

    rows: np.ndarray  # indices into the data
    folds: int
    fold: np.ndarray  # each row's fold
    transformer: np.ndarray
    tfidf: np.ndarray
    novelty: np.ndarray
    served: np.ndarray | None = None  # the blend, once its weight is chosen

    def subset(self, keep: np.ndarray) -> HeldOutRooms:
        """The rows where ``keep`` is true."""
        return HeldOutRooms(self.rows[keep], self.folds, self.fold[keep], self.transformer[keep], self.tfidf[keep],
                            self.novelty[keep], None if self.served is None else self.served[keep])


@dataclass
class DecisionSettings:
    """What decides a segment, chosen on held-out rows: thresholds (and how), the review
    budget's shares, each rule's measured evidence and the segment policy built from them."""

    thresholds: dict[str, Thresholds]
    choices: dict[str, ThresholdChoice | None]
    budget_shares: dict[str, float]
    evidence: dict[str, dict[str, float]]
    policy: SegmentPolicy


@dataclass
class MarketingTrainingResult:
    """What a run produced."""

    model: FalseMarketingModel
    manifest: Manifest
    thresholds: dict[str, Thresholds]
    choices: dict[str, ThresholdChoice | None]
    systems: list[SystemEvaluation]
    quantization: dict[str, Any]
    training: dict[str, Any]
    splits: Splits
    test_labels: np.ndarray
    test_scores: np.ndarray  # the served blend on test (the card's plots)
    real_world: RealWorldChecks
    test_decisions: RealWorldChecks
    real_heldout: RealWorldChecks | None = None
    heldout_systems: list[SystemEvaluation] = field(default_factory=list)
    rule_evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    # Each held-out real row's cross-fitted decision (sha256 of the text, never the text):
    # what ``shopguard enforcement rooms`` replays as whole broadcasts.
    heldout_segments: pd.DataFrame | None = None


def _parse_labels(value: Any, row: int, column: str) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    items = list(value) if isinstance(value, list | tuple | np.ndarray) else \
        [v for v in str(value).replace(",", "|").split("|")]
    items = [str(v).strip() for v in items if str(v).strip()]
    unknown = [v for v in items if v not in MARKETING_CATEGORIES]
    if unknown:
        raise DataValidationError(
            f"column {column!r}, row {row}: unknown category {unknown[0]!r}; categories are "
            f"{', '.join(MARKETING_CATEGORIES)}.", field=column)
    return items


def load_marketing_file(path: Path, binary_category: str | None = None) -> MarketingData:
    """Read segments with ``text`` and multi-label ``labels`` (a list, or categories joined
    by | or ,), or with a binary ``label`` mapped to ``binary_category``."""
    frame = read_table(path)
    label_column = "label" if binary_category else "labels"
    missing = [c for c in ("text", label_column) if c not in frame.columns]
    if missing:
        hint = " (or pass a binary `label` column with --binary-category)" if not binary_category else ""
        raise DataValidationError(f"{path.name}: missing column(s) {', '.join(missing)}{hint}.",
                                  field=missing[0])
    texts = frame["text"]
    empty = texts.isna() | (texts.astype(str).str.strip() == "")
    if empty.any():
        raise DataValidationError(f"{path.name}: column 'text' is empty in row {int(np.flatnonzero(empty)[0])}.",
                                  field="text")
    labels = np.zeros((len(frame), len(MARKETING_CATEGORIES)), dtype=np.float32)
    if binary_category:
        if binary_category not in MARKETING_CATEGORIES:
            raise DataValidationError(f"--binary-category {binary_category!r} is not one of "
                                      f"{', '.join(MARKETING_CATEGORIES)}.", field="--binary-category")
        values = pd.to_numeric(frame["label"], errors="coerce")
        if values.isna().any() or not values.isin([0, 1]).all():
            raise DataValidationError(f"{path.name}: column 'label' must hold 0/1.", field="label")
        labels[:, MARKETING_CATEGORIES.index(binary_category)] = values.to_numpy()
        known = np.zeros(len(MARKETING_CATEGORIES), dtype=np.float32)
        known[MARKETING_CATEGORIES.index(binary_category)] = 1.0
        return MarketingData(texts.astype(str).tolist(), labels, path, known)
    for row, value in enumerate(frame["labels"]):
        for category in _parse_labels(value, row, "labels"):
            labels[row, MARKETING_CATEGORIES.index(category)] = 1.0
    evasion = frame["evasion"].fillna(False).astype(bool).to_numpy() if "evasion" in frame.columns else None
    sources = frame["source"].astype(str).to_numpy() if "source" in frame.columns else None
    return MarketingData(texts.astype(str).tolist(), labels, path, evasion=evasion, sources=sources)


def segment_strata(labels: np.ndarray, min_rows: int = 10) -> np.ndarray:
    """Each segment's stratum: 0 when clean, else 1 + its first category; clean vs not when
    a category has fewer than ``min_rows`` segments."""
    key = np.where(labels.any(axis=1), labels.argmax(axis=1) + 1, 0)
    if np.bincount(key).astype(float)[np.bincount(key) > 0].min() < min_rows:
        key = labels.any(axis=1).astype(int)
    return key


def split_segments(labels: np.ndarray, config: FalseMarketingConfig) -> Splits:
    """Seeded split stratified by each segment's first category (or 'clean')."""
    return split_rows(segment_strata(labels), config, "labels")


def per_category_metrics(labels: np.ndarray, scores: np.ndarray, thresholds: dict[str, Thresholds],
                         n_boot: int = 0) -> dict[str, BinaryMetrics]:
    """BinaryMetrics for every category with at least one positive."""
    return {c: binary_metrics(labels[:, j], scores[:, j], thresholds[c], n_boot)
            for j, c in enumerate(MARKETING_CATEGORIES) if labels[:, j].any()}


def lexicon_matrix(texts: list[str]) -> np.ndarray:
    """The lexicon baseline's scores (rows x categories)."""
    rows = [lexicon_scores(match_lexicon(t)) for t in texts]
    return np.array([[row[c] for c in MARKETING_CATEGORIES] for row in rows])


def choose_blend_weight(labels: np.ndarray, transformer: np.ndarray, ngram: np.ndarray,
                        weights: list[float]) -> tuple[float, dict[str, float]]:
    """The transformer weight (among ``weights``) whose blend has the best mean validation
    PR-AUC; ties go to the larger transformer weight."""
    search = {f"{w:.2f}": mean_average_precision(labels, blend(transformer, ngram, w)) for w in weights}
    best = max(sorted(weights, reverse=True), key=lambda w: search[f"{w:.2f}"])
    return best, search


def load_training_data(data: Sequence[Path], real: Sequence[Path] = (), binary_category: str | None = None,
                       group_column: str = "room") -> MarketingData:
    """The rows of every ``data`` file (generated or any labelled text, split at random) and
    every ``real`` file (labelled real text, held out by group): a real file's rows are grouped
    by ``group_column`` (each row's room, source or month), or by the file's name when it has
    no such column."""
    parts = [load_marketing_file(path, binary_category) for path in data]
    for path in real:
        part = load_marketing_file(path)
        frame = read_table(path)
        names = (frame[group_column].astype(str).to_numpy() if group_column in frame.columns
                 else np.full(len(frame), path.stem))
        part.groups = names.astype(object)
        part.sources = np.full(len(frame), f"real:{path.stem}", dtype=object) if part.sources is None \
            else np.array([f"real:{s}" for s in part.sources], dtype=object)
        parts.append(part)
    if not parts:
        raise DataValidationError("no training file: pass --data FILE (and --real FILE for real labelled text).",
                                  field="--data")
    return _concatenate(parts, [(p, False) for p in data] + [(p, True) for p in real])


def _concatenate(parts: list[MarketingData], files: list[tuple[Path, bool]]) -> MarketingData:
    """One ``MarketingData`` of several files (a category unknown in one file is unknown in all)."""
    if len(parts) == 1 and not files[0][1]:
        parts[0].files = [(files[0][0], len(parts[0].texts), False)]
        return parts[0]
    n = [len(p.texts) for p in parts]

    def column(name: str, default: Any) -> np.ndarray:
        return np.concatenate([getattr(p, name) if getattr(p, name) is not None else np.full(k, default, dtype=object)
                               for p, k in zip(parts, n, strict=True)])

    known = None
    if any(p.known_categories is not None for p in parts):  # per row: each file knows its own categories
        known = np.vstack([np.broadcast_to(p.known_categories if p.known_categories is not None
                                           else np.ones(len(MARKETING_CATEGORIES), dtype=np.float32),
                                           (k, len(MARKETING_CATEGORIES))) for p, k in zip(parts, n, strict=True)])
    return MarketingData(
        texts=[t for p in parts for t in p.texts], labels=np.vstack([p.labels for p in parts]),
        source=files[0][0], known_categories=known,
        evasion=column("evasion", False).astype(bool), sources=column("sources", "file"),
        groups=column("groups", None), files=[(path, k, is_real) for (path, is_real), k in zip(files, n, strict=True)])


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


@dataclass(frozen=True)
class FoldJob:
    """One held-out fold's training: its rows (texts, labels, weights, known categories, real
    marks), the validation rows, its work folder and the held-out texts it scores."""

    rows: tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]
    validation: tuple[list[str], np.ndarray]
    work: Path
    held_out_texts: list[str]
    label: str


@dataclass(frozen=True)
class EncoderJob:
    """The served encoder's training: its rows and validation rows, the folder its files are
    written to (checkpoint, tokenizer, ONNX fp32 and int8) and whether to keep its best epoch."""

    rows: tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]
    validation: tuple[list[str], np.ndarray]
    work: Path
    select_best: bool
    label: str = ""


def available_cores() -> int:
    """The cores this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _run_job_in_process(arguments: tuple[FalseMarketingConfig, Device, FoldJob | EncoderJob]
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | dict[str, Any]:
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
    trainer = FalseMarketingTrainer(config, progress=lambda message: log.info("%s", message), device=device)
    return trainer.run_job(job)


class FalseMarketingTrainer:
    """Trains the encoder and the baselines, evaluates and exports; ``fit`` returns the
    served runtime and its manifest (``train_and_register`` registers them).

    With real labelled rows (files given with ``--real``), the real rows are also cut into
    ``real_folds`` folds by group: one extra run per fold trains on everything but that
    fold's groups and scores them, so every real row gets a score from a model that never saw
    its room. Blend weight, thresholds, the review budget, the model-only block floor and the
    evidence of each lexicon rule are chosen on those held-out scores, and the card's
    headline figures are the served decisions on them. The served model is then trained on
    all rows."""

    def __init__(self, config: FalseMarketingConfig, progress: Progress | None = None,
                 device: Device = "cpu", group_column: str = "room") -> None:
        self.config = config
        self.device = device
        self.group_column = group_column
        self._progress = progress or no_progress

    def _fit_tfidf(self, texts: list[str], labels: np.ndarray, real: np.ndarray) -> dict[str, CharNgramScorer]:
        """One TF-IDF scorer per category with both classes in training; ``real`` marks the
        rows weighted by ``tfidf_real_weight``."""
        features = CharTfidf.fit(texts, self.config.tfidf_hash_features)
        weights = np.where(real, self.config.tfidf_real_weight, 1.0)
        return {category: fit_char_scorer(features, labels[:, j], self.config.tfidf_regularization_c,
                                          sample_weight=weights)
                for j, category in enumerate(MARKETING_CATEGORIES) if labels[:, j].min() != labels[:, j].max()}

    def _encoder_start(self, texts: list[str]) -> tuple[Any, Any]:
        """A fresh encoder with a tokenizer built on ``texts``, or the configured base checkpoint."""
        config = self.config
        if config.base_model:
            verify_base_model(Path(config.base_model))
            return load_base_model(Path(config.base_model), len(MARKETING_CATEGORIES))
        tokenizer = build_char_tokenizer(texts)
        return tokenizer, build_encoder(len(tokenizer), len(MARKETING_CATEGORIES), config.hidden_size,
                                        config.layers, config.heads, config.intermediate_size,
                                        config.dropout, config.seed)

    def _fit_parts(self, texts: list[str], labels: np.ndarray, weights: np.ndarray, known: np.ndarray | None,
                   real: np.ndarray, validation: tuple[list[str], np.ndarray], work: Path, select_best: bool,
                   label: str = "") -> FittedParts:
        """Train the encoder (saved with its ONNX files in ``work``), the TF-IDF scorers and the
        novelty signal on the same rows."""
        job = EncoderJob((texts, labels, weights, known, real), validation, work, select_best, label)
        return self._parts_from_files(job, self.train_encoder_files(job))

    def train_encoder_files(self, job: EncoderJob) -> dict[str, Any]:
        """Train the encoder of ``job`` and write its checkpoint, tokenizer and ONNX files (fp32
        and int8) into ``job.work``; returns the training history."""
        config = self.config
        texts, labels, weights, known, _ = job.rows
        tokenizer, model = self._encoder_start(texts)
        device = torch_device(self.device)
        self._progress(f"training the encoder{job.label} on {device} on {len(texts):,} segments "
                       f"({sum(p.numel() for p in model.parameters()):,} parameters)")
        training = train_encoder(
            model, tokenizer, (texts, labels), job.validation, epochs=config.epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate, weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
            patience=config.patience, seed=config.seed, device=device, max_seconds=config.max_train_seconds,
            progress=self._progress, known_categories=known, weights=weights, select_best=job.select_best)
        job.work.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            model.save_pretrained(job.work)
            tokenizer.save_pretrained(job.work)
        export_onnx(model, job.work / ONNX_FP32_FILE)
        quantize_int8(job.work / ONNX_FP32_FILE, job.work / ONNX_INT8_FILE)
        return training

    def _parts_from_files(self, job: EncoderJob, training: dict[str, Any], torch_model: Any = None,
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
                           self._fit_tfidf(texts, labels, real), BigramNovelty.fit(texts))

    def run_job(self, job: FoldJob | EncoderJob) -> tuple[np.ndarray, np.ndarray, np.ndarray] | dict[str, Any]:
        """A fold's held-out scores, or the served encoder's files and training history."""
        return self.train_encoder_files(job) if isinstance(job, EncoderJob) else self.score_fold(job)

    def _training_rows(self, data: MarketingData, rows: np.ndarray, texts: list[str]
                       ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """Texts, labels, loss weights, known-category masks and real-row marks of ``rows``."""
        weights = np.where(data.real[rows], self.config.real_weight, self.config.generated_weight)
        known = data.known_categories
        if known is not None and known.ndim == 2:
            known = known[rows]
        chosen = ([texts[i] for i in rows], data.labels[rows], weights.astype(np.float32), known, data.real[rows])
        return self._with_evasions(data, rows[data.real[rows]], chosen)

    def _with_evasions(self, data: MarketingData, real_rows: np.ndarray,
                       chosen: tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]
                       ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """``chosen`` plus ``evasion_copies`` disguised copies of each violating real row
        (``training.data.evasions``), weighted as real rows; a copy that normalization turns
        back into its original (traditional characters, punctuation fillers) is left out."""
        copies = self.config.evasion_copies
        if not copies or not len(real_rows):
            return chosen
        raw = [data.texts[i] for i in real_rows]
        evaded, labels = evasion_rows(raw, data.labels[real_rows], copies, self.config.seed)
        originals = set(normalize_many(raw))
        normalized = normalize_many(evaded)
        keep = [i for i, text in enumerate(normalized) if text and text not in originals]
        if not keep:
            return chosen
        texts, row_labels, weights, known, real = chosen
        extra_known = None if known is None or known.ndim == 1 else np.ones((len(keep), known.shape[1]), known.dtype)
        return ([*texts, *[normalized[i] for i in keep]], np.vstack([row_labels, labels[keep]]),
                np.concatenate([weights, np.full(len(keep), self.config.real_weight, np.float32)]),
                known if extra_known is None else np.vstack([known, extra_known]),
                np.concatenate([real, np.ones(len(keep), dtype=bool)]))

    def _held_out_rooms(self, data: MarketingData, texts: list[str], train_rows: np.ndarray,
                        validation: tuple[list[str], np.ndarray], work: Path,
                        served: EncoderJob | None = None) -> tuple[HeldOutRooms | None, dict[str, Any] | None]:
        """Out-of-fold scores of the real rows (None without real rows), and the training
        history of the ``served`` encoder when one is given: it trains beside the folds (it
        needs nothing of theirs), so its files are in ``served.work`` when this returns."""
        real_rows = np.flatnonzero(data.real)
        if not len(real_rows):
            return None, None if served is None else self.train_encoder_files(served)
        folds = group_folds(data.groups[real_rows], self.config.real_folds, self.config.seed)
        fold_of = np.zeros(len(real_rows), dtype=np.int64)
        for k, fold in enumerate(folds):
            fold_of[fold] = k
        held = HeldOutRooms(real_rows, len(folds), fold_of, np.zeros((len(real_rows), len(MARKETING_CATEGORIES))),
                            np.full((len(real_rows), len(MARKETING_CATEGORIES)), np.nan), np.zeros(len(real_rows)))
        jobs = [FoldJob(self._training_rows(data, np.concatenate([train_rows, np.delete(real_rows, fold)]), texts),
                        validation, work / f"fold{k}", [texts[i] for i in real_rows[fold]],
                        f" (held-out fold {k + 1}/{len(folds)})") for k, fold in enumerate(folds)]
        results = self._run_jobs(([] if served is None else [served]) + jobs)
        training = results.pop(0) if served is not None else None
        for fold, (transformer, tfidf, novelty) in zip(folds, results, strict=True):
            held.transformer[fold], held.tfidf[fold], held.novelty[fold] = transformer, tfidf, novelty
        return held, training

    def _run_jobs(self, jobs: list[FoldJob | EncoderJob]) -> list[Any]:
        """Each job's result, in order: in processes side by side on CPU (``parallel_folds``),
        else one after the other here. The served encoder's job comes first: it is the longest."""
        workers = self.config.parallel_folds or max(1, available_cores() // max(1, self.config.num_threads))
        workers = min(workers, len(jobs))
        if workers <= 1 or str(torch_device(self.device)) != "cpu":
            return [self.run_job(job) for job in jobs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        folds = sum(isinstance(job, FoldJob) for job in jobs)
        self._progress(f"training {folds} held-out folds{' and the served encoder' if folds < len(jobs) else ''}, "
                       f"{workers} at once (one process each)")
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(_run_job_in_process, [(self.config, self.device, job) for job in jobs]))

    def score_fold(self, job: FoldJob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Train one held-out fold's parts and score its held-out texts (encoder, TF-IDF, novelty)."""
        parts = self._fit_parts(*job.rows, job.validation, job.work, select_best=False, label=job.label)
        transformer, tfidf = parts.scores(job.held_out_texts)
        novelty = parts.novelty.score(job.held_out_texts)
        shutil.rmtree(job.work)
        return transformer, tfidf, novelty

    def fit(self, data: MarketingData, work: Path) -> MarketingTrainingResult:
        """Train, writing the encoder files into ``work`` (a folder that must outlive the
        returned runtime), and evaluate."""
        import torch

        config = self.config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self._progress(f"normalizing {len(data.texts):,} segments")
        texts = normalize_many(list(data.texts))
        generated = np.flatnonzero(~data.real)
        splits = split_segments(data.labels[generated], config)
        splits = Splits(generated[splits.train], generated[splits.validation], generated[splits.test])
        part = {name: [texts[i] for i in getattr(splits, name)] for name in ("train", "validation", "test")}
        labels = {name: data.labels[getattr(splits, name)] for name in ("train", "validation", "test")}
        self._progress(f"split of the generated rows: {splits.sizes()}; real rows: {int(data.real.sum()):,}")
        validation = (part["validation"], labels["validation"])
        rows = np.concatenate([splits.train, np.flatnonzero(data.real)])
        # Without real rows the synthetic validation stands for the text that matters: keep the best epoch.
        served = EncoderJob(self._training_rows(data, rows, texts), validation, work, select_best=not data.real.any())
        held, training = self._held_out_rooms(data, texts, splits.train, validation, work, served)
        final = self._parts_from_files(served, training)
        return self._evaluate(data, splits, part, labels, final, held)

    def _evaluate(self, data: MarketingData, splits: Splits, part: dict[str, list[str]],
                  labels: dict[str, np.ndarray], final: FittedParts, held: HeldOutRooms | None
                  ) -> MarketingTrainingResult:
        """Blend, thresholds, caps and every figure of the served model (module docstring)."""
        config = self.config
        transformer, ngram = {}, {}
        for name in ("validation", "test"):
            transformer[name], ngram[name] = final.scores(part[name])
        weight, blend_search = self._blend_weight(data, held, labels["validation"], transformer["validation"],
                                                  ngram["validation"])
        served = {name: blend(transformer[name], ngram[name], weight) for name in ("validation", "test")}
        alone, _ = self._choose(labels["validation"], transformer["validation"])
        ngram_thresholds, _ = self._choose(labels["validation"], np.nan_to_num(ngram["validation"]))
        quantization = self._quantization_check(final.torch_model, final.tokenizer, final.fp32, part["validation"],
                                                labels["validation"], transformer["validation"], alone)
        self._progress("novelty signal, rule evidence, decisions on held-out rooms, test and real-world checks")
        novelty_pool = final.novelty.score(part["validation"])
        if held is not None:
            novelty_pool = np.concatenate([novelty_pool, held.novelty])
        cutoff = float(np.quantile(novelty_pool, config.novelty_quantile))
        matches = {int(i): match_lexicon(data.texts[i]) for i in held.rows} if held else {}
        validation = (labels["validation"], served["validation"])
        settings = self._decision_settings(data, splits, validation, held, cutoff, matches)
        thresholds, choices, evidence, policy = settings.thresholds, settings.choices, settings.evidence, settings.policy
        runtime = FalseMarketingModel(final.int8, thresholds, MARKETING_CATEGORIES, tfidf=final.tfidf,
                                      transformer_weight=weight, novelty=final.novelty, novelty_cutoff=cutoff,
                                      model_only_block_floor=policy.model_only_block_floor,
                                      rule_evidence=policy.rule_evidence)
        real_heldout, heldout_systems, heldout_segments = (
            self._held_out_figures(data, splits, validation, held, cutoff, matches) if held else (None, [], None))
        budget_shares = settings.budget_shares
        systems = self._test_systems(data, splits, labels["test"], served["test"], transformer["test"],
                                     ngram["test"], thresholds, alone, ngram_thresholds)
        serving_params = {"transformer_weight": weight, "blend_search": blend_search,
                          "blend_chosen_on": "held-out real rooms" if held else "validation",
                          "novelty_cutoff": cutoff, "novelty_quantile": config.novelty_quantile,
                          "model_only_block_floor": policy.model_only_block_floor,
                          "rule_evidence": policy.rule_evidence}
        test_decisions = self._test_decisions(runtime, data, splits)
        real_world = self._real_world(runtime, data)
        details = {"quantization": quantization, "training": final.training, "split_rows": splits.sizes(),
                   "review_budget": {"budget": config.review_budget,
                                     "validation_clean_share_flagged": budget_shares["all clean"],
                                     "per_source": budget_shares},
                   "rule_evidence": evidence}
        if held is not None:
            details["held_out_rooms"] = {"folds": held.folds, "rows": len(held.rows),
                                         "groups": int(len(set(data.groups[held.rows]))),
                                         "systems": {s.name: {c: m.model_dump(mode="json") for c, m in
                                                              s.per_category.items()} for s in heldout_systems}}
        metrics = ModelMetrics(
            test=MultiLabelMetrics(per_category=systems[0].per_category),
            slices={"script": {k: MultiLabelMetrics(per_category=v) for k, v in self._per_script(
                data, splits, labels["test"], served["test"], thresholds, config.bootstrap_samples).items()}},
            real_world=real_world, test_decisions=test_decisions, real_heldout=real_heldout, details=details)
        baseline_thresholds = {TRANSFORMER_SYSTEM: alone, TFIDF_SYSTEM: ngram_thresholds,
                               LEXICON_SYSTEM: dict.fromkeys(MARKETING_CATEGORIES, LEXICON_THRESHOLDS)}
        baselines = {s.name: BaselineSystem(thresholds=baseline_thresholds[s.name],
                                            test=MultiLabelMetrics(per_category=s.per_category))
                     for s in systems[1:]}
        manifest = self._manifest(data, thresholds, metrics, baselines, serving_params)
        runtime.tag = manifest.tag
        return MarketingTrainingResult(runtime, manifest, thresholds, choices, systems, quantization, final.training,
                                       splits, labels["test"], served["test"], real_world, test_decisions,
                                       real_heldout, heldout_systems, evidence, heldout_segments)

    def _blend_weight(self, data: MarketingData, held: HeldOutRooms | None, labels: np.ndarray,
                      transformer: np.ndarray, ngram: np.ndarray) -> tuple[float, dict[str, float]]:
        """The transformer's weight in the blend: chosen on the held-out real rows (categories
        with at least ``min_real_positives`` of them; fewer only add noise), else on validation.
        Sets ``held.served``."""
        if held is None:
            return choose_blend_weight(labels, transformer, ngram, self.config.blend_weights)
        real_labels = data.labels[held.rows]
        enough = real_labels.sum(axis=0) >= self.config.min_real_positives
        weight, search = choose_blend_weight(real_labels * enough, held.transformer, np.nan_to_num(held.tfidf),
                                             self.config.blend_weights)
        held.served = blend(held.transformer, held.tfidf, weight)
        return weight, search

    def _choose(self, labels: np.ndarray, scores: np.ndarray) -> tuple[dict[str, Thresholds], dict]:
        thresholds, choices = {}, {}
        for j, category in enumerate(MARKETING_CATEGORIES):
            if labels[:, j].min() == labels[:, j].max():
                thresholds[category], choices[category] = NEVER, None
                continue
            choice = choose_thresholds(labels[:, j], scores[:, j], self.config.precision_target,
                                       self.config.recall_target)
            thresholds[category], choices[category] = choice.thresholds, choice
        return thresholds, choices

    def _thresholds(self, labels: np.ndarray, scores: np.ndarray, real_labels: np.ndarray | None,
                    real_scores: np.ndarray | None) -> tuple[dict[str, Thresholds], dict]:
        """Per category: on held-out real rooms when they hold ``min_real_positives`` of its
        positives (review at the best F1, block at the precision target), else on validation
        (the recall and precision targets)."""
        thresholds, choices = self._choose(labels, scores)
        if real_labels is None:
            return thresholds, choices
        for j, category in enumerate(MARKETING_CATEGORIES):
            if real_labels[:, j].sum() >= self.config.min_real_positives:
                choice = best_f1_thresholds(real_labels[:, j], real_scores[:, j], self.config.precision_target)
                thresholds[category], choices[category] = choice.thresholds, choice
        return thresholds, choices

    def _apply_budget(self, thresholds: dict[str, Thresholds], data: MarketingData, splits: Splits,
                      scores: np.ndarray, labels: np.ndarray, held: HeldOutRooms | None,
                      min_rows: int = 50) -> tuple[dict[str, Thresholds], dict]:
        """The review budget: review thresholds are raised until at most ``review_budget`` of
        the clean rows reach review, overall and within each source of clean text (synthetic
        talk, real reviews, titles, ad copy, chat, and the held-out real rooms) with at least
        ``min_rows`` rows. Returns the thresholds and each group's share."""
        sources = None if data.sources is None else data.sources[splits.validation].astype(str)
        if held is not None:
            scores = np.vstack([scores, held.served])
            labels = np.vstack([labels, data.labels[held.rows]])
            sources = np.concatenate([sources if sources is not None else np.full(len(splits.validation), "file"),
                                      np.full(len(held.rows), "held-out real rooms")])
        clean = ~labels.any(axis=1)
        groups = {} if sources is None else {
            str(name): clean & (sources == name) for name in sorted(set(sources[clean]))
            if (clean & (sources == name)).sum() >= min_rows}
        return apply_review_budget(thresholds, scores, MARKETING_CATEGORIES, clean, self.config.review_budget,
                                   groups)

    def _model_only_floor(self, policy: SegmentPolicy, held: HeldOutRooms, matches: list,
                          labels: np.ndarray) -> SegmentPolicy:
        """The lowest floor (at least the configured one) at which the blocks the model would
        make alone (score at a category's block threshold, no rule of that category) on
        held-out real rooms reach ``model_only_block_precision``; never (1.01) when none does."""
        rows = []
        for i, row in enumerate(held.served):
            matched = {m.category for m in matches[i]}
            blocking = [row[j] for j, c in enumerate(MARKETING_CATEGORIES)
                        if c not in matched and row[j] >= policy.thresholds[c].block]
            if blocking:
                rows.append((float(max(blocking)), bool(labels[i].any())))
        for candidate in sorted({policy.model_only_block_floor, *[s for s, _ in rows]}):
            if candidate < policy.model_only_block_floor:
                continue
            kept = [positive for score, positive in rows if score >= candidate]
            if not kept or np.mean(kept) >= self.config.model_only_block_precision:
                return replace(policy, model_only_block_floor=float(candidate))
        return replace(policy, model_only_block_floor=UNREACHABLE)

    def _decision_settings(self, data: MarketingData, splits: Splits, validation: tuple[np.ndarray, np.ndarray],
                           held: HeldOutRooms | None, cutoff: float, matches: dict[int, list]) -> DecisionSettings:
        """Thresholds, the review budget, rule evidence and the model-only floor, chosen on the
        held-out rows ``held`` (and the validation rows where a category has too few of them)."""
        labels, scores = validation
        real_labels = data.labels[held.rows] if held is not None else None
        thresholds, choices = self._thresholds(labels, scores, real_labels, None if held is None else held.served)
        thresholds, budget_shares = self._apply_budget(thresholds, data, splits, scores, labels, held)
        real_matches = [matches[int(i)] for i in held.rows] if held is not None else []
        evidence = measured_rule_evidence(real_matches, real_labels, MARKETING_CATEGORIES) if held is not None else {}
        policy = SegmentPolicy(thresholds, MARKETING_CATEGORIES, cutoff, self.config.model_only_block_floor,
                               {k: v["evidence"] for k, v in evidence.items()})
        if held is not None:
            policy = self._model_only_floor(policy, held, real_matches, real_labels)
        return DecisionSettings(thresholds, choices, budget_shares, evidence, policy)

    def _held_out_figures(self, data: MarketingData, splits: Splits, validation: tuple[np.ndarray, np.ndarray],
                          held: HeldOutRooms, cutoff: float, matches: dict[int, list]
                          ) -> tuple[RealWorldChecks, list[SystemEvaluation], pd.DataFrame]:
        """The served decisions on held-out rooms (the card's headline), cross-fitted: each fold's
        rows are decided by thresholds, budget, rule evidence and floor chosen on the *other*
        folds' held-out rows, so no figure reads a choice made on its own rows. Beside them, the
        ranking metrics of each system on the same rows, and each row's decision (by the sha256
        of its text)."""
        labels = data.labels[held.rows]
        verdicts: list = [None] * len(held.rows)
        for k in range(held.folds):
            inside = held.fold == k
            settings = self._decision_settings(data, splits, validation, held.subset(~inside), cutoff, matches)
            for i in np.flatnonzero(inside):
                verdicts[i] = settings.policy.decide(held.served[i], matches[int(held.rows[i])], float(held.novelty[i]))
        flagged = np.array([v.decision != "allow" for v in verdicts])
        category_flags = np.array([[c in v.labels for c in MARKETING_CATEGORIES] for v in verdicts])
        scores = np.array([v.score for v in verdicts])
        names = sorted({str(f.name) for f, _, real in data.files if real})
        note = (f"Every real labelled row ({len(held.rows):,} rows, {len(set(data.groups[held.rows])):,} groups, "
                f"from {', '.join(names)}) scored by one of {held.folds} runs that never saw its group, then "
                "decided by the served rules (thresholds, caps, lexicon) with every choice (thresholds, review "
                "budget, rule evidence, model-only floor) made on the other folds' rows. Intervals resample whole "
                "groups.")
        checks = heldout_checks(labels.any(axis=1), flagged, scores, data.groups[held.rows].astype(str), labels,
                                category_flags, MARKETING_CATEGORIES, note, self.config.bootstrap_samples)
        lexicon = np.array([[lexicon_scores(matches[int(i)])[c] for c in MARKETING_CATEGORIES] for i in held.rows])
        served_with_rules = np.array([[v.scores[c] for c in MARKETING_CATEGORIES] for v in verdicts])
        no_thresholds = dict.fromkeys(MARKETING_CATEGORIES, NEVER)
        systems = [SystemEvaluation(name, per_category_metrics(labels, values, no_thresholds))
                   for name, values in ((SERVED_SYSTEM + " with rule evidence", served_with_rules),
                                        (SERVED_SYSTEM, held.served), (TRANSFORMER_SYSTEM, held.transformer),
                                        (TFIDF_SYSTEM, np.nan_to_num(held.tfidf)), (LEXICON_SYSTEM, lexicon))]
        segments = pd.DataFrame({
            "sha256": [hashlib.sha256(data.texts[int(i)].encode("utf-8")).hexdigest() for i in held.rows],
            self.group_column: data.groups[held.rows].astype(str),
            "labels": ["|".join(c for c, on in zip(MARKETING_CATEGORIES, row, strict=True) if on) for row in labels],
            "decision": [v.decision for v in verdicts], "flagged_labels": ["|".join(v.labels) for v in verdicts],
            "score": scores, "fold": held.fold})
        return checks, systems, segments

    def _test_systems(self, data: MarketingData, splits: Splits, test_labels: np.ndarray, served: np.ndarray,
                      transformer: np.ndarray, ngram: np.ndarray, thresholds: dict[str, Thresholds],
                      alone: dict[str, Thresholds], ngram_thresholds: dict[str, Thresholds]) -> list[SystemEvaluation]:
        """The served blend, the transformer, TF-IDF and the lexicon on the generated test split."""
        n_boot = self.config.bootstrap_samples
        return [
            SystemEvaluation(SERVED_SYSTEM, per_category_metrics(test_labels, served, thresholds, n_boot)),
            SystemEvaluation(TRANSFORMER_SYSTEM, per_category_metrics(test_labels, transformer, alone)),
            SystemEvaluation(TFIDF_SYSTEM, per_category_metrics(test_labels, np.nan_to_num(ngram), ngram_thresholds)),
            SystemEvaluation(LEXICON_SYSTEM, per_category_metrics(
                test_labels, lexicon_matrix([data.texts[i] for i in splits.test]),
                dict.fromkeys(MARKETING_CATEGORIES, LEXICON_THRESHOLDS))),
        ]

    def _test_decisions(self, model: FalseMarketingModel, data: MarketingData, splits: Splits) -> RealWorldChecks:
        """Served decisions on the (synthetic) test split: clean flag rate, positives caught,
        binary F1, and evasion variants caught."""
        texts = [data.texts[i] for i in splits.test]
        positive = data.labels[splits.test].any(axis=1)
        flags = np.array([a.decision != "allow" for a in model.analyze(texts, spans_from_model=False)])
        checks = file_checks(flags, positive, "test split")
        if data.evasion is not None:
            evaded = data.evasion[splits.test] & positive
            checks.checks.append(rate_check("evasion_caught", "disguised claims (evasion variants) caught",
                                            flags[evaded]))
        return checks

    def _real_world(self, model: FalseMarketingModel, data: MarketingData) -> RealWorldChecks:
        if not self.config.real_checks:
            return missing("the run was configured without them (real_checks=false)")
        return marketing_checks(model, exclude=set(data.texts), review_budget=self.config.review_budget)

    def _quantization_check(self, model: Any, tokenizer: Any, fp32: OnnxEncoder, texts: list[str],
                            labels: np.ndarray, int8_scores: np.ndarray,
                            thresholds: dict[str, Thresholds]) -> dict[str, Any]:
        torch_scores = predict_torch(model, tokenizer, texts)
        fp32_scores = fp32.predict(texts)
        f1_change = {}
        for j, category in enumerate(MARKETING_CATEGORIES):
            if not labels[:, j].any():
                continue
            review = thresholds[category].review
            before = binary_metrics(labels[:, j], torch_scores[:, j], thresholds[category]).review.f1
            after = binary_metrics(labels[:, j], int8_scores[:, j], thresholds[category]).review.f1
            f1_change[category] = {"threshold": review, "f1_pytorch": before, "f1_int8": after,
                                   "change": after - before}
        return {
            "rows": len(texts),
            "max_abs_diff_fp32_vs_pytorch": float(np.abs(fp32_scores - torch_scores).max()),
            "max_abs_diff_int8_vs_pytorch": float(np.abs(int8_scores - torch_scores).max()),
            "mean_abs_diff_int8_vs_pytorch": float(np.abs(int8_scores - torch_scores).mean()),
            "p99_abs_diff_int8_vs_pytorch": float(np.quantile(np.abs(int8_scores - torch_scores), 0.99)),
            "f1_at_review_threshold": f1_change,
        }

    @staticmethod
    def _per_script(data: MarketingData, splits: Splits, labels: np.ndarray, scores: np.ndarray,
                    thresholds: dict[str, Thresholds], n_boot: int,
                    min_rows: int = 20) -> dict[str, dict[str, BinaryMetrics]]:
        """The served system's per-category test metrics (with bootstrap intervals) for each
        script with enough rows."""
        scripts = np.array([script_of(data.texts[i]) for i in splits.test])
        return {script: per_category_metrics(labels[scripts == script], scores[scripts == script], thresholds, n_boot)
                for script in sorted(set(scripts.tolist())) if (scripts == script).sum() >= min_rows}

    def _manifest(self, data: MarketingData, thresholds: dict[str, Thresholds], metrics: ModelMetrics,
                  baselines: dict[str, BaselineSystem], serving_params: dict[str, Any]) -> Manifest:
        files = [training_file(path, rows, f"real labelled, held out by {self.group_column}" if real else "generated")
                 for path, rows, real in data.files] or (
            [training_file(data.source, len(data.texts))] if data.source else [])
        return Manifest(
            model_name=MODEL_NAME, version=new_version(),
            task="multi-label classification of livestream transcript segments",
            feature_set=FeatureSetRef(name=FEATURE_SET, version=1, features=["text"]),
            label_map={str(i): c for i, c in enumerate(MARKETING_CATEGORIES)},
            thresholds=thresholds, metrics=metrics, baselines=baselines, serving_params=serving_params,
            lineage=Lineage(training_files=files, git_commit=git_commit(),
                            parameters=self.config.model_dump(), library_versions=library_versions(),
                            seed=self.config.seed, base_model=self._base_lineage()),
        )

    def _base_lineage(self) -> dict[str, Any] | None:
        """The fine-tuned checkpoint: folder, sha256 of its base manifest, its corpus."""
        if not self.config.base_model:
            return None
        folder = Path(self.config.base_model)
        base = verify_base_model(folder)
        manifest_file = folder / BASE_MANIFEST
        return {"folder": str(folder), "base_manifest_sha256": sha256_file(manifest_file) if base else None,
                "corpus": base["corpus"] if base else None,
                "pretraining": {k: base["training"][k] for k in ("history", "train_seconds")} if base else None}


def train_and_register(data: MarketingData, config: FalseMarketingConfig, registry: ModelRegistry,
                       progress: Progress | None = None, group_column: str = "room") -> MarketingTrainingResult:
    """Train, write the card and register as candidate."""
    from kinds.false_marketing.card import build_marketing_card

    owner = registry.settings.owner
    with tempfile.TemporaryDirectory(prefix="shopguard-work-") as tmp:
        trainer = FalseMarketingTrainer(config, progress, registry.settings.device, group_column)
        result = trainer.fit(data, Path(tmp))
        result.manifest = register_model(
            registry, result.model, result.manifest,
            lambda folder, previous: build_marketing_card(result, data, folder, owner, previous),
            progress or no_progress, TrainingRows.of(text_keys(data.texts), TEXT_IDENTITY))
    if result.heldout_segments is not None:
        out = heldout_segments_file(registry.settings.home, result.manifest.tag)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.heldout_segments.to_parquet(out, index=False)
    return result


def heldout_segments_file(home: Path, tag: str) -> Path:
    """Where a trained version's held-out real decisions are kept (in the home, not the bundle:
    they derive from data that never ships)."""
    return home / "evaluations" / tag.replace(":", "-") / "heldout_segments.parquet"


def evaluate_bundle(bundle: LoadedBundle, data: MarketingData) -> dict[str, dict[str, BinaryMetrics]]:
    """Per-category metrics on any labelled file: the served scores, the transformer alone
    and both baselines (each at its own thresholds from the manifest)."""
    model = FalseMarketingModel.from_bundle(bundle)
    normalized = normalize_many(list(data.texts))
    transformer = model.encoder.predict(normalized)
    ngram = model.tfidf_matrix(normalized)
    served = blend(transformer, ngram, model.transformer_weight)

    def baseline(name: str) -> dict[str, Thresholds]:
        system = bundle.manifest.baselines.get(name)
        return {c: (system.thresholds.get(c, NEVER) if system else NEVER) for c in MARKETING_CATEGORIES}

    out = {SERVED_SYSTEM: per_category_metrics(data.labels, served, model.thresholds),
           TRANSFORMER_SYSTEM: per_category_metrics(data.labels, transformer, baseline(TRANSFORMER_SYSTEM))}
    if ngram is not None:
        out[TFIDF_SYSTEM] = per_category_metrics(data.labels, np.nan_to_num(ngram), baseline(TFIDF_SYSTEM))
    out[LEXICON_SYSTEM] = per_category_metrics(
        data.labels, lexicon_matrix(data.texts), dict.fromkeys(MARKETING_CATEGORIES, LEXICON_THRESHOLDS))
    return out
