"""The ``listing-quality`` training pipeline: split, features, LightGBM, thresholds,
evaluation, card, registration. Config, trainer and result are separate objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.model_selection import StratifiedKFold

from common.decisions import DEFAULT_THRESHOLD_KEY
from features.text_scorer import CharNgramScorer
from kinds import LISTING_QUALITY
from kinds.listing_quality.card import build_listing_card
from kinds.listing_quality.features import (
    LISTING_FEATURE_SET,
    ListingFeatures,
    ListingFeatureState,
    build_listing_features,
    fit_category_medians,
)
from kinds.listing_quality.record import LISTING_COLUMNS, LISTING_LABEL_COLUMN, ListingRecord
from kinds.listing_quality.runtime import ListingQualityModel
from registry.bundle import FeatureSetRef, Lineage, Manifest
from registry.metrics import ModelMetrics
from registry.store import ModelRegistry, new_version
from training.boosting import train_binary_lightgbm
from training.classification_metrics import BinaryMetrics, binary_metrics, sliced_metrics
from training.data.loaders import check_bounds, read_table, validate_columns
from training.lineage import git_commit, library_versions, training_file
from training.pipeline import (
    BaseTrainingConfig,
    CharTfidf,
    Progress,
    fit_char_scorer,
    no_progress,
    register_model,
    score_tfidf_rows,
    split_rows,
)
from training.real_checks import RealWorldChecks, listing_checks, missing
from training.row_identity import TEXT_IDENTITY, TrainingRows, text_keys
from training.splits import Splits
from training.thresholds import ThresholdChoice, choose_thresholds

MODEL_NAME = LISTING_QUALITY.name


class ListingQualityConfig(BaseTrainingConfig):
    """Parameters of a listing-quality training run. Unknown keys are rejected."""

    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_data_in_leaf: int = Field(40, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    num_boost_round: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(50, ge=1)
    text_hash_features: int = Field(2**18, ge=2**10)
    text_ngram_max: int = Field(3, ge=1, le=5)
    text_regularization_c: float = Field(4.0, gt=0)
    text_oof_folds: int = Field(5, ge=2)
    review_budget: float = Field(0.05, gt=0, lt=1, description=(
        "largest share of ordinary (acceptable) validation listings that may go to review"))
    real_checks: bool = Field(True, description="run the real-world checks on ../shared/data")


@dataclass
class ListingTrainingResult:
    """What a run produced: the model, its manifest and the metrics behind its card."""

    model: ListingQualityModel
    manifest: Manifest
    threshold_choice: ThresholdChoice
    test_metrics: BinaryMetrics
    per_category: dict[str, BinaryMetrics]
    test_scores: np.ndarray
    test_frame: pd.DataFrame
    real_world: RealWorldChecks


class ListingQualityTrainer:
    """Trains, evaluates and registers a listing-quality model."""

    def __init__(self, config: ListingQualityConfig, registry: ModelRegistry | None = None,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.registry = registry
        self._progress = progress or no_progress

    # -- steps -----------------------------------------------------------------------------
    def _fit_text_scorer(self, texts: list[str], labels: np.ndarray) -> tuple[CharNgramScorer, np.ndarray]:
        """Fit the text scorer on training texts; return it and out-of-fold training scores
        (so the tree model never sees a text score fit on its own row)."""
        features = CharTfidf.fit(texts, self.config.text_hash_features, self.config.text_ngram_max)
        c = self.config.text_regularization_c
        oof = np.zeros(len(texts))
        folds = StratifiedKFold(self.config.text_oof_folds, shuffle=True, random_state=self.config.seed)
        for fold_train, fold_out in folds.split(np.zeros(len(labels)), labels):
            oof[fold_out] = score_tfidf_rows(fit_char_scorer(features, labels, c, fold_train),
                                             features.matrix[fold_out])
        return fit_char_scorer(features, labels, c), oof

    def _train_booster(self, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray,
                       val_y: np.ndarray) -> lgb.Booster:
        params = {
            "learning_rate": self.config.learning_rate, "num_leaves": self.config.num_leaves,
            "min_data_in_leaf": self.config.min_data_in_leaf,
            "feature_fraction": self.config.feature_fraction, "seed": self.config.seed,
            "num_threads": self.config.num_threads,
        }
        return train_binary_lightgbm(
            params, (train_x, train_y), (val_x, val_y), LISTING_FEATURE_SET.features,
            LISTING_FEATURE_SET.categorical, self.config.num_boost_round,
            self.config.early_stopping_rounds,
        )

    # -- the run ---------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, source: Path | None = None) -> ListingTrainingResult:
        """Train on a validated frame (see ``load_listing_file``); register if a registry
        was given."""
        config = self.config
        labels = frame[LISTING_LABEL_COLUMN].to_numpy().astype(int)
        splits = split_rows(labels, config, LISTING_LABEL_COLUMN)
        parts = {name: frame.iloc[getattr(splits, name)].reset_index(drop=True)
                 for name in ("train", "validation", "test")}
        self._progress(f"split: {', '.join(f'{k} {len(v):,}' for k, v in parts.items())}")

        medians = fit_category_medians(parts["train"]["category"], parts["train"]["price"])
        untrained = ListingFeatureState(medians, text_scorer=None)
        self._progress("building features (text normalization, lexicons)")
        train_features = build_listing_features(parts["train"], untrained)
        self._progress("fitting the text scorer (char n-grams, out-of-fold)")
        scorer, oof = self._fit_text_scorer(train_features.texts, labels[splits.train])
        state = ListingFeatureState(medians, scorer)
        text_column = LISTING_FEATURE_SET.features.index("text_score")
        train_x = train_features.matrix.copy()
        train_x[:, text_column] = oof
        featured: dict[str, ListingFeatures] = {
            name: build_listing_features(parts[name], state) for name in ("validation", "test")
        }
        self._progress("training LightGBM with early stopping on validation")
        booster = self._train_booster(train_x, labels[splits.train],
                                      featured["validation"].matrix, labels[splits.validation])
        val_scores = booster.predict(featured["validation"].matrix)
        choice = choose_thresholds(labels[splits.validation], val_scores, config.precision_target,
                                   config.recall_target, review_budget=config.review_budget)
        model = ListingQualityModel(booster, state, np.nanmedian(train_x, axis=0), choice.thresholds)

        self._progress("evaluating on test")
        test_y = labels[splits.test]
        test_scores = model.predict_matrix(featured["test"].matrix)
        test_metrics = binary_metrics(test_y, test_scores, choice.thresholds, config.bootstrap_samples)
        per_category = sliced_metrics(test_y, test_scores, parts["test"]["category"], choice.thresholds,
                                      config.bootstrap_samples)
        self._progress("real-world checks on held-out real titles")
        real_world = (listing_checks(model, exclude=set(frame["title"].astype(str))) if config.real_checks
                      else missing("the run was configured without them (real_checks=false)"))
        manifest = self._manifest(frame, source, splits, choice, test_metrics, per_category, booster,
                                  real_world)
        model.tag = manifest.tag
        result = ListingTrainingResult(model, manifest, choice, test_metrics, per_category,
                                       test_scores, parts["test"], real_world)
        if self.registry is not None:
            owner = self.registry.settings.owner
            result.manifest = register_model(
                self.registry, model, manifest,
                lambda folder, previous: build_listing_card(result, labels, splits, folder, owner, previous),
                self._progress, TrainingRows.of(text_keys(frame["title"]), TEXT_IDENTITY))
        return result

    def _manifest(self, frame: pd.DataFrame, source: Path | None, splits: Splits,
                  choice: ThresholdChoice, test_metrics: BinaryMetrics,
                  per_category: dict[str, BinaryMetrics], booster: lgb.Booster,
                  real_world: RealWorldChecks) -> Manifest:
        files = [training_file(source, len(frame))] if source is not None else []
        return Manifest(
            model_name=MODEL_NAME,
            version=new_version(),
            task="binary classification: is_inferior",
            feature_set=FeatureSetRef(name=LISTING_FEATURE_SET.name, version=LISTING_FEATURE_SET.version,
                                      features=list(LISTING_FEATURE_SET.features)),
            label_map={"0": "acceptable", "1": "inferior"},
            thresholds={DEFAULT_THRESHOLD_KEY: choice.thresholds},
            metrics=ModelMetrics(
                test=test_metrics, slices={"category": per_category}, real_world=real_world,
                details={"validation_thresholds": choice.model_dump(mode="json"), "split_rows": splits.sizes(),
                         "best_iteration": booster.best_iteration}),
            lineage=Lineage(training_files=files, git_commit=git_commit(),
                            parameters=self.config.model_dump(), library_versions=library_versions(),
                            seed=self.config.seed),
        )


def load_listing_file(path: Path) -> pd.DataFrame:
    """Read and validate a listing training file (Parquet / CSV / JSONL)."""
    frame = validate_columns(read_table(path), LISTING_COLUMNS, str(path))
    check_bounds(frame, ListingRecord, str(path))
    return frame
