"""Build the false-marketing model card from the run's own metrics objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
from training.plots import multilabel_plots

if TYPE_CHECKING:
    from kinds.false_marketing.pipeline import MarketingData, MarketingTrainingResult


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


def _heldout_section(result: MarketingTrainingResult) -> CardSection:
    """The headline: served decisions on real labelled rows held out by group, beside the same
    decisions on the generated test split, and each system's ranking on the held-out rows."""
    if result.real_heldout is None:
        return CardSection(key="real_heldout", title="Real held-out rooms (headline)", paragraphs=[
            "MISSING: this version was trained without real labelled files (`--real`), so no figure here "
            "measures real live-room speech held out by room. Treat the synthetic figures below as a "
            "check of the pipeline only."])
    systems = [[category, system.name, m.positives, m.roc_auc, m.pr_auc]
               for system in result.heldout_systems for category, m in system.per_category.items()]
    evidence = [[rule, v["matches"], v["correct"], v["evidence"]] for rule, v in result.rule_evidence.items()]
    return CardSection(key="real_heldout", title="Real held-out rooms (headline)", paragraphs=[
        result.real_heldout.note,
        "These are the figures to judge this model by: real speech, each row scored by a run that never "
        "saw its live room, decided by the served thresholds, caps and lexicon rules. The synthetic test "
        "split stands beside them for comparison only.",
    ], tables=[
        CardTable(columns=CHECK_COLUMNS, rows=checks_rows(result.real_heldout, "real, held-out rooms")
                  + checks_rows(result.test_decisions, "synthetic test split"),
                  caption="Served decisions (review or block = flagged); intervals resample whole rooms "
                          "(F1, ROC-AUC) or are Wilson intervals (rates)"),
        CardTable(columns=["category", "system", "positives", "ROC-AUC", "PR-AUC"], rows=systems,
                  caption="Ranking per category on the held-out rooms: the served score with rule evidence, "
                          "the blend, each half alone and the lexicon"),
        CardTable(columns=["rule", "matches in real rows", "of its category", "evidence (smoothed precision)"],
                  rows=evidence, caption="Each lexicon rule on the real labelled rows: its precision is the "
                                         "evidence it adds to its category's score when it matches"),
    ])


