"""The ``merchant-risk`` training pipeline: own behaviour + linked-merchant (graph) features,
LightGBM, thresholds, card, registration. Works on our merchant columns or on any generic
table (``--label-column``, numeric feature columns, optional edge list)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from common.decisions import DEFAULT_THRESHOLD_KEY
from common.words import counted
from features.ids import merchant_key
from kinds import MERCHANT_RISK
from kinds.merchant_risk.features import (
    DEFAULT_GRAPH_AGGREGATES,
    GENERIC_LINK_TYPE,
    GRAPH_AGGREGATES,
    MERCHANT_FEATURE_SPEC,
    MerchantFeatureSpec,
    MerchantGraph,
    build_merchant_features,
)
from kinds.merchant_risk.record import MERCHANT_LABEL_COLUMN, MerchantRecord
from kinds.merchant_risk.runtime import MerchantRiskModel
from registry.bundle import FeatureSetRef, Lineage, Manifest
from registry.metrics import ModelMetrics
from registry.store import ModelRegistry, new_version
from training.boosting import refit_binary_lightgbm, train_binary_lightgbm
from training.classification_metrics import BinaryMetrics, binary_metrics, sliced_metrics
from training.data.loaders import (
    DataValidationError,
    binary_labels,
    check_bounds,
    read_table,
    row_name,
)
from training.lineage import git_commit, library_versions, training_file
from training.pipeline import BaseTrainingConfig, Progress, no_progress, register_model, split_rows
from training.row_identity import MERCHANT_IDENTITY, TrainingRows, merchant_keys
from training.splits import Splits
from training.thresholds import BudgetCost, ThresholdChoice, budget_cost, choose_thresholds

MODEL_NAME = MERCHANT_RISK.name
DEFAULT_LABEL = MERCHANT_LABEL_COLUMN
DEFAULT_ID = MERCHANT_RISK.id_field
AGE_BANDS = ((0, 30, "<30 days"), (30, 180, "30-180 days"), (180, 730, "180-730 days"),
             (730, np.inf, ">=730 days"))


class MerchantRiskConfig(BaseTrainingConfig):
    """Parameters of a merchant-risk training run. Unknown keys are rejected."""

    graph_features: bool = True
    graph_aggregates: list[str] = Field(default_factory=lambda: list(DEFAULT_GRAPH_AGGREGATES))
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(10, ge=1)
    feature_fraction: float = Field(0.5, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    ensemble_size: int = Field(5, ge=1, description="bagged LightGBM models, log-odds averaged")
    refit_on_train_and_validation: bool = Field(
        True, description="after early stopping, retrain each member on train + validation")
    num_boost_round: int = Field(3000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    review_budget: float = Field(0.05, gt=0, lt=1, description=(
        "largest share of ordinary (non-suspicious) merchants that may go to review; it outranks "
        "the recall target"))
    review_budget_confidence: float = Field(0.95, ge=0.5, lt=1, description=(
        "one-sided confidence that the budget holds beyond the validation sample: the review threshold "
        "keeps the Wilson upper bound of the ordinary validation share within the budget (0.5: the share itself)"))

    @field_validator("graph_aggregates")
    @classmethod
    def _known_aggregates(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(GRAPH_AGGREGATES))
        if unknown:
            raise ValueError(f"unknown graph aggregates {unknown}; choose from {list(GRAPH_AGGREGATES)}")
        return value


@dataclass
class MerchantTable:
    """Merchants (one row each), their labels and the links between them."""

    ids: np.ndarray
    values: np.ndarray
    labels: np.ndarray
    links: list[tuple[str, str, str]]
    spec: MerchantFeatureSpec
    sources: list[Path]
    account_age: np.ndarray | None = None
    link_rows: int = 0  # the links file's rows (``links`` holds those the model can use)


@dataclass
class MerchantTrainingResult:
    """What a run produced."""

    model: MerchantRiskModel
    manifest: Manifest
    threshold_choice: ThresholdChoice
    test_metrics: BinaryMetrics
    slices: dict[str, BinaryMetrics]
    test_scores: np.ndarray
    splits: Splits
    review_budget: BudgetCost  # the budget measured on the held-out test split


def _links_from_frame(frame: pd.DataFrame, source: str) -> list[tuple[str, str, str]]:
    columns = [c for c in ("src", "dst") if c not in frame.columns]
    if columns:
        raise DataValidationError(f"{source}: missing link column(s) {', '.join(columns)}; an edge "
                                  "list needs src, dst and optionally link_type.", field=columns[0])
    types = frame["link_type"].astype(str) if "link_type" in frame.columns else GENERIC_LINK_TYPE
    out = pd.DataFrame({"src": frame["src"].astype(str), "dst": frame["dst"].astype(str),
                        "link_type": types})
    return list(out.itertuples(index=False, name=None))


def _matched_links(links: list[tuple[str, str, str]], ids: pd.Series, link_types: Sequence[str],
                   source: Path | None, warn: Callable[[str], None] | None) -> list[tuple[str, str, str]]:
    """Links with each end spelled as its merchant's row spells it (ids compared as the
    service compares them: ``M1-1`` and ``m1-1`` are one merchant); those naming no merchant of
    the table, of a type the model does not use, or from a merchant to itself are counted and
    said through ``warn`` (the graph drops them)."""
    by_key = {merchant_key(str(i)): str(i) for i in ids}
    known_types = set(link_types)
    out, dropped = [], Counter()
    for src, dst, link_type in links:
        a, b = by_key.get(merchant_key(src)), by_key.get(merchant_key(dst))
        reason = ("names a merchant not in the table" if a is None or b is None
                  else f"of type {link_type!r}, which the model does not use" if link_type not in known_types
                  else "from a merchant to itself" if a == b else None)
        if reason is None:
            out.append((a, b, link_type))
        else:
            dropped[reason] += 1
    if dropped and warn is not None:
        warn(f"{source}: {counted(sum(dropped.values()), 'link')} not used: "
             + "; ".join(f"{n:,} {reason}" for reason, n in dropped.most_common())
             + (f" (types used: {', '.join(link_types)})" if any("type" in r for r in dropped) else ""))
    return out


def _refuse_stray_text(frame: pd.DataFrame, skip: set[str], path: Path) -> None:
    """A column of numbers with a few text cells (a typo, ``abc``) is refused naming its first
    such row: generic mode would otherwise leave the whole column out of the features."""
    for column in frame.columns:
        if column in skip or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        given = frame[column].dropna()
        numbers = pd.to_numeric(given, errors="coerce")
        if len(given) and numbers.notna().mean() >= 0.9 and numbers.isna().any():
            row = int(frame.index.get_loc(numbers[numbers.isna()].index[0]))
            raise DataValidationError(f"{path}: column {column!r} holds numbers but {row_name(path, row)} holds "
                                      f"{frame[column].iloc[row]!r}: fix or drop those rows.", field=str(column))


def _check_merchant_ids(ids: pd.Series, path: Path, id_column: str) -> None:
    """``DataValidationError`` naming ``id_column`` when a row has no id, or two rows name one
    merchant: the same id, or ids the service cannot tell apart (``features.ids``: NFKC, format
    characters, surrounding spaces, case)."""
    keys = ["" if pd.isna(value) else merchant_key(str(value)) for value in ids]
    empty = [i for i, key in enumerate(keys) if not key]
    if empty:
        more = f" and {len(empty) - 1:,} more row(s)" if len(empty) > 1 else ""
        raise DataValidationError(f"{path}: column {id_column!r} is empty in {row_name(path, empty[0])}{more}: give "
                                  "every merchant an id (spaces or zero-width characters alone are none).",
                                  field=id_column)
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        first = seen.setdefault(key, i)
        if first == i:
            continue
        a, b = str(ids.iloc[first]), str(ids.iloc[i])
        where = f"{row_name(path, first)}; {row_name(path, i)}"
        if a == b:
            raise DataValidationError(f"{path}: column {id_column!r} must be unique; {a!r} appears in {where}: give "
                                      "each merchant one row.", field=id_column)
        raise DataValidationError(f"{path}: column {id_column!r} must be unique; {a!r} and {b!r} name one merchant "
                                  f"({where}) because ids are compared after NFKC, case folding and trimming, as the "
                                  "service compares them: give each merchant one id, or merge the rows.",
                                  field=id_column)


def load_merchant_table(path: Path, links_path: Path | None = None,
                        label_column: str = DEFAULT_LABEL, id_column: str = DEFAULT_ID,
                        warn: Callable[[str], None] | None = None) -> MerchantTable:
    """Read merchants (+ links). Our columns when all behaviour features are present;
    otherwise generic mode: every other numeric column is a feature. Link ids are matched to
    the merchants as the service compares ids (``merchant_key``); links that cannot be used,
    and the mode chosen when some of our columns are missing, are said through ``warn``."""
    frame = read_table(path)
    for required in (label_column, id_column):
        if required not in frame.columns:
            raise DataValidationError(f"{path}: missing column {required!r}.", field=required)
    _check_merchant_ids(frame[id_column], path, id_column)
    labels = binary_labels(frame[label_column], label_column, str(path))  # 0/1 or true/false, as listings
    ours = all(c in frame.columns for c in MERCHANT_FEATURE_SPEC.own_features)
    links = _links_from_frame(read_table(links_path), str(links_path)) if links_path else []
    if ours:
        spec = MerchantFeatureSpec(MERCHANT_FEATURE_SPEC.name, MERCHANT_FEATURE_SPEC.own_features,
                                   MERCHANT_FEATURE_SPEC.link_types)
    else:
        skip = {label_column, id_column, "label_flipped", "ring_member"}
        _refuse_stray_text(frame, skip, path)
        numeric = [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
                   and not pd.api.types.is_bool_dtype(frame[c])]
        if not numeric:
            raise DataValidationError(f"{path}: no numeric feature columns found.", field="--data")
        link_types = tuple(sorted({t for _, _, t in links})) or (GENERIC_LINK_TYPE,)
        spec = MerchantFeatureSpec("generic_merchant_v1", tuple(numeric), link_types)
        missing = [c for c in MERCHANT_FEATURE_SPEC.own_features if c not in frame.columns]
        if warn is not None and len(missing) < len(MERCHANT_FEATURE_SPEC.own_features):
            warn(f"{path}: no column {', '.join(missing)}: trained in generic mode ({spec.name}) on "
                 f"{len(numeric)} numeric column(s), not on the service's merchant fields")
    values = frame[list(spec.own_features)].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in spec.own_features if (frame[c].notna() & values[c].isna()).any()]
    if bad:
        raise DataValidationError(f"{path}: column {bad[0]!r} must be numeric.", field=bad[0])
    if ours:  # generic columns may share a name and not a meaning (a rate in percent)
        check_bounds(values, MerchantRecord, str(path))
    link_rows = len(links)
    links = _matched_links(links, frame[id_column], spec.link_types, links_path, warn)
    age = frame["account_age_days"].to_numpy(float) if "account_age_days" in frame.columns else None
    return MerchantTable(frame[id_column].astype(str).to_numpy(), values.to_numpy(np.float64),
                         labels.to_numpy(int), links, spec,
                         [p for p in (path, links_path) if p is not None], age, link_rows)


def age_bands(age: np.ndarray) -> list[str]:
    """Merchant age band of each row (a card slice)."""
    return [next((name for low, high, name in AGE_BANDS if low <= a < high), "unknown") for a in age]


class MerchantRiskTrainer:
    """Trains, evaluates and (optionally) registers a merchant-risk model."""

    def __init__(self, config: MerchantRiskConfig, registry: ModelRegistry | None = None,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.registry = registry
        self._progress = progress or no_progress

    def features(self, table: MerchantTable, train_rows: np.ndarray) -> tuple[MerchantGraph, np.ndarray]:
        """The graph (labels known for ``train_rows`` only) and every merchant's features."""
        known = {str(table.ids[i]): int(table.labels[i]) for i in train_rows}
        graph = MerchantGraph.build(table.ids, table.values, table.links, table.spec.link_types, known)
        return graph, build_merchant_features(graph, np.arange(len(table.ids)), table.spec)

    def _train_ensemble(self, matrix: np.ndarray, y: np.ndarray, splits: Splits,
                        spec: MerchantFeatureSpec) -> tuple[list, np.ndarray]:
        """Bagged members, each early-stopped on validation; the returned validation scores
        come from the members before any refit, so thresholds are chosen out of sample."""
        config = self.config
        boosters, validation_raw = [], np.zeros(len(splits.validation))
        fit_rows = np.concatenate([splits.train, splits.validation])
        for member in range(config.ensemble_size):
            params = {"learning_rate": config.learning_rate, "num_leaves": config.num_leaves,
                      "min_data_in_leaf": config.min_data_in_leaf,
                      "feature_fraction": config.feature_fraction,
                      "bagging_fraction": config.bagging_fraction,
                      "bagging_freq": 1 if config.bagging_fraction < 1 else 0,
                      "seed": config.seed * 1000 + member, "num_threads": config.num_threads}
            booster = train_binary_lightgbm(
                params, (matrix[splits.train], y[splits.train]),
                (matrix[splits.validation], y[splits.validation]), spec.feature_names, (),
                config.num_boost_round, config.early_stopping_rounds,
            )
            validation_raw += booster.predict(matrix[splits.validation], raw_score=True)
            if config.refit_on_train_and_validation:
                rounds = round(booster.best_iteration * len(fit_rows) / len(splits.train))
                booster = refit_binary_lightgbm(params, (matrix[fit_rows], y[fit_rows]),
                                                spec.feature_names, rounds)
            boosters.append(booster)
        return boosters, 1.0 / (1.0 + np.exp(-validation_raw / config.ensemble_size))

    def fit(self, table: MerchantTable, splits: Splits | None = None) -> MerchantTrainingResult:
        """Train on ``table``; ``splits`` fixes the protocol (default: stratified, seeded)."""
        config = self.config
        table = replace(table, spec=replace(table.spec, graph=config.graph_features,
                                            aggregates=tuple(config.graph_aggregates)))
        splits = splits or split_rows(table.labels, config, DEFAULT_LABEL)
        self._progress(f"split: {splits.sizes()}; building features ({len(table.links):,} links)")
        graph, matrix = self.features(table, splits.train)
        y = table.labels
        self._progress(f"training {config.ensemble_size} LightGBM model(s) with early stopping")
        boosters, validation_scores = self._train_ensemble(matrix, y, splits, table.spec)
        choice = choose_thresholds(y[splits.validation], validation_scores,
                                   config.precision_target, config.recall_target,
                                   review_budget=config.review_budget,
                                   budget_confidence=(None if config.review_budget_confidence == 0.5
                                                      else config.review_budget_confidence))
        model = MerchantRiskModel(boosters, table.spec, np.nanmedian(matrix[splits.train], axis=0),
                                  choice.thresholds, graph)
        test_scores = model.predict_matrix(matrix[splits.test])
        test_metrics = binary_metrics(y[splits.test], test_scores, choice.thresholds,
                                      config.bootstrap_samples)
        slices = (sliced_metrics(y[splits.test], test_scores, age_bands(table.account_age[splits.test]),
                                 choice.thresholds, config.bootstrap_samples)
                  if table.account_age is not None else {})
        budget = budget_cost(y[splits.test], test_scores, choice)
        manifest = self._manifest(table, splits, choice, test_metrics, slices,
                                  [b.current_iteration() for b in boosters], budget)
        model.tag = manifest.tag
        result = MerchantTrainingResult(model, manifest, choice, test_metrics, slices, test_scores,
                                        splits, budget)
        if self.registry is not None:
            from kinds.merchant_risk.card import build_merchant_card

            owner = self.registry.settings.owner
            result.manifest = register_model(
                self.registry, model, manifest,
                lambda folder, previous: build_merchant_card(result, table, folder, owner, previous),
                self._progress, TrainingRows.of(merchant_keys(table.ids), MERCHANT_IDENTITY))
        return result

    def _manifest(self, table: MerchantTable, splits: Splits, choice: ThresholdChoice,
                  test: BinaryMetrics, slices: dict[str, BinaryMetrics], iterations: list[int],
                  budget: BudgetCost) -> Manifest:
        return Manifest(
            model_name=MODEL_NAME, version=new_version(),
            task="binary classification: suspicious merchant",
            feature_set=FeatureSetRef(name=table.spec.name, version=1,
                                      features=list(table.spec.feature_names)),
            label_map={"0": "ordinary", "1": "suspicious"},
            thresholds={DEFAULT_THRESHOLD_KEY: choice.thresholds},
            metrics=ModelMetrics(test=test, slices={"age_band": slices}, details={
                "validation_thresholds": choice.model_dump(mode="json"), "split_rows": splits.sizes(),
                "best_iteration": iterations, "links": len(table.links),
                "review_budget_held_out": budget.model_dump(mode="json")}),
            lineage=Lineage(training_files=[training_file(p, len(table.ids) if i == 0 else table.link_rows)
                                            for i, p in enumerate(table.sources)],
                            git_commit=git_commit(), parameters=self.config.model_dump(),
                            library_versions=library_versions(), seed=self.config.seed),
        )
