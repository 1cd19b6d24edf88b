"""The ``false-marketing`` pipeline: multi-label transformer encoder over normalized
transcript segments, two baselines on the same split (lexicon only; TF-IDF character
n-grams + logistic regression), per-category thresholds, ONNX export with int8
quantization checked against PyTorch, model card and registration.

The trainer orchestrates parts kept apart (as setfit keeps model, arguments and trainer):
``config`` (``FalseMarketingConfig``), ``data`` (loading, the split, each run's rows),
``fitting`` (encoder, TF-IDF, novelty; held-out room folds in processes), ``decisions``
(blend weight, thresholds, review budget, rule evidence, model-only floor) and ``evaluation``
(every figure); ``card`` renders the card from ``card_template.md``. Their public names are
importable from here too."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.decisions import Thresholds
from common.settings import Device
from features.marketing import MARKETING_CATEGORIES, match_lexicon
from features.text import normalize_many
from kinds.false_marketing.blend import blend, tfidf_scores, windowed_blend
from kinds.false_marketing.config import (
    FEATURE_SET,
    LEXICON_SYSTEM,
    LEXICON_THRESHOLDS,
    MODEL_NAME,
    NEVER,
    SERVED_SYSTEM,
    TFIDF_SYSTEM,
    TRANSFORMER_SYSTEM,
    FalseMarketingConfig,
)
from kinds.false_marketing.data import (
    MarketingData,
    TrainingRowsOf,
    load_marketing_file,
    load_training_data,
    segment_strata,
    split_segments,
    training_rows,
)
from kinds.false_marketing.decisions import DecisionChooser, DecisionSettings, choose_blend_weight
from kinds.false_marketing.encoder import max_by_owner
from kinds.false_marketing.evaluation import (
    Evaluator,
    SystemEvaluation,
    lexicon_matrix,
    per_category_metrics,
)
from kinds.false_marketing.fitting import (
    NO_CHAT,
    Chat,
    EncoderJob,
    FittedParts,
    FoldJob,
    HeldOutRooms,
    PartsFitter,
    available_cores,
    off_platform_chat,
)
from kinds.false_marketing.runtime import FalseMarketingModel
from kinds.false_marketing.sentences import sentences_by_owner
from registry.bundle import FeatureSetRef, Lineage, Manifest, sha256_file
from registry.metrics import BaselineSystem, ModelMetrics, MultiLabelMetrics
from registry.store import LoadedBundle, ModelRegistry, new_version
from training.classification_metrics import BinaryMetrics
from training.data.real_text import INGAME_TRAIN_FILE, shared_data_dir, unseen_train_part
from training.lineage import git_commit, library_versions, training_file
from training.pipeline import Progress, no_progress, register_model
from training.pretrain import BASE_MANIFEST, verify_base_model
from training.real_checks import RealWorldChecks
from training.row_identity import TEXT_IDENTITY, TrainingRows, text_keys
from training.splits import Splits
from training.thresholds import ThresholdChoice

__all__ = [
    "FEATURE_SET", "LEXICON_SYSTEM", "LEXICON_THRESHOLDS", "MARKETING_CATEGORIES", "MODEL_NAME", "NEVER",
    "SERVED_SYSTEM", "TFIDF_SYSTEM", "TRANSFORMER_SYSTEM", "DecisionSettings", "EncoderJob", "FalseMarketingConfig",
    "FalseMarketingTrainer", "FittedParts", "FoldJob", "HeldOutRooms", "MarketingData", "MarketingTrainingResult",
    "SystemEvaluation", "available_cores", "choose_blend_weight", "evaluate_bundle", "heldout_segments_file",
    "lexicon_matrix", "load_marketing_file", "load_training_data", "per_category_metrics", "segment_strata",
    "split_segments", "train_and_register",
]


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
    rule_evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Each held-out real row's cross-fitted decision (sha256 of the text, never the text):
    # what ``shopguard enforcement rooms`` replays as whole broadcasts.
    heldout_segments: pd.DataFrame | None = None
    # The real in-game chat the off_platform TF-IDF scorer also read (normalized texts).
    chat_texts: list[str] = field(default_factory=list)



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
        self.fitter = PartsFitter(config, self._progress, device)
        self.decisions = DecisionChooser(config)
        self.evaluator = Evaluator(config, group_column)
        self.chat: Chat = NO_CHAT

    def _training_rows(self, data: MarketingData, rows: np.ndarray, texts: list[str]) -> TrainingRowsOf:
        """``data.training_rows`` under this run's config."""
        return training_rows(self.config, data, rows, texts)

    def _held_out_rooms(self, data: MarketingData, texts: list[str], train_rows: np.ndarray,
                        validation: tuple[list[str], np.ndarray], work: Path,
                        served: EncoderJob | None = None) -> tuple[HeldOutRooms | None, dict[str, Any] | None]:
        """``PartsFitter.held_out_rooms``: out-of-fold scores of the real rows (and the served encoder)."""
        return self.fitter.held_out_rooms(data, texts, train_rows, validation, work, served)

    def _parts_from_files(self, job: EncoderJob, training: dict[str, Any], torch_model: Any = None,
                          tokenizer: Any = None) -> FittedParts:
        """``PartsFitter.parts_from_files``: the parts of a trained encoder's files."""
        return self.fitter.parts_from_files(job, training, torch_model, tokenizer)

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
        self.chat = self._off_platform_chat(data, texts)
        served = EncoderJob(training_rows(config, data, rows, texts), validation, work,
                            select_best=not data.real.any(), label="served", chat=self.chat)
        held, training = self.fitter.held_out_rooms(data, texts, splits.train, validation, work, served, self.chat)
        final = self.fitter.parts_from_files(served, training)
        return self._evaluate(data, splits, part, labels, final, held)

    def _evaluate(self, data: MarketingData, splits: Splits, part: dict[str, list[str]],
                  labels: dict[str, np.ndarray], final: FittedParts, held: HeldOutRooms | None
                  ) -> MarketingTrainingResult:
        """Blend, thresholds, caps and every figure of the served model (module docstring)."""
        config = self.config
        transformer, ngram = {}, {}
        for name in ("validation", "test"):
            transformer[name], ngram[name] = final.scores(part[name])
        weight, blend_search = self.decisions.blend_weight(data, held, labels["validation"], transformer["validation"],
                                                  ngram["validation"])
        space = config.blend_space
        served = {name: self._served_scores(final, [data.texts[i] for i in getattr(splits, name)], weight)
                  for name in ("validation", "test")}
        alone, _ = self.decisions.choose(labels["validation"], transformer["validation"])
        ngram_thresholds, _ = self.decisions.choose(labels["validation"], np.nan_to_num(ngram["validation"]))
        quantization = self.evaluator.quantization_check(final.torch_model, final.tokenizer, final.fp32, part["validation"],
                                                labels["validation"], transformer["validation"], alone)
        self._progress("novelty signal, rule evidence, decisions on held-out rooms, test and real-world checks")
        novelty_pool = final.novelty.score(part["validation"])
        if held is not None:
            novelty_pool = np.concatenate([novelty_pool, held.novelty])
        cutoff = float(np.quantile(novelty_pool, config.novelty_quantile))
        matches = {int(i): match_lexicon(data.texts[i]) for i in held.rows} if held else {}
        validation = (labels["validation"], served["validation"])
        unseen = self._unseen_clean(data, final, weight)
        settings = self.decisions.settings(data, splits, validation, held, cutoff, matches, unseen)
        thresholds, choices, evidence, policy = settings.thresholds, settings.choices, settings.evidence, settings.policy
        runtime = FalseMarketingModel(final.int8, thresholds, MARKETING_CATEGORIES, tfidf=final.tfidf,
                                      transformer_weight=weight, blend_space=space, novelty=final.novelty,
                                      novelty_cutoff=cutoff,
                                      model_only_block_floor=policy.model_only_block_floor,
                                      rule_evidence=policy.rule_evidence,
                                      review_only_rules=sorted(policy.review_only_rules))
        real_heldout, heldout_systems, heldout_segments = (
            self.evaluator.held_out_figures(data, splits, validation, held, cutoff, matches, unseen)
            if held else (None, [], None))
        budget_shares = settings.budget_shares
        systems = self.evaluator.test_systems(data, splits, labels["test"], served["test"], transformer["test"],
                                     ngram["test"], thresholds, alone, ngram_thresholds)
        serving_params = {"transformer_weight": weight, "blend_space": space, "blend_search": blend_search,
                          "blend_chosen_on": "held-out real rooms" if held else "validation",
                          "novelty_cutoff": cutoff, "novelty_quantile": config.novelty_quantile,
                          "model_only_block_floor": policy.model_only_block_floor,
                          "rule_evidence": policy.rule_evidence,
                          "review_only_rules": sorted(policy.review_only_rules)}
        test_decisions = self.evaluator.test_decisions(runtime, data, splits)
        real_world = self.evaluator.real_world(runtime, data)
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
            slices={"script": {k: MultiLabelMetrics(per_category=v) for k, v in self.evaluator.per_script(
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
                                       real_heldout, heldout_systems, evidence, heldout_segments, self.chat[0])


    def _unseen_clean(self, data: MarketingData, final: FittedParts, weight: float) -> dict[str, np.ndarray]:
        """The served blend on clean real text of the train part that the training file does not
        hold, by source (``real_text.unseen_train_part``): the review budget is held on them too.
        Empty without ../shared/data or with ``real_checks`` off."""
        root = shared_data_dir() if self.config.real_checks else None
        if root is None:
            return {}
        self._progress("scoring unseen clean real text (ad copy, reviews, titles) for the review budget")
        return {name: self._served_scores(final, texts, weight)
                for name, texts in unseen_train_part(root, set(data.texts)).items() if texts}

    def _served_scores(self, final: FittedParts, texts: list[str], weight: float) -> np.ndarray:
        """The served blend (n, 8) of raw texts, as the runtime scores them: sentence by
        sentence (``sentences``), per category the highest."""
        owners, sentences = sentences_by_owner(texts)
        scores = windowed_blend(final.int8.predict_pieces, lambda pieces: tfidf_scores(final.tfidf, pieces,
                                MARKETING_CATEGORIES), normalize_many(sentences), weight, self.config.blend_space)
        return max_by_owner(scores, owners, len(texts))

    def _off_platform_chat(self, data: MarketingData, texts: list[str]) -> Chat:
        """The in-game chat rows of the off_platform TF-IDF scorer (``off_platform_chat_rows``),
        none of them a text of the file (any split); none when the file does not label
        off_platform (its zeros there mean "unknown", and chat would read them as clean)."""
        known = data.known_categories
        column = MARKETING_CATEGORIES.index("off_platform")
        if known is not None and not np.asarray(known)[..., column].any():
            return NO_CHAT
        chat = off_platform_chat(set(texts), self.config.off_platform_chat_rows, self.config.seed)
        if chat[0]:
            self._progress(f"{len(chat[0]):,} real in-game chat rows for the off_platform TF-IDF scorer")
        return chat

    def _manifest(self, data: MarketingData, thresholds: dict[str, Thresholds], metrics: ModelMetrics,
                  baselines: dict[str, BaselineSystem], serving_params: dict[str, Any]) -> Manifest:
        files = [training_file(path, rows, f"real labelled, held out by {self.group_column}" if real else "generated")
                 for path, rows, real in data.files] or (
            [training_file(data.source, len(data.texts))] if data.source else [])
        root = shared_data_dir()
        if self.chat[0] and root is not None:
            files.append(training_file(root / INGAME_TRAIN_FILE, len(self.chat[0]),
                                       "real in-game chat, off_platform TF-IDF scorer only"))
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
            progress or no_progress, TrainingRows.of(text_keys([*data.texts, *result.chat_texts]), TEXT_IDENTITY))
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
    served = blend(transformer, ngram, model.transformer_weight, model.blend_space)

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
