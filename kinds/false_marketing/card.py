"""Build the false-marketing model card from the run's own metrics objects; its prose is
``card_template.md`` beside this module."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from features.marketing import MARKETING_CATEGORIES, RULES
from registry.bundle import Manifest
from registry.cards import CardImage, CardSection, CardTable, ModelCard
from training.card_parts import (
    CHECK_COLUMNS,
    changes_against,
    checks_rows,
    confidence,
    data_files_table,
    lineage_section,
    real_world_section,
)
from training.card_template import CardTemplate
from training.plots import multilabel_plots

if TYPE_CHECKING:
    from common.decisions import Thresholds
    from kinds.false_marketing.pipeline import MarketingData, MarketingTrainingResult
    from training.thresholds import ThresholdChoice


REVIEW_RULES = {
    "shared": ("at one threshold shared by these categories: the best F1 of the segment decision (flagged by any "
               "category or lexicon rule, against violating in any category)"),
    "per_category": "at each category's own best F1",
}


def _threshold_note(choice: ThresholdChoice | None, served: Thresholds) -> str:
    """What the thresholds table says of one category: how its served thresholds came about."""
    if choice is None:
        return "no positives in validation: the model never flags it"
    if served.review > 1:
        return "the model alone never flags it"
    notes = [] if choice.block_reachable else ["precision target unreachable: review only"]
    if choice.review_shared:
        shared = "the other categories chosen on held-out rooms"
        notes.append(f"review at its block threshold, below the cut shared with {shared}"
                     if choice.thresholds.review == choice.thresholds.block else f"review shared with {shared}")
    if served.review > choice.thresholds.review:
        notes.append("review (and block with it where needed) raised by the review budget")
    return "; ".join(notes)


def _blend_formula(weight: float, serving_params: dict[str, Any]) -> str:
    """The served blend in words (bundles without ``blend_space`` blend probabilities)."""
    if serving_params.get("blend_space", "probability") == "logit":
        return (f"sigmoid({weight:.2f} x logit(transformer) + {1 - weight:.2f} x logit(TF-IDF n-gram scorer)), "
                "a blend of log-odds")
    return f"{weight:.2f} x transformer + {1 - weight:.2f} x TF-IDF n-gram scorer (probabilities)"


def _comparison_rows(result: MarketingTrainingResult) -> list[list]:
    rows = []
    for category in MARKETING_CATEGORIES:
        for system in result.systems:
            m = system.per_category.get(category)
            if m is None:
                continue
            rows.append([category, system.name, m.positives, m.pr_auc, confidence(m, "pr_auc"), m.roc_auc,
                         m.review.precision, m.review.recall, m.review.f1, m.block.precision, m.block.recall])
    return rows


def _heldout_section(result: MarketingTrainingResult, template: CardTemplate) -> CardSection:
    """The headline: served decisions on real labelled rows held out by group, beside the same
    decisions on the generated test split, and each system's ranking on the held-out rows."""
    if result.real_heldout is None:
        return template.section("real_heldout_missing", key="real_heldout")
    systems = [[category, system.name, m.positives, m.roc_auc, m.pr_auc]
               for system in result.heldout_systems for category, m in system.per_category.items()]
    review_only = result.model.policy.review_only_rules
    evidence = [[rule, v["matches"], v["correct"], v["violating"], v["evidence"],
                 _acts_alone_as(v["severity"], rule in review_only)] for rule, v in result.rule_evidence.items()]
    return template.section("real_heldout", {"note": result.real_heldout.note}, tables=[
        CardTable(columns=CHECK_COLUMNS, rows=checks_rows(result.real_heldout, "real, held-out rooms")
                  + checks_rows(result.test_decisions, "synthetic test split"),
                  caption="Served decisions (review or block = flagged); intervals resample whole rooms "
                          "(F1, ROC-AUC) or are Wilson intervals (rates)"),
        CardTable(columns=["category", "system", "positives", "ROC-AUC", "PR-AUC"], rows=systems,
                  caption="Ranking per category on the held-out rooms: the served score with rule evidence, "
                          "the blend, each half alone and the lexicon"),
        CardTable(columns=["rule", "matches in real rows", "of its category", "violating at all",
                           "evidence (smoothed precision)", "acts alone as"],
                  rows=evidence, caption="Each lexicon rule on the real labelled rows: its precision is the "
                                         "evidence it adds to its category's score when it matches; a block "
                                         "rule whose matches violate too rarely (rule_demotion_z) only reviews"),
    ])


def _acts_alone_as(severity: str, review_only: bool) -> str:
    """What a rule's match decides on its own under the served policy (``SegmentPolicy.rule_blocks``)."""
    if severity != "block":
        return "review"
    return "review (a block rule that real rows showed wrong too often)" if review_only else "block"


def _origin(manifest: Manifest) -> str:
    """Where the encoder started: the fine-tuned base checkpoint (and its corpus), or from scratch."""
    parameters = manifest.lineage.parameters
    sound = ("; each Han character's embedding also learned a part shared by its toneless pinyin syllable "
             "(sound embeddings, merged into the saved weights)" if parameters.get("sound_embeddings") else "")
    if not parameters.get("base_model"):
        return (f"trained from scratch: {parameters['layers']} layers, hidden {parameters['hidden_size']}, "
                f"{parameters['heads']} heads, character tokenizer built on the training split{sound}")
    base = manifest.lineage.base_model
    corpus = (f" (masked-LM base pretrained on {base['corpus']['texts']:,} real texts "
              f"of ../shared/data: {base['corpus']['rows_per_source']})" if base and base.get("corpus") else "")
    return f"fine-tuned from the local checkpoint {parameters['base_model']}{corpus}{sound}"