def build_marketing_card(result: MarketingTrainingResult, data: MarketingData, folder: Path, owner: str,
                         previous: Manifest | None = None) -> ModelCard:
    """The card: model, data, three systems per category, thresholds, quantization, lineage;
    its plots are written into ``folder`` (the bundle's staging folder)."""
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
                               "no positives in validation: the model never flags it" if choice is None
                               else ("" if choice.block_reachable else "precision target unreachable: review only")])
    f1_rows = [[c, v["threshold"], v["f1_pytorch"], v["f1_int8"], v["change"]]
               for c, v in quantization["f1_at_review_threshold"].items()]
    history = [[h["epoch"], h["train_loss"], h["validation_mean_pr_auc"]] for h in result.training["history"]]
    served = result.systems[0].per_category
    macro = float(np.mean([m.pr_auc for m in served.values() if m.pr_auc is not None])) if served else 0.0
    weight = manifest.serving_params.get("transformer_weight", 1.0)
    search = manifest.serving_params.get("blend_search", {})
    sections = [
        CardSection(key="model_details", title="Model details", bullets=[
            f"name: {manifest.model_name}; version: {manifest.version}; created: {manifest.created_at}",
            f"owner: {owner}",
            f"what changed: {changes_against(previous, manifest)}",
            "type: BERT-style encoder (transformers) over characters of normalized text, multi-label "
            "head with one sigmoid per category; served as int8 ONNX with ONNX Runtime, together "
            f"with {len(RULES)} lexicon rules",
            (f"fine-tuned from the local checkpoint {parameters['base_model']}"
             + (f" (masked-LM base pretrained on {manifest.lineage.base_model['corpus']['texts']:,} real texts "
                f"of ../shared/data: {manifest.lineage.base_model['corpus']['rows_per_source']})"
                if manifest.lineage.base_model and manifest.lineage.base_model.get("corpus") else "")
             if parameters.get("base_model")
             else f"trained from scratch: {parameters['layers']} layers, hidden {parameters['hidden_size']}, "
                  f"{parameters['heads']} heads, character tokenizer built on the training split"),
            f"served score per category: {weight:.2f} x transformer + {1 - weight:.2f} x TF-IDF "
            f"n-gram scorer; weight chosen on validation mean PR-AUC among {search}",
            f"served test macro PR-AUC over categories with positives: {macro:.4f}",
        ]),
        _heldout_section(result),
        CardSection(key="intended_use", title="Intended use", paragraphs=[
            "Flags illegal or deceptive claims in ASR transcripts of livestream sales talk, per "
            "segment, with the words that carry them, so that the platform can warn, review or "
            "cut a stream within seconds.",
        ], bullets=[
            "Out of scope: judging whether a claim is true (a truthful 'lowest price this year' is "
            "still flagged for review), audio or video content, languages other than Chinese.",
            "Decisions combine the model with lexicon rules; a blocking rule (e.g. off-platform "
            "contact, counterfeit wording, medical efficacy) blocks even if the model is unsure.",
        ]),
        CardSection(key="training_data", title="Training and evaluation data", paragraphs=[
            "Generated (and other --data) rows: seeded split stratified by each segment's first category; "
            "the test metrics below are on their test split. Real labelled rows (--real): grouped folds by "
            "room for the held-out figures above, then all of them train the served model. Categories with "
            "enough real positives take their thresholds from the held-out rooms, the others from validation "
            "scores of the int8 model as served.",
        ], tables=[data_files_table(manifest),
                   CardTable(columns=["split", "rows"], rows=[[k, v] for k, v in result.splits.sizes().items()],
                             caption="Split sizes"),
                   CardTable(columns=["category", "segments", "share"], rows=balance,
                             caption="Labels in the whole file")]),
        CardSection(key="evaluation", title="Evaluation on test: served blend, transformer and two baselines", paragraphs=[
            "All systems use the same split: the served blend, the transformer alone, the "
            "lexicon rules alone (score 1 for a blocking rule, 0.5 for a review rule), and TF-IDF "
            "character 1-3-grams with one logistic regression per category; each system's "
            "thresholds are chosen on validation the same way.",
        ], tables=[CardTable(columns=["category", "system", "positives", "PR-AUC", "PR-AUC 95% CI", "ROC-AUC",
                                      "review precision", "review recall", "review F1",
                                      "block precision", "block recall"],
                             rows=_comparison_rows(result)),
                    CardTable(columns=["script", "category", "rows", "positives", "PR-AUC", "PR-AUC 95% CI",
                                       "ROC-AUC", "review F1", "block F1"], rows=_script_rows(manifest),
                              caption="Served blend per script of the original text (traditional: "
                                      "changed by OpenCC t2s; latin_mixed: Latin letters such as pinyin "
                                      "or handles; slices with fewer than 20 test rows left out)")],
                    images=[CardImage(file=file, caption=caption) for file, caption in plots]),
        real_world_section(result.real_world, result.test_decisions),
        CardSection(key="decision_safety", title="Decisions under drift", bullets=[
            f"review budget: review thresholds are raised until at most {parameters.get('review_budget', 0.05):.0%} "
            "of clean validation segments (synthetic talk and real clean text) reach review in any "
            f"category; measured share {budget_share:.2%}",
            "novelty: the share of a segment's character bigrams never seen in training; above "
            f"{manifest.serving_params.get('novelty_cutoff', 1.0):.3f} (the "
            f"{manifest.serving_params.get('novelty_quantile', 0.99):.0%} validation quantile) evidence from the "
            "model alone is capped at review and cannot block (policy/calls.py)",
            "lexicon rules still raise decisions on any text: a blocking rule blocks, a review rule reviews",
        ]),
        CardSection(key="thresholds", title="Thresholds per category", paragraphs=[
            f"block = lowest validation score with precision >= {parameters['precision_target']} over at "
            f"least 20 flagged segments; review = highest score with recall >= {parameters['recall_target']}, "
            "then raised to respect the review budget (block raised with it where needed).",
        ], tables=[CardTable(columns=["category", "block", "review", "validation block precision",
                                      "validation review recall", "note"], rows=threshold_rows)]),
        CardSection(key="quantization", title="ONNX export and int8 quantization", bullets=[
            f"validation segments compared: {quantization['rows']:,}",
            f"max |fp32 ONNX - PyTorch| probability: {quantization['max_abs_diff_fp32_vs_pytorch']:.2e}",
            f"max |int8 ONNX - PyTorch| probability: {quantization['max_abs_diff_int8_vs_pytorch']:.4f} "
            f"(mean {quantization['mean_abs_diff_int8_vs_pytorch']:.4f})",
        ], tables=[CardTable(columns=["category", "review threshold", "F1 PyTorch", "F1 int8", "change"],
                             rows=f1_rows, caption="F1 at the review threshold on validation")]),
        CardSection(key="training", title="Training", tables=[
            CardTable(columns=["epoch", "train loss", "validation mean PR-AUC"], rows=history)],
            bullets=[f"training time: {result.training['train_seconds']:.0f}s; best validation mean "
                     f"PR-AUC {result.training['best_validation_mean_pr_auc']:.4f}"]),
        CardSection(key="limitations", title="Limitations, risks and mitigations", bullets=[
            "The synthetic test figures show that the pipeline works on the generator's language; the "
            "real-world checks above are the evidence about real text. Real ASR errors, dialects and "
            "new evasion tricks will lower both.",
            "Real live-room speech comes from 46 rooms of April 2025 (health supplements, cosmetics, devices, "
            "food); rooms of other verticals, other years or other ASR systems differ, and categories that "
            "brand rooms rarely say (counterfeit, off-platform contact) have almost no real positives: "
            "their thresholds come from generated validation rows and the lexicon carries them.",
            "The base encoder's masked-LM corpus includes unlabelled sentences of the labelled rooms (never the "
            "labelled sentences themselves), so the held-out-room figures may be slightly optimistic for rooms "
            "whose speech the base never read.",
            "Texts longer than 126 characters are scored in overlapping windows (max per category).",
            "Model spans come from occlusion (the 6-character window whose removal lowers the score "
            "most) and are approximate; lexicon spans are exact.",
            "Mitigation: thresholds target 95% precision for block; everything else goes to review.",
        ]),
        lineage_section(manifest),
    ]
    return ModelCard(model_name=manifest.model_name, version=manifest.version, sections=sections)


def _script_rows(manifest: Manifest) -> list[list[object]]:
    return [[script, category, m.rows, m.positives, m.pr_auc, confidence(m, "pr_auc"), m.roc_auc,
             m.review.f1, m.block.f1]
            for script, sliced in manifest.metrics.slices.get("script", {}).items()
            for category, m in getattr(sliced, "per_category", {}).items()]
