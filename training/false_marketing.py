"""The ``false-marketing`` pipeline: multi-label transformer encoder over normalized
transcript segments, two baselines on the same split (lexicon only; TF-IDF character
n-grams + logistic regression), per-category thresholds, ONNX export with int8
quantization checked against PyTorch, model card and registration."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import AliasChoices, Field

from features.decision import Thresholds
from features.marketing import MARKETING_CATEGORIES, lexicon_scores, match_lexicon
from features.novelty import BigramNovelty
from features.text import normalize_many, script_of
from features.text_scorer import CharNgramScorer
from model_registry.bundle import FeatureSetRef, Lineage, Manifest
from model_registry.kinds import FALSE_MARKETING
from model_registry.metrics import BaselineSystem, ModelMetrics, MultiLabelMetrics
from model_registry.registry import LoadedBundle, ModelRegistry, new_version
from model_registry.runtimes.marketing import (
    MODEL_ONLY_BLOCK_FLOOR,
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    TOKENIZER_FILE,
    FalseMarketingModel,
    OnnxEncoder,
    blend,
    tfidf_scores,
)
from model_registry.settings import Device
from training.data.loaders import DataValidationError, read_table
from training.evaluation import BinaryMetrics, binary_metrics
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
from training.real_checks import RealWorldChecks, file_checks, marketing_checks, missing, rate_check
from training.splits import Splits
from training.text_encoder import (
    build_char_tokenizer,
    build_encoder,
    export_onnx,
    load_base_model,
    mean_average_precision,
    predict_torch,
    quantize_int8,
    torch_device,
    train_encoder,
)
from training.thresholds import UNREACHABLE, ThresholdChoice, apply_review_budget, choose_thresholds

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
    num_threads: int = Field(0, ge=0, validation_alias=AliasChoices("num_threads", "torch_threads"),
                             description="PyTorch threads (0: default); `torch_threads` is accepted too")
    base_model: str | None = Field(None, description="local checkpoint folder to fine-tune")
    hidden_size: int = Field(128, ge=16)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(256, ge=16)
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    patience: int = Field(2, ge=1)
    max_train_seconds: float | None = Field(None, gt=0)
    tfidf_hash_features: int = Field(2**17, ge=2**10)
    blend_weights: list[float] = Field(
        default_factory=lambda: [1.0, 0.75, 0.5, 0.25],
        description="transformer weights tried for the served blend with TF-IDF; chosen on validation")
    tfidf_regularization_c: float = Field(4.0, gt=0)
    review_budget: float = Field(0.05, gt=0, lt=1, description=(
        "largest share of ordinary (clean) validation traffic the model may send to review"))
    novelty_quantile: float = Field(0.99, gt=0, le=1, description=(
        "validation novelty quantile above which model-only evidence cannot block"))
    real_checks: bool = Field(True, description="run the real-world checks on ../shared/data")
    model_only_block_floor: float = Field(MODEL_ONLY_BLOCK_FLOOR, ge=0, le=1, description=(
        "evidence from the model alone never blocks below this score (it goes to review)"))


@dataclass
class MarketingData:
    """Segments and their multi-label truth (rows x ``MARKETING_CATEGORIES``)."""

    texts: list[str]
    labels: np.ndarray
    source: Path | None = None
    known_categories: np.ndarray | None = None  # 0/1 per category; None = all labelled
    evasion: np.ndarray | None = None  # True where the generator disguised a claim
    sources: np.ndarray | None = None  # where each row came from (generator's `source`)


@dataclass
class SystemEvaluation:
    """One system's per-category test metrics."""

    name: str
    per_category: dict[str, BinaryMetrics]


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


