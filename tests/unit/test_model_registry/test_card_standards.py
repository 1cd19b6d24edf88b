"""Cards in the Model Card Toolkit and Hugging Face shapes, from a manifest's metrics."""

from __future__ import annotations

import yaml

from registry.bundle import FeatureSetRef, Lineage, Manifest, TrainingFile
from registry.card_standards import (
    hugging_face_front_matter,
    model_card_toolkit,
    performance_metrics,
)
from registry.cards import CardSection, CardTable, ModelCard, to_markdown

AT = {"threshold": 0.5, "precision": 0.9, "recall": 0.7, "f1": 0.7875, "flagged": 10}


def _metrics(roc: float, pr: float) -> dict:
    return {"rows": 100, "positives": 20, "roc_auc": roc, "pr_auc": pr,
            "roc_auc_ci": {"low": roc - 0.02, "high": roc + 0.02}, "pr_auc_ci": None, "block": AT, "review": AT}


def _manifest() -> Manifest:
    from common.decisions import Thresholds

    return Manifest(
        model_name="merchant-risk", version="v1", task="binary", label_map={"1": "suspicious"},
        feature_set=FeatureSetRef(name="fs", version=1, features=["a"]),
        thresholds={"default": Thresholds(block=0.8, review=0.3)},
        metrics={"test": _metrics(0.93, 0.81), "slices": {"age_band": {"<30 days": _metrics(0.9, 0.7)}}},
        lineage=Lineage(training_files=[TrainingFile(path="m.parquet", sha256="ab", rows=100,
                                                     exported_at="2026-11-01T00:00:00+00:00")],
                        git_commit=None, parameters={}, library_versions={}, seed=0))


def test_performance_metrics_carry_slices_and_confidence_intervals() -> None:
    metrics = performance_metrics(_manifest())
    overall_roc = next(m for m in metrics if m["type"] == "roc_auc" and m["slice"] == "all")
    assert overall_roc["value"] == "0.9300"
    assert overall_roc["confidence_interval"] == {"lower_bound": 0.93 - 0.02, "upper_bound": 0.93 + 0.02}
    assert any(m["slice"] == "age_band=<30 days" and m["type"] == "pr_auc" and m["value"] == "0.7000"
               for m in metrics)
    assert {m["type"] for m in metrics} >= {"f1@block", "recall@review"}


def test_model_card_toolkit_document_and_hugging_face_front_matter() -> None:
    card = ModelCard(model_name="merchant-risk", version="v1", sections=[
        CardSection(key="model_details", title="Model details", bullets=["owner: T&S", "what changed: first"]),
        CardSection(key="intended_use", title="Intended use", paragraphs=["Scores merchants."]),
        CardSection(key="limitations", title="Limitations, risks and mitigations", bullets=["a risk of bias"]),
    ])
    document = model_card_toolkit(card, _manifest())
    assert document["model_details"]["owners"] == [{"name": "T&S"}]
    assert document["model_details"]["version"]["diff"] == "first"
    assert "exported 2026-11-01" in document["model_parameters"]["data"][0]["description"]
    assert document["considerations"]["limitations"] == [{"description": "a risk of bias"}]
    markdown = to_markdown(card, hugging_face_front_matter(_manifest()))
    front = yaml.safe_load(markdown.split("---")[1])
    results = front["model-index"][0]["results"][0]
    assert front["library_name"] == "lightgbm"
    assert {"type": "roc_auc", "value": 0.93, "name": "roc_auc (all)"} in results["metrics"]
    assert "## Uses: Intended use" in markdown and "## Bias, Risks, and Limitations:" in markdown


def test_markdown_cards_escape_strings_from_data() -> None:
    card = ModelCard(model_name="listing-quality", version="v1", sections=[
        CardSection(key="evaluation", title="Per category", bullets=["<script>alert(1)</script> & more"],
                    tables=[CardTable(columns=["category"], rows=[["<img src=x onerror=alert(1)>|x"]])])])
    markdown = to_markdown(card)
    assert "<script>" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in markdown
    assert "&lt;img src=x onerror=alert(1)&gt;\\|x" in markdown  # a pipe cannot break the table


HOSTILE = ("[click](javascript:alert(1)) ![x](http://evil.example/p.png) [ref]: https://evil.example "
           "<https://evil.example> www.evil.example \\[x](javascript:alert(2))")


def test_markdown_cards_neutralize_links_and_images_in_every_string_from_data() -> None:
    from markdown_it import MarkdownIt

    card = ModelCard(model_name="listing-quality", version=HOSTILE, sections=[
        CardSection(key="history", title=HOSTILE, paragraphs=[HOSTILE], bullets=[f"promoted: {HOSTILE}"],
                    tables=[CardTable(columns=[HOSTILE], rows=[[HOSTILE]], caption=HOSTILE)])])
    markdown = to_markdown(card)
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<a " not in rendered and "<img" not in rendered
    assert "https://evil.example" not in markdown and "www.evil.example" not in markdown  # no bare autolink
    assert "javascript:alert(1)" in rendered  # the text itself is kept, inert
    assert markdown.count("\\[click\\]") == 7  # model tag, heading, paragraph, bullet, caption, cell, column
