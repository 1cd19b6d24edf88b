"""Champion / challenger: two versions of one model scored on the same labelled file.

Reports, for B against A: ROC-AUC and PR-AUC with paired-bootstrap 95% intervals of the
difference (the same resampled rows score both), precision / recall / F1 at each version's
own thresholds, how many items change decision (a 3 x 3 table of A's decision against B's),
and the same metric differences per slice (listing category, merchant age band, false-
marketing category).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from features.errors import ShopGuardError
from model_registry.registry import LoadedBundle
from policy.decisions import Decision, Thresholds
from training.evaluation import BinaryMetrics, Interval, binary_metrics, ranking_metrics

DECISIONS: tuple[Decision, ...] = ("block", "review", "allow")


@dataclass
class ScoredFile:
    """One version's scores on a file: ``scores`` has one column per target (one for binary
    models, one per category for false-marketing); ``decisions`` one per row."""

    labels: np.ndarray
    scores: np.ndarray
    decisions: list[Decision]
    targets: list[str]
    thresholds: dict[str, Thresholds]
    slices: list[str] | None
    ids: list[str] | None = None
    reasons: list[str] | None = None


def reason_text(reasons: list) -> str:
    """Reasons as one readable line."""
    return "; ".join(f"{r.code}: {r.detail}" for r in reasons)


class MetricDelta(BaseModel):
    """A metric for A and B and the paired-bootstrap interval of B - A."""

    model_config = ConfigDict(extra="forbid")

    a: float | None
    b: float | None
    delta: float | None
    delta_ci: Interval | None


class TargetComparison(BaseModel):
    """Both versions on one target (the model's label, or one category)."""

    model_config = ConfigDict(extra="forbid")

    rows: int
    positives: int
    roc_auc: MetricDelta
    pr_auc: MetricDelta
    a: BinaryMetrics
    b: BinaryMetrics


class Comparison(BaseModel):
    """What ``shopguard models compare`` prints and writes."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_a: str
    model_b: str
    data: str
    rows: int
    targets: dict[str, TargetComparison]
    decision_flips: dict[str, dict[str, int]]
    flipped_rows: int
    slices: dict[str, dict[str, TargetComparison]]


def paired_deltas(y: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int, seed: int = 0
                  ) -> tuple[MetricDelta, MetricDelta]:
    """ROC-AUC and PR-AUC of both, with a 95% paired-bootstrap interval of B - A."""
    roc_a, ap_a = ranking_metrics(y, a)
    roc_b, ap_b = ranking_metrics(y, b)
    rng = np.random.default_rng(seed)
    roc_d, ap_d = [], []
    for _ in range(n_boot if roc_a is not None else 0):
        idx = rng.integers(0, len(y), len(y))
        ra, pa = ranking_metrics(y[idx], a[idx])
        rb, pb = ranking_metrics(y[idx], b[idx])
        if ra is not None and rb is not None:
            roc_d.append(rb - ra)
            ap_d.append(pb - pa)

    def delta(first: float | None, second: float | None, samples: list[float]) -> MetricDelta:
        ci = None
        if len(samples) >= max(1, n_boot // 2):
            low, high = np.percentile(samples, [2.5, 97.5])
            ci = Interval(low=float(low), high=float(high))
        diff = None if first is None or second is None else second - first
        return MetricDelta(a=first, b=second, delta=diff, delta_ci=ci)

    return delta(roc_a, roc_b, roc_d), delta(ap_a, ap_b, ap_d)


def compare_target(y: np.ndarray, a: np.ndarray, b: np.ndarray, thresholds_a: Thresholds,
                   thresholds_b: Thresholds, n_boot: int) -> TargetComparison:
    """Both versions on one target."""
    roc, ap = paired_deltas(y, a, b, n_boot)
    return TargetComparison(rows=len(y), positives=int(y.sum()), roc_auc=roc, pr_auc=ap,
                            a=binary_metrics(y, a, thresholds_a), b=binary_metrics(y, b, thresholds_b))


def compare_scored(first: ScoredFile, second: ScoredFile, tags: tuple[str, str], data: Path,
                   n_boot: int = 200) -> Comparison:
    """The comparison of two versions' scores on the same rows; ``ShopGuardError`` when no
    target has both classes (nothing can be compared: one class, or a handful of rows)."""
    targets = {
        target: compare_target(first.labels[:, j], first.scores[:, j], second.scores[:, j],
                               first.thresholds[target], second.thresholds[target], n_boot)
        for j, target in enumerate(first.targets) if _both_classes(first.labels[:, j])
    }
    if not targets:
        positives = int(first.labels.any(axis=1).sum())
        raise ShopGuardError(f"{data}: {len(first.decisions):,} row(s), {positives:,} positive: no label has both "
                             "positive and negative rows, so no ranking metric can be compared; use a held-out "
                             "file with both classes (a few hundred rows or more for useful intervals).")
    flips = {a: {b: 0 for b in DECISIONS} for a in DECISIONS}
    for a, b in zip(first.decisions, second.decisions, strict=True):
        flips[a][b] += 1
    slices: dict[str, dict[str, TargetComparison]] = {}
    if first.slices is not None:
        keys = np.asarray(first.slices)
        for key in sorted(set(first.slices)):
            rows = keys == key
            slices[key] = {
                target: compare_target(first.labels[rows, j], first.scores[rows, j], second.scores[rows, j],
                                       first.thresholds[target], second.thresholds[target], n_boot // 2)
                for j, target in enumerate(first.targets) if _both_classes(first.labels[rows, j])
            }
    return Comparison(model_a=tags[0], model_b=tags[1], data=str(data), rows=len(first.decisions),
                      targets=targets, decision_flips=flips,
                      flipped_rows=sum(a != b for a, b in zip(first.decisions, second.decisions, strict=True)),
                      slices=slices)


def _both_classes(labels: np.ndarray) -> bool:
    return bool(labels.any()) and not bool(labels.all())


def training_overlap(data: Path, manifests: list[Any]) -> list[str]:
    """Warnings for each version whose training files include ``data`` (same sha256): its
    figures on that file are not held-out figures."""
    from model_registry.bundle import sha256_file

    digest = sha256_file(data)
    return [f"{m.tag} was trained on this very file ({f.path}, {f.rows:,} rows, sha256 {digest[:12]}): its figures "
            "here are not held-out figures; compare on a file neither version was trained on."
            for m in manifests for f in m.lineage.training_files if f.sha256 == digest]


def paired_shortfall(production: LoadedBundle, candidate: LoadedBundle, tolerance: float, *, data: Path,
                     links: Path | None = None, n_boot: int = 200) -> str | None:
    """The promotion gate on one shared file: both versions score ``data`` and the
    candidate's PR-AUC (averaged over the targets with both classes) is compared with
    production's on the same rows, with the paired-bootstrap interval of the difference.
    Returns why the candidate is worse beyond ``tolerance``, or None."""
    first = score_file(production, data, links=links)
    second = score_file(candidate, data, links=links)
    comparison = compare_scored(first, second, (production.tag, candidate.tag), data, n_boot)
    deltas = [t.pr_auc for t in comparison.targets.values() if t.pr_auc.delta is not None]
    if not deltas:
        raise ShopGuardError(f"{data}: no target has both classes; the promotion gate cannot compare the versions.")
    old = float(np.mean([d.a for d in deltas]))
    new = float(np.mean([d.b for d in deltas]))
    if new >= old - tolerance:
        return None
    intervals = [d.delta_ci for d in deltas if d.delta_ci is not None]
    interval = (f"; 95% paired-bootstrap interval of the difference {np.mean([i.low for i in intervals]):+.4f} "
                f"to {np.mean([i.high for i in intervals]):+.4f}") if intervals else ""
    return (f"on {data.name} ({comparison.rows:,} rows, both versions scored on the same rows) {candidate.tag} has "
            f"PR-AUC {new:.4f}, {old - new:.4f} below production {production.tag} ({old:.4f}){interval}; the "
            f"tolerance is {tolerance:.4f}")


def score_file(bundle: LoadedBundle, data: Path, **options: Any) -> ScoredFile:
    """Score a labelled file with one registered version (its kind's file scorer,
    ``training/kinds/``)."""
    from training.kinds import training_of

    return training_of(bundle.manifest.model_name).score_file(bundle, data, **options)


def _fmt(value: float | None, signed: bool = False) -> str:
    return "–" if value is None else (f"{value:+.4f}" if signed else f"{value:.4f}")


def _ci(delta: MetricDelta) -> str:
    return "–" if delta.delta_ci is None else f"[{delta.delta_ci.low:+.4f}, {delta.delta_ci.high:+.4f}]"


def comparison_rows(comparison: Comparison) -> list[list[str]]:
    """Rows of the metric-delta table (target or slice/target)."""
    rows = []
    scopes = [("", comparison.targets)] + [(f"{key} / ", per) for key, per in comparison.slices.items()]
    for prefix, per in scopes:
        for target, c in per.items():
            rows.append([f"{prefix}{target}", str(c.rows), _fmt(c.pr_auc.a), _fmt(c.pr_auc.b),
                         _fmt(c.pr_auc.delta, True), _ci(c.pr_auc), _fmt(c.roc_auc.delta, True), _ci(c.roc_auc),
                         _fmt(c.b.review.f1 - c.a.review.f1, True), _fmt(c.b.block.f1 - c.a.block.f1, True)])
    return rows


COMPARISON_COLUMNS = ["target", "rows", "PR-AUC A", "PR-AUC B", "Δ PR-AUC", "95% CI", "Δ ROC-AUC", "95% CI",
                      "Δ F1 review", "Δ F1 block"]


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as a Markdown report."""
    lines = [f"# {comparison.model_b} against {comparison.model_a}", "",
             f"Data: `{comparison.data}` ({comparison.rows:,} rows). Δ = B - A; intervals are 95% "
             "paired-bootstrap intervals (the same resampled rows score both versions).", "",
             "| " + " | ".join(COMPARISON_COLUMNS) + " |", "|" + "---|" * len(COMPARISON_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(comparison)]
    lines += ["", f"## Decision flips ({comparison.flipped_rows:,} of {comparison.rows:,} rows change decision)",
              "", "| A \\ B | " + " | ".join(DECISIONS) + " |", "|---|" + "---|" * len(DECISIONS)]
    lines += [f"| {a} | " + " | ".join(f"{comparison.decision_flips[a][b]:,}" for b in DECISIONS) + " |"
              for a in DECISIONS]
    return "\n".join(lines) + "\n"


def write_comparison(comparison: Comparison, out: Path) -> None:
    """Write as JSON (``.json``) or Markdown (``.md``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".md":
        out.write_text(comparison_markdown(comparison), encoding="utf-8")
    else:
        out.write_text(comparison.model_dump_json(indent=2), encoding="utf-8")