class FalseMarketingTrainer:
    """Trains the encoder and the baselines, evaluates and exports; ``fit`` returns the
    served runtime and its manifest (``train_and_register`` registers them)."""

    def __init__(self, config: FalseMarketingConfig, progress: Progress | None = None,
                 device: Device = "cpu") -> None:
        self.config = config
        self.device = device
        self._progress = progress or no_progress

    def _fit_tfidf(self, texts: list[str], labels: np.ndarray) -> dict[str, CharNgramScorer]:
        """One TF-IDF scorer per category with both classes in training."""
        features = CharTfidf.fit(texts, self.config.tfidf_hash_features)
        return {category: fit_char_scorer(features, labels[:, j], self.config.tfidf_regularization_c)
                for j, category in enumerate(MARKETING_CATEGORIES) if labels[:, j].min() != labels[:, j].max()}

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

    def _train_encoder(self, part: dict[str, list[str]], labels: dict[str, np.ndarray], data: MarketingData,
                       work: Path) -> tuple[Any, Any, dict[str, Any]]:
        """Build (or load) and train the encoder; save its checkpoint and ONNX files in ``work``."""
        config = self.config
        if config.base_model:
            tokenizer, model = load_base_model(Path(config.base_model), len(MARKETING_CATEGORIES))
        else:
            tokenizer = build_char_tokenizer(part["train"])
            model = build_encoder(len(tokenizer), len(MARKETING_CATEGORIES), config.hidden_size,
                                  config.layers, config.heads, config.intermediate_size,
                                  config.dropout, config.seed)
        device = torch_device(self.device)
        self._progress(f"training the encoder on {device} "
                       f"({sum(p.numel() for p in model.parameters()):,} parameters)")
        training = train_encoder(
            model, tokenizer, (part["train"], labels["train"]), (part["validation"], labels["validation"]),
            epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
            weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio, patience=config.patience,
            seed=config.seed, device=device, max_seconds=config.max_train_seconds, progress=self._progress,
            known_categories=data.known_categories)
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        self._progress("exporting to ONNX and quantizing to int8")
        export_onnx(model, work / ONNX_FP32_FILE)
        quantize_int8(work / ONNX_FP32_FILE, work / ONNX_INT8_FILE)
        return model, tokenizer, training

    def fit(self, data: MarketingData, work: Path) -> MarketingTrainingResult:
        """Train, writing the encoder files into ``work`` (a folder that must outlive the
        returned runtime), and evaluate."""
        import torch

        config = self.config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self._progress(f"normalizing {len(data.texts):,} segments")
        texts = normalize_many(list(data.texts))
        y = data.labels
        splits = split_segments(y, config)
        part = {name: [texts[i] for i in getattr(splits, name)] for name in ("train", "validation", "test")}
        labels = {name: y[getattr(splits, name)] for name in ("train", "validation", "test")}
        self._progress(f"split: {splits.sizes()}")
        model, tokenizer, training = self._train_encoder(part, labels, data, work)
        int8 = OnnxEncoder(work / ONNX_INT8_FILE, work / TOKENIZER_FILE)
        fp32 = OnnxEncoder(work / ONNX_FP32_FILE, work / TOKENIZER_FILE)
        transformer = {name: int8.predict(part[name]) for name in ("validation", "test")}
        self._progress("baselines: lexicon and TF-IDF + logistic regression")
        tfidf_scorers = self._fit_tfidf(part["train"], labels["train"])
        ngram = {name: tfidf_scores(tfidf_scorers, part[name], MARKETING_CATEGORIES)
                 for name in ("validation", "test")}
        weight, blend_search = choose_blend_weight(labels["validation"], transformer["validation"],
                                                   ngram["validation"], config.blend_weights)
        served = {name: blend(transformer[name], ngram[name], weight) for name in ("validation", "test")}
        thresholds, choices = self._choose(labels["validation"], served["validation"])
        thresholds, budget_shares = self._apply_budget(thresholds, served["validation"], labels["validation"],
                                                       None if data.sources is None else data.sources[splits.validation])
        alone, _ = self._choose(labels["validation"], transformer["validation"])
        ngram_thresholds, _ = self._choose(labels["validation"], np.nan_to_num(ngram["validation"]))
        quantization = self._quantization_check(model, tokenizer, fp32, part["validation"],
                                                labels["validation"], transformer["validation"], alone)
        test_labels, n_boot = labels["test"], config.bootstrap_samples
        systems = [
            SystemEvaluation(SERVED_SYSTEM, per_category_metrics(test_labels, served["test"], thresholds, n_boot)),
            SystemEvaluation(TRANSFORMER_SYSTEM, per_category_metrics(test_labels, transformer["test"], alone)),
            SystemEvaluation(TFIDF_SYSTEM, per_category_metrics(test_labels, np.nan_to_num(ngram["test"]),
                                                                ngram_thresholds)),
            SystemEvaluation(LEXICON_SYSTEM, per_category_metrics(
                test_labels, lexicon_matrix([data.texts[i] for i in splits.test]),
                dict.fromkeys(MARKETING_CATEGORIES, LEXICON_THRESHOLDS))),
        ]
        baseline_thresholds = {TRANSFORMER_SYSTEM: alone, TFIDF_SYSTEM: ngram_thresholds,
                               LEXICON_SYSTEM: dict.fromkeys(MARKETING_CATEGORIES, LEXICON_THRESHOLDS)}
        per_script = self._per_script(data, splits, test_labels, served["test"], thresholds, n_boot)
        self._progress("novelty signal, decisions on test and real-world checks")
        novelty = BigramNovelty.fit(part["train"])
        cutoff = float(np.quantile(novelty.score(part["validation"]), config.novelty_quantile))
        serving_params = {"transformer_weight": weight, "blend_search": blend_search,
                          "novelty_cutoff": cutoff, "novelty_quantile": config.novelty_quantile,
                          "model_only_block_floor": config.model_only_block_floor}
        runtime = FalseMarketingModel(int8, thresholds, MARKETING_CATEGORIES, tfidf=tfidf_scorers,
                                      transformer_weight=weight, novelty=novelty, novelty_cutoff=cutoff,
                                      model_only_block_floor=config.model_only_block_floor)
        test_decisions = self._test_decisions(runtime, data, splits)
        real_world = self._real_world(runtime, data)
        metrics = ModelMetrics(
            test=MultiLabelMetrics(per_category=systems[0].per_category),
            slices={"script": {k: MultiLabelMetrics(per_category=v) for k, v in per_script.items()}},
            real_world=real_world, test_decisions=test_decisions,
            details={"quantization": quantization, "training": training, "split_rows": splits.sizes(),
                     "review_budget": {"budget": config.review_budget,
                                       "validation_clean_share_flagged": budget_shares["all clean"],
                                       "per_source": budget_shares}})
        baselines = {s.name: BaselineSystem(thresholds=baseline_thresholds[s.name],
                                            test=MultiLabelMetrics(per_category=s.per_category))
                     for s in systems[1:]}
        manifest = self._manifest(data, thresholds, metrics, baselines, serving_params)
        runtime.tag = manifest.tag
        return MarketingTrainingResult(runtime, manifest, thresholds, choices, systems, quantization, training,
                                       splits, test_labels, served["test"], real_world, test_decisions)

    def _apply_budget(self, thresholds: dict[str, Thresholds], scores: np.ndarray, labels: np.ndarray,
                      sources: np.ndarray | None, min_rows: int = 50) -> tuple[dict[str, Thresholds], dict]:
        """The review budget on the real-text mixture: review thresholds are raised until at
        most ``review_budget`` of the clean validation rows reach review, overall and within
        each source of clean text (synthetic talk, real reviews, titles, ad copy, chat) with at
        least ``min_rows`` rows. Returns the thresholds and each group's share."""
        clean = ~labels.any(axis=1)
        groups = {} if sources is None else {
            str(name): clean & (sources == name) for name in sorted(set(sources[clean]))
            if (clean & (sources == name)).sum() >= min_rows}
        return apply_review_budget(thresholds, scores, MARKETING_CATEGORIES, clean, self.config.review_budget,
                                   groups)

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
        files = [training_file(data.source, len(data.texts))] if data.source else []
        return Manifest(
            model_name=MODEL_NAME, version=new_version(),
            task="multi-label classification of livestream transcript segments",
            feature_set=FeatureSetRef(name=FEATURE_SET, version=1, features=["text"]),
            label_map={str(i): c for i, c in enumerate(MARKETING_CATEGORIES)},
            thresholds=thresholds, metrics=metrics, baselines=baselines, serving_params=serving_params,
            lineage=Lineage(training_files=files, git_commit=git_commit(),
                            parameters=self.config.model_dump(), library_versions=library_versions(),
                            seed=self.config.seed),
        )


def train_and_register(data: MarketingData, config: FalseMarketingConfig, registry: ModelRegistry,
                       progress: Progress | None = None) -> MarketingTrainingResult:
    """Train, write the card and register as candidate."""
    from training.marketing_card import build_marketing_card

    owner = registry.settings.owner
    with tempfile.TemporaryDirectory(prefix="shopguard-work-") as tmp:
        result = FalseMarketingTrainer(config, progress, registry.settings.device).fit(data, Path(tmp))
        result.manifest = register_model(
            registry, result.model, result.manifest,
            lambda folder, previous: build_marketing_card(result, data, folder, owner, previous),
            progress or no_progress)
    return result


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
