"""Our cards in the two standard shapes auditors' tools read:

- the Model Card Toolkit JSON schema (``model_details``, ``model_parameters``,
  ``quantitative_analysis``, ``considerations``), built from the manifest's metrics and the
  card's text (``card.json`` output);
- the Hugging Face model card: YAML front matter with a ``model-index`` of test metrics, and
  the Hugging Face section names as headings (Markdown output).
"""

from __future__ import annotations

from typing import Any

from registry.bundle import Manifest
from registry.cards import ModelCard
from registry.metrics import BinaryMetrics, Interval, TestMetrics

MCT_SCHEMA_VERSION = "0.0.2"

# Our section keys and the Hugging Face model card section each one fills.
HF_SECTIONS: dict[str, str] = {
    "model_details": "Model Details",
    "intended_use": "Uses",
    "limitations": "Bias, Risks, and Limitations",
    "training_data": "Training Details",
    "training": "Training Details",
    "features": "Training Details",
    "evaluation": "Evaluation",
    "thresholds": "Evaluation",
    "quantization": "Technical Specifications",
    "lineage": "Technical Specifications",
}


def _section_text(card: ModelCard, key: str) -> list[str]:
    try:
        section = card.section(key)
    except KeyError:
        return []
    return [*section.paragraphs, *section.bullets]


def _interval(ci: Interval | None) -> dict[str, float] | None:
    return None if ci is None else {"lower_bound": ci.low, "upper_bound": ci.high}


def _binary_metrics(metrics: BinaryMetrics, slice_name: str) -> list[dict[str, Any]]:
    """MCT performance metrics of one ``BinaryMetrics``."""
    out = []
    for name in ("roc_auc", "pr_auc"):
        value = getattr(metrics, name)
        if value is not None:
            entry = {"type": name, "value": f"{value:.4f}", "slice": slice_name}
            interval = _interval(getattr(metrics, f"{name}_ci"))
            if interval:
                entry["confidence_interval"] = interval
            out.append(entry)
    for cut in ("block", "review"):
        at = getattr(metrics, cut)
        for name in ("precision", "recall", "f1"):
            if getattr(at, name) is not None:
                out.append({"type": f"{name}@{cut}", "value": f"{getattr(at, name):.4f}", "slice": slice_name,
                            "threshold": f"{at.threshold:.4f}"})
    return out


def _test_metrics(metrics: TestMetrics, prefix: str) -> list[dict[str, Any]]:
    """Binary metrics under ``prefix`` (or 'all'); multi-label ones per category."""
    if isinstance(metrics, BinaryMetrics):
        return _binary_metrics(metrics, prefix or "all")
    out = []
    for category, sliced in metrics.per_category.items():
        out += _binary_metrics(sliced, f"{prefix}, category={category}" if prefix else f"category={category}")
    return out


def performance_metrics(manifest: Manifest) -> list[dict[str, Any]]:
    """Every test metric of the manifest as MCT ``performance_metrics`` (slice names say
    'all', 'category=...', 'age_band=...', 'script=...' or the category for multi-label)."""
    out = _test_metrics(manifest.metrics.test, "")
    for slice_name, values in manifest.metrics.slices.items():
        for value, sliced in values.items():
            out += _test_metrics(sliced, f"{slice_name}={value}")
    return out


def model_card_toolkit(card: ModelCard, manifest: Manifest) -> dict[str, Any]:
    """The card as a Model Card Toolkit (schema 0.0.2) document; our full card rides along
    under ``shopguard_card``."""
    change = _section_text(card, "model_details")
    what_changed = next((line.removeprefix("what changed: ") for line in change
                         if line.startswith("what changed: ")), "")
    owner = next((line.removeprefix("owner: ") for line in change if line.startswith("owner: ")), "")
    architecture = next((line.removeprefix("type: ") for line in change if line.startswith("type: ")), "")
    limitations = _section_text(card, "limitations")
    return {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": {
            "name": manifest.model_name,
            "overview": " ".join(_section_text(card, "intended_use")[:1]),
            "owners": [{"name": owner}] if owner else [],
            "version": {"name": manifest.version, "date": manifest.created_at, "diff": what_changed},
            "references": [], "licenses": [], "citations": [],
        },
        "model_parameters": {
            "model_architecture": architecture,
            "input_format": f"feature set {manifest.feature_set.name} v{manifest.feature_set.version}",
            "output_format": f"probabilities for {sorted(manifest.thresholds)}; thresholds "
                             + ", ".join(f"{k}: block {t.block:.4f} / review {t.review:.4f}"
                                         for k, t in manifest.thresholds.items()),
            "data": [{"name": f.path, "link": f.path, "sensitive": {"sensitive_data": []},
                      "description": f"sha256 {f.sha256}, {f.rows} rows, exported {f.exported_at or 'unknown'}"}
                     for f in manifest.lineage.training_files],
        },
        "quantitative_analysis": {
            "performance_metrics": performance_metrics(manifest),
            "graphics": {"collection": [{"name": image.caption, "image": image.file}
                                        for section in card.sections for image in section.images]},
        },
        "considerations": {
            "users": ["the review pipeline (bulk scoring)", "trust-and-safety analysts", "auditors"],
            "use_cases": _section_text(card, "intended_use"),
            "limitations": [{"description": line} for line in limitations],
            "tradeoffs": [{"description": line} for line in _section_text(card, "thresholds")],
            "ethical_considerations": [{"name": line, "mitigation_strategy": "see the card's limitations section"}
                                       for line in limitations if "risk" in line.lower()],
        },
        "shopguard_card": card.model_dump(mode="json"),
    }


def hugging_face_front_matter(manifest: Manifest, text_model: bool = False) -> str:
    """YAML front matter of a Hugging Face model card with a ``model-index`` of test metrics
    (``text_model``: the kind's ``ModelKind.text_model``, told by the caller: the registry does
    not read the kinds table)."""
    import yaml

    overall = [m for m in performance_metrics(manifest)
               if m["slice"] == "all" or (text_model and m["slice"].startswith("category="))]
    results = [{
        "task": {"type": "text-classification" if text_model else "tabular-classification",
                 "name": manifest.task},
        "dataset": {"name": ", ".join(f.path for f in manifest.lineage.training_files) or "unknown",
                    "type": "held-out test split"},
        "metrics": [{"type": m["type"], "value": float(m["value"]),
                     "name": f"{m['type']} ({m['slice']})"} for m in overall],
    }]
    meta = {
        "language": ["zh"],
        "library_name": "transformers" if text_model else "lightgbm",
        "tags": ["shopguard", "moderation", "livestream-e-commerce", manifest.model_name],
        "model-index": [{"name": manifest.tag, "results": results}],
    }
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n"
