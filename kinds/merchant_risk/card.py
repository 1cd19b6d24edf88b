"""Build the merchant-risk model card from the run's own metrics objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from registry.bundle import Manifest
from registry.cards import CardSection, CardTable, ModelCard
from training.boosting import gain_shares
from training.card_parts import (
    balance_table,
    changes_against,
    data_files_table,
    evaluation_section,
    lineage_section,
    thresholds_section,
)

if TYPE_CHECKING:
    from kinds.merchant_risk.pipeline import MerchantTable, MerchantTrainingResult
    from training.thresholds import BudgetCost, ReviewPoint, ThresholdChoice


def _share(value: float) -> str:
    return f"{value:.1%}"


def budget_paragraph(cost: BudgetCost, choice: ThresholdChoice) -> str:
    """The review budget in words: what it lets through and the recall it costs, on held-out data."""
    served, free = cost.at_budget, cost.at_recall_target
    how = ("" if choice.review_budget_confidence is None else
           f", held at {choice.review_budget_confidence:.0%} confidence on validation by review_budget_confidence")
    verdict = ("within the budget" if cost.within_budget
               else "ABOVE the budget")
    if choice.review_raised_by_budget:
        cost_words = (f"the recall target {choice.recall_target:.2f} alone (review >= {free.threshold:.4f}) "
                      f"would catch {_share(free.recall)} but send {_share(free.ordinary_share)} of ordinary "
                      f"merchants to review: the budget costs {cost.recall_cost * 100:.1f} points of recall "
                      f"({_share(free.recall)} -> {_share(served.recall)}).")
    else:
        cost_words = (f"the recall target {choice.recall_target:.2f} already keeps review within the budget, "
                      "so the budget costs no recall.")
    return (f"Review budget: at most {cost.budget:.0%} of ordinary (non-suspicious) merchants may reach "
            f"review (review_budget in the training config{how}); the budget outranks the recall target. "
            f"On the held-out {cost.data} split ({cost.rows:,} merchants, {cost.ordinary:,} ordinary) the served "
            f"review threshold {served.threshold:.4f} sends {_share(served.ordinary_share)} of ordinary merchants "
            f"to review ({verdict}) with review precision "
            f"{'–' if served.precision is None else f'{served.precision:.2f}'} and catches "
            f"{_share(served.recall)} of suspicious merchants; {cost_words}")


def budget_table(cost: BudgetCost, choice: ThresholdChoice) -> CardTable:
    """The served review threshold beside the recall target's, measured on held-out data."""
    def row(name: str, point: ReviewPoint) -> list:
        interval = ("–" if point.ordinary_share_low is None
                    else f"[{_share(point.ordinary_share_low)}, {_share(point.ordinary_share_high)}]")
        return [name, point.threshold, _share(point.ordinary_share), interval, point.flagged,
                point.precision, point.recall]

    return CardTable(
        columns=["review threshold", "threshold", f"ordinary merchants at review ({cost.data})", "95% interval",
                 f"flagged ({cost.data})", f"review precision ({cost.data})", f"review recall ({cost.data})"],
        rows=[row(f"served ({cost.budget:.0%} review budget)", cost.at_budget),
              row(f"recall target {choice.recall_target:.2f} alone (not served)", cost.at_recall_target)],
        caption=f"What the review budget costs, measured on the held-out {cost.data} split")


def build_merchant_card(result: MerchantTrainingResult, table: MerchantTable, folder: Path,
                        owner: str, previous: Manifest | None = None) -> ModelCard:
    """Write the card's plots into ``folder`` and return the card."""
    manifest, test, choice, splits = result.manifest, result.test_metrics, result.threshold_choice, result.splits
    totals: dict[str, float] = {}
    for booster in result.model.boosters:
        for name, share in gain_shares(booster).items():
            totals[name] = totals.get(name, 0.0) + share / len(result.model.boosters)
    shares = sorted(totals.items(), key=lambda kv: -kv[1])
    graph_share = sum(v for k, v in shares if k not in table.spec.own_features)
    sections = [
        CardSection(key="model_details", title="Model details", bullets=[
            f"name: {manifest.model_name}; version: {manifest.version}; created: {manifest.created_at}",
            f"owner: {owner}",
            f"what changed: {changes_against(previous, manifest)}",
            f"type: {len(result.model.boosters)} bagged LightGBM models (log-odds averaged) over the "
            "merchant's own behaviour and aggregates over linked merchants",
            "training: each member early-stopped on validation, then retrained on train + "
            "validation with the same number of rounds scaled to the data; thresholds were chosen "
            "on the validation scores of the members before that refit",
            f"feature set: {table.spec.name} ({len(table.spec.feature_names)} features; graph "
            f"features {'on' if table.spec.graph else 'off'}; link types {', '.join(table.spec.link_types)})",
        ]),
        CardSection(key="intended_use", title="Intended use", paragraphs=[
            "Scores merchants for fraud rings, fake orders, no-ship and abusive service, so that "
            "merchants at block are reviewed and their listings and streams go to review.",
        ], bullets=[
            "Out of scope: a final ban without human review; merchants whose links were not "
            "collected (their graph features are empty and the model relies on behaviour alone).",
        ]),
        CardSection(key="training_data", title="Training and evaluation data", paragraphs=[
            "Flagged-neighbour features use training labels only: a merchant's own label never "
            "reaches its features, and validation / test labels are never used as features.",
        ], tables=[data_files_table(manifest), balance_table(table.labels, splits)]),
        CardSection(key="features", title="Features", paragraphs=[
            f"Graph (linked-merchant) features carry {graph_share:.1%} of the total split gain.",
        ], tables=[CardTable(columns=["feature", "share of total gain"], rows=[list(r) for r in shares[:25]],
                             caption="Top 25 features by gain")]),
        evaluation_section(test, result.slices, "merchant age band", table.labels[splits.test],
                           result.test_scores, choice, folder),
        _with_budget(thresholds_section(choice, test), result.review_budget, choice),
        CardSection(key="limitations", title="Limitations, risks and mitigations", bullets=[
            "Honest merchants that share a logistics agency's return address or a family owner "
            "ID look like rings; the card's per-age-band metrics show where errors concentrate.",
            "Ring members not yet caught are labelled honest in training data, so recall on new "
            "rings is limited by how well past rings were labelled.",
            "Mitigation: a block only raises listing and stream decisions to review, never to block.",
        ]),
        lineage_section(manifest),
    ]
    return ModelCard(model_name=manifest.model_name, version=manifest.version, sections=sections)


def _with_budget(section: CardSection, cost: BudgetCost, choice: ThresholdChoice) -> CardSection:
    """The thresholds section with the review budget and the recall it costs."""
    return section.model_copy(update={"paragraphs": [*section.paragraphs, budget_paragraph(cost, choice)],
                                      "tables": [*section.tables, budget_table(cost, choice)]})
