"""What the console's model version page leads with: the figures on real held-out text first
(with their targets), the synthetic test split beside them, labelled as such, and thresholds
in words (one above 1 means the model alone never takes that decision)."""

from __future__ import annotations

from typing import Any

from registry.bundle import Manifest
from registry.card_text import ABOVE_ONE_RULE, above_any_score, threshold_words
from registry.cards import without_machine_paths
from registry.metrics import RealCheck, RealWorldChecks

MET = {"yes": "yes", "not shown": "not shown (the 95% interval reaches past the target)", "no": "NO", None: "–"}


def check_row(data: str, check: RealCheck) -> dict[str, Any]:
    """One figure as the page shows it: value, interval, target and whether it is met."""
    target = None if check.target is None else f"{'≤' if check.direction == 'at_most' else '≥'} {check.target:g}"
    return {"data": data, "check": check.description, "rows": check.rows,
            "value": "–" if check.value is None else f"{check.value:.4f}",
            "interval": "–" if check.low is None or check.high is None else f"[{check.low:.4f}, {check.high:.4f}]",
            "target": target or "–", "met": MET[check.verdict], "missed": check.verdict == "no"}


def _rows(checks: RealWorldChecks | None, data: str) -> list[dict[str, Any]]:
    if checks is None or not checks.available:
        return []
    return [check_row(data, c) for c in checks.checks]


def real_figures(manifest: Manifest) -> dict[str, Any]:
    """The real-text figures, held-out rooms first: rows, the notes that say where they come
    from (without the training machine's paths) and, when there are none, why."""
    metrics = manifest.metrics
    rows = _rows(metrics.real_heldout, "real, held-out rooms") + _rows(metrics.real_world, "real text")
    notes = [without_machine_paths(c.note) for c in (metrics.real_heldout, metrics.real_world)
             if c is not None and c.available]
    missing = [without_machine_paths(c.note) for c in (metrics.real_heldout, metrics.real_world)
               if c is not None and not c.available]
    return {"rows": rows, "notes": notes,
            "missing": missing or ([] if rows else ["this version carries no checks on real text: judge it by the "
                                                    "synthetic figures below with care"])}


def synthetic_figures(manifest: Manifest) -> list[dict[str, Any]]:
    """The synthetic test split's headline metrics and served decisions, each labelled synthetic."""
    rows = [{"data": "synthetic test split", "check": key.removeprefix("test_").replace("_", " ")
             .replace("pr auc", "PR-AUC").replace("roc auc", "ROC-AUC"), "rows": None,
             "value": "–" if value is None else f"{value:.4f}", "interval": "–", "target": "–", "met": "–",
             "missed": False}
            for key, value in manifest.headline_metrics().items()]
    return rows + _rows(manifest.metrics.test_decisions, "synthetic test split")


def threshold_facts(manifest: Manifest) -> dict[str, Any]:
    """Each threshold in words, and the rule for thresholds above 1 when one is."""
    lines = [{"key": key, "words": threshold_words(t.block, t.review)} for key, t in manifest.thresholds.items()]
    above = any(above_any_score(t.block) or above_any_score(t.review) for t in manifest.thresholds.values())
    return {"lines": lines, "rule": ABOVE_ONE_RULE if above else None}


def version_facts(manifest: Manifest) -> dict[str, Any]:
    """Everything the version page shows above its alias history."""
    return {"real": real_figures(manifest), "synthetic": synthetic_figures(manifest),
            "thresholds": threshold_facts(manifest)}
