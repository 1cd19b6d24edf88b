"""The typed metrics a manifest carries: binary and multi-label test metrics (each with a
``headline()``), slices, baseline systems and real-world checks. Training computes them;
the registry, the cards and the CLI read them without guessing their shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.decisions import Thresholds

Direction = Literal["at_most", "at_least"]
# A target against a 95% interval: shown met, met by the value only, missed.
Verdict = Literal["yes", "not shown", "no"]


class AtThreshold(BaseModel):
    """Precision / recall / F1 of flagging everything at or above a threshold."""

    model_config = ConfigDict(extra="forbid")

    threshold: float
    precision: float | None
    recall: float
    f1: float
    flagged: int


class Interval(BaseModel):
    """A 95% bootstrap confidence interval."""

    model_config = ConfigDict(extra="forbid")

    low: float
    high: float


class BinaryMetrics(BaseModel):
    """Metrics of one scored, labelled set."""

    model_config = ConfigDict(extra="forbid")

    rows: int
    positives: int
    roc_auc: float | None
    pr_auc: float | None
    roc_auc_ci: Interval | None = None
    pr_auc_ci: Interval | None = None
    block: AtThreshold
    review: AtThreshold

    def headline(self) -> dict[str, float | None]:
        """Test ROC-AUC and PR-AUC."""
        return {"test_roc_auc": self.roc_auc, "test_pr_auc": self.pr_auc}

    @property
    def headline_pr_auc(self) -> float | None:
        """The PR-AUC the promotion guard compares."""
        return self.pr_auc


class MultiLabelMetrics(BaseModel):
    """Per-category metrics of a multi-label model (categories with positives only)."""

    model_config = ConfigDict(extra="forbid")

    per_category: dict[str, BinaryMetrics]

    @property
    def headline_pr_auc(self) -> float | None:
        """PR-AUC averaged over the categories with positives."""
        values = [m.pr_auc for m in self.per_category.values() if m.pr_auc is not None]
        return sum(values) / len(values) if values else None

    def headline(self) -> dict[str, float | None]:
        """The macro PR-AUC and the lowest category PR-AUC."""
        values = [m.pr_auc for m in self.per_category.values() if m.pr_auc is not None]
        return {"test_macro_pr_auc": self.headline_pr_auc, "test_min_category_pr_auc": min(values) if values else None}


TestMetrics = BinaryMetrics | MultiLabelMetrics


class RealCheck(BaseModel):
    """One figure on real text, with its 95% interval and the target it is held to."""

    model_config = ConfigDict(extra="forbid")

    key: str
    description: str
    metric: Literal["rate", "roc_auc", "f1"]
    rows: int
    count: int | None = None
    value: float | None
    low: float | None
    high: float | None
    target: float | None = None
    direction: Direction | None = None

    @property
    def verdict(self) -> Verdict | None:
        """Whether the target is met: ``yes`` only when the whole 95% interval lies on the
        target's side (lower bound >= target for an at-least target, upper bound <= target for
        an at-most one); ``not shown`` when the value meets it but the interval reaches past it
        (or there is no interval); ``no`` when the value misses it. None without a target or
        a value."""
        if self.target is None or self.value is None:
            return None
        at_most = self.direction == "at_most"
        if not (self.value <= self.target if at_most else self.value >= self.target):
            return "no"
        bound = self.high if at_most else self.low
        if bound is None or not (bound <= self.target if at_most else bound >= self.target):
            return "not shown"
        return "yes"

    @property
    def met(self) -> bool | None:
        """Whether the target is shown met (``verdict`` is ``yes``); None without a target or
        a value."""
        verdict = self.verdict
        return None if verdict is None else verdict == "yes"


class RealWorldChecks(BaseModel):
    """All real-world checks of one model version, or why they are missing."""

    model_config = ConfigDict(extra="forbid")

    available: bool
    note: str
    checks: list[RealCheck] = []
    sources: dict[str, str] = {}  # real file -> sha256 (the files themselves never enter a bundle)

    def by_key(self) -> dict[str, RealCheck]:
        """The checks by key."""
        return {c.key: c for c in self.checks}


class BaselineSystem(BaseModel):
    """A system measured beside the served one on the same test split (never served)."""

    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, Thresholds] = {}
    test: TestMetrics


class ModelMetrics(BaseModel):
    """Everything measured about a version."""

    model_config = ConfigDict(extra="forbid")

    test: TestMetrics
    slices: dict[str, dict[str, TestMetrics]] = Field(
        default_factory=dict, description="test metrics per slice: category, age_band, script ...")
    real_world: RealWorldChecks | None = None
    test_decisions: RealWorldChecks | None = None
    real_heldout: RealWorldChecks | None = Field(None, description=(
        "decisions on real labelled rows held out by group (room): the headline figures of a text model"))
    details: dict[str, Any] = Field(
        default_factory=dict, description="run facts: split rows, iterations, threshold choice, quantization ...")

    def headline(self) -> dict[str, float | None]:
        """The test metrics ``models show`` and the promotion guard read."""
        return self.test.headline()


# -- manifests written before schema version 2 -------------------------------------------------

V1_SLICE_KEYS = {"test_per_category": "category", "test_per_age_band": "age_band", "test_per_script": "script"}
V1_BASELINE_PREFIXES = {"tfidf/": "TF-IDF char 1-3-grams + logistic regression",
                        "transformer/": "transformer alone (int8 ONNX)"}


def _test_metrics(value: dict[str, Any]) -> dict[str, Any]:
    return value if "roc_auc" in value or "per_category" in value else {"per_category": value}


def migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 manifest in schema-2 shape: metrics typed, baseline systems and their
    thresholds moved out of the served thresholds."""
    metrics = dict(data.get("metrics") or {})
    thresholds = dict(data.get("thresholds") or {})
    baselines: dict[str, Any] = {}
    test = metrics.pop("test", {})
    if test and "roc_auc" not in test:  # multi-label: {system: {category: metrics}}, served first
        systems = list(test.items())
        test = {"per_category": systems[0][1]}
        for name, per_category in systems[1:]:
            prefix = next((p for p, n in V1_BASELINE_PREFIXES.items() if n == name), None)
            baselines[name] = {"test": {"per_category": per_category}, "thresholds": {
                k.removeprefix(prefix): v for k, v in thresholds.items() if prefix and k.startswith(prefix)}}
    served = {k: v for k, v in thresholds.items() if not any(k.startswith(p) for p in V1_BASELINE_PREFIXES)}
    slices = {name: {k: _test_metrics(v) for k, v in metrics.pop(key, {}).items()}
              for key, name in V1_SLICE_KEYS.items() if key in metrics}
    new_metrics = {"test": test, "slices": slices, "real_world": metrics.pop("real_world", None),
                   "test_decisions": metrics.pop("test_decisions", None), "details": metrics}
    return {**data, "schema_version": 2, "thresholds": served, "metrics": new_metrics, "baselines": baselines}