def build_marketing_card(result: MarketingTrainingResult, data: MarketingData, folder: Path, owner: str,
                         previous: Manifest | None = None) -> ModelCard:
    """The card: model, data, three systems per category, thresholds, quantization, lineage;
    its prose is ``card_template.md`` filled from the manifest and the run's metrics, and its
    plots are written into ``folder`` (the bundle's staging folder)."""
    template = CardTemplate.beside(__file__)
    manifest, quantization = result.manifest, result.quantization
    plots = multilabel_plots(result.test_labels, result.test_scores, result.thresholds,
                             list(MARKETING_CATEGORIES), folder)
    budget_share = manifest.metrics.details.get("review_budget", {}).get("validation_clean_share_flagged",
                                                                         float("nan"))
    parameters = manifest.lineage.parameters
    balance = [[c, int(data.labels[:, j].sum()), float(data.labels[:, j].mean())]
               for j, c in enumerate(MARKETING_CATEGORIES)]
    threshold_rows = []
    for category in MARKETING_CATEGORIES:
        choice = result.choices.get(category)
        t = result.thresholds[category]
        threshold_rows.append([category, t.block, t.review,
                               None if choice is None else choice.block_precision,
                               None if choice is None else choice.review_recall,
                               _threshold_note(choice, t)])
    f1_rows = [[c, v["threshold"], v["f1_pytorch"], v["f1_int8"], v["change"]]
               for c, v in quantization["f1_at_review_threshold"].items()]
    history = [[h["epoch"], h["train_loss"], h["validation_mean_pr_auc"]] for h in result.training["history"]]
    served = result.systems[0].per_category
    macro = float(np.mean([m.pr_auc for m in served.values() if m.pr_auc is not None])) if served else 0.0
    weight = manifest.serving_params.get("transformer_weight", 1.0)
    values = {
        "manifest": manifest, "owner": owner, "changes": changes_against(previous, manifest), "rules": len(RULES),
        "origin": _origin(manifest), "blend_formula": _blend_formula(weight, manifest.serving_params),
        "chosen_on": manifest.serving_params.get("blend_chosen_on", "validation"),
        "search": manifest.serving_params.get("blend_search", {}), "macro": macro,
        "review_budget": parameters.get("review_budget", 0.05), "budget_share": budget_share,
        "novelty_cutoff": manifest.serving_params.get("novelty_cutoff", 1.0),
        "novelty_quantile": manifest.serving_params.get("novelty_quantile", 0.99),
        "parameters": parameters, "quantization": quantization, "training": result.training,
        "review_rule": REVIEW_RULES[parameters.get("review_rule", "per_category")],
    }
    sections = [
        template.section("model_details", values),
        _heldout_section(result, template),
        template.section("intended_use", values),
        template.section("training_data", values, tables=[
            data_files_table(manifest),
            CardTable(columns=["split", "rows"], rows=[[k, v] for k, v in result.splits.sizes().items()],
                      caption="Split sizes"),
            CardTable(columns=["category", "segments", "share"], rows=balance, caption="Labels in the whole file")]),
        template.section("evaluation", values, tables=[
            CardTable(columns=["category", "system", "positives", "PR-AUC", "PR-AUC 95% CI", "ROC-AUC",
                               "review precision", "review recall", "review F1", "block precision", "block recall"],
                      rows=_comparison_rows(result)),
            CardTable(columns=["script", "category", "rows", "positives", "PR-AUC", "PR-AUC 95% CI", "ROC-AUC",
                               "review F1", "block F1"], rows=_script_rows(manifest),
                      caption="Served blend per script of the original text (traditional: changed by OpenCC t2s; "
                              "latin_mixed: Latin letters such as pinyin or handles; slices with fewer than 20 "
                              "test rows left out)")],
            images=[CardImage(file=file, caption=caption) for file, caption in plots]),
        real_world_section(result.real_world, result.test_decisions),
        template.section("decision_safety", values),
        template.section("thresholds", values, tables=[
            CardTable(columns=["category", "block", "review", "block precision where chosen",
                               "review recall where chosen (before the budget)", "note"], rows=threshold_rows)]),
        template.section("quantization", values, tables=[
            CardTable(columns=["category", "review threshold (the encoder alone)", "F1 PyTorch", "F1 int8", "change"],
                      rows=f1_rows, caption="F1 of the encoder alone at its own review threshold on validation (not "
                      "the served blend's thresholds above): what int8 quantization changes")]),
        template.section("training", values, tables=[
            CardTable(columns=["epoch", "train loss", "validation mean PR-AUC"], rows=history)]),
        template.section("limitations", values),
        lineage_section(manifest),
    ]
    return ModelCard(model_name=manifest.model_name, version=manifest.version, sections=sections)


def _script_rows(manifest: Manifest) -> list[list[object]]:
    return [[script, category, m.rows, m.positives, m.pr_auc, confidence(m, "pr_auc"), m.roc_auc,
             m.review.f1, m.block.f1]
            for script, sliced in manifest.metrics.slices.get("script", {}).items()
            for category, m in getattr(sliced, "per_category", {}).items()]
