"""Champion / challenger: two versions of one model scored on the same labelled file.

Reports, for B against A: ROC-AUC and PR-AUC with paired-bootstrap 95% intervals of the
difference (the same resampled rows score both), precision / recall / F1 at each version's
own thresholds, how many items change decision (a 3 x 3 table of A's decision against B's),
and the same metric differences per slice (listing category, merchant age band, false-
marketing category).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from common.decisions import Decision, Thresholds
from common.errors import ShopGuardError
from registry.store import LoadedBundle
from training.classification_metrics import BinaryMetrics, Interval, binary_metrics, ranking_metrics
from training.row_identity import TrainingOverlap, read_training_rows, row_hashes, rows_in

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


MIN_PER_CLASS = 30  # rows of each class a label needs before the promotion gate compares on it


def training_overlaps(data: Path, bundles: list[LoadedBundle], **options: Any) -> list[TrainingOverlap]:
    """How much of ``data`` trained each version: by row where the version recorded its
    training rows (``training_rows.npy``), else by whole file (sha256 of its training files)."""
    from registry.bundle import sha256_file
    from training.kind_training import training_of

    digest = sha256_file(data)
    row_keys = training_of(bundles[0].manifest.model_name).row_keys
    hashes = None if row_keys is None else row_hashes(row_keys(data, **options))
    overlaps = []
    for bundle in bundles:
        training = None if hashes is None else read_training_rows(bundle.path, bundle.manifest.files)
        whole = any(f.sha256 == digest for f in bundle.manifest.lineage.training_files)
        overlapping = None if training is None or hashes is None else int(rows_in(hashes, training).sum())
        overlaps.append(TrainingOverlap(bundle.tag, 0 if hashes is None else len(hashes), overlapping, whole))
    return overlaps


def refuse_training_rows(data: Path, overlaps: dict[str, TrainingOverlap]) -> None:
    """``ShopGuardError`` when ``data`` holds training rows of any version (role -> its
    overlap): figures on rows a version trained on say nothing about new rows."""
    found = {role: o for role, o in overlaps.items() if o.overlaps}
    if not found:
        return
    named = "; ".join(f"{role} {o.tag}: {o.describe()}" for role, o in overlaps.items())
    raise ShopGuardError(
        f"{data.name} overlaps training rows ({named}), so it cannot show which version is better on new rows. "
        "Gate on rows neither version trained on: remove those rows or use another held-out file (or promote "
        "without --data, on the stored test figures).")


def class_counts(scored: ScoredFile) -> dict[str, tuple[int, int]]:
    """Positive and negative rows of each target."""
    labels = np.asarray(scored.labels).astype(bool)
    return {t: (int(labels[:, j].sum()), int((~labels[:, j]).sum())) for j, t in enumerate(scored.targets)}


def gate_targets(scored: ScoredFile, data: Path, min_per_class: int) -> list[str]:
    """The targets with at least ``min_per_class`` positive and negative rows; ``ShopGuardError``
    naming the counts when there is none."""
    counts = class_counts(scored)
    enough = [t for t, (pos, neg) in counts.items() if min(pos, neg) >= min_per_class]
    if enough:
        return enough
    shown = "; ".join(f"{t}: {pos:,} positive, {neg:,} negative" for t, (pos, neg) in counts.items())
    raise ShopGuardError(
        f"{data.name} ({len(scored.decisions):,} rows) is too small for the promotion gate: it needs at least "
        f"{min_per_class} positive and {min_per_class} negative rows of a label and has {shown}. Pass a larger "
        "held-out file (or --min-per-class N to accept fewer, with wider intervals).")


def missing_links_note(data: Path, links: Path | None) -> str | None:
    """A note when a file is scored without the links file written beside it
    (``<stem>.links.parquet``, as the merchant generator writes it): the links between its
    records would be left out of their graph features."""
    if links is not None:
        return None
    beside = [p for p in (data.with_name(f"{data.stem}.links{suffix}") for suffix in (".parquet", ".csv"))
              if p.is_file()]
    if not beside:
        return None
    return (f"scoring {data.name} without its links: {beside[0].name} sits beside it. Without --links "
            f"{beside[0]} the links between its records are left out of their graph features (only the model's "
            "reference graph is read), so both versions score lower than they would serve these records.")


def paired_shortfall(production: LoadedBundle, candidate: LoadedBundle, tolerance: float, *, data: Path,
                     links: Path | None = None, n_boot: int = 200, min_per_class: int = MIN_PER_CLASS,
                     notify: Callable[[str], None] | None = None) -> str | None:
    """The promotion gate on one shared file: both versions score ``data`` and the
    candidate's PR-AUC (averaged over the targets with ``min_per_class`` rows of each class)
    is compared with production's on the same rows, with the paired-bootstrap interval of
    the difference. Refused first (``ShopGuardError``, whatever --force says) when ``data``
    holds training rows of either version, or too few rows of each class; ``notify`` hears
    which version records no row hashes (checked by whole file only).
    Returns why the candidate is worse beyond ``tolerance``, or None."""
    links_note = missing_links_note(data, links)
    if links_note and notify is not None:
        notify(links_note)
    overlaps = training_overlaps(data, [production, candidate], links=links)
    for overlap in overlaps:
        note = overlap.older_note()
        if note and notify is not None:
            notify(note)
    refuse_training_rows(data, dict(zip(("production", "candidate"), overlaps, strict=True)))
    first = score_file(production, data, links=links)
    targets = gate_targets(first, data, min_per_class)
    second = score_file(candidate, data, links=links)
    comparison = compare_scored(first, second, (production.tag, candidate.tag), data, n_boot)
    deltas = [t.pr_auc for name, t in comparison.targets.items() if name in targets and t.pr_auc.delta is not None]
    if not deltas:
        raise ShopGuardError(f"{data}: no target has both classes; the promotion gate cannot compare the versions.")
    old = float(np.mean([d.a for d in deltas]))
    new = float(np.mean([d.b for d in deltas]))
    if new >= old - tolerance:
        return None
    intervals = [d.delta_ci for d in deltas if d.delta_ci is not None]
    interval = (f"; 95% paired-bootstrap interval of the difference {np.mean([i.low for i in intervals]):+.4f} "
                f"to {np.mean([i.high for i in intervals]):+.4f}") if intervals else ""
    over = (f" (over the {len(deltas)} labels with at least {min_per_class} rows of each class)"
            if len(deltas) < len(comparison.targets) else "")
    return (f"on {data.name} ({comparison.rows:,} rows, both versions scored on the same rows) {candidate.tag} has "
            f"PR-AUC {new:.4f}{over}, {old - new:.4f} below production {production.tag} ({old:.4f}){interval}; the "
            f"tolerance is {tolerance:.4f}")


def score_file(bundle: LoadedBundle, data: Path, **options: Any) -> ScoredFile:
    """Score a labelled file with one registered version (its kind's file scorer,
    ``kinds/``)."""
    from training.kind_training import training_of

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
    if out.suffix.lower() == ".md":
        out.write_text(comparison_markdown(comparison), encoding="utf-8")
    else:
        out.write_text(comparison.model_dump_json(indent=2), encoding="utf-8")
