"""Build the merchant-risk model card from the run's own metrics objects; its prose is
``card_template.md`` beside this module (the review budget's paragraph, whose words follow
the figures, is written here)."""

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
from training.card_template import CardTemplate

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
    """Write the card's plots into ``folder`` and return the card (its prose: ``card_template.md``)."""
    manifest, test, choice, splits = result.manifest, result.test_metrics, result.threshold_choice, result.splits
    totals: dict[str, float] = {}
    for booster in result.model.boosters:
        for name, share in gain_shares(booster).items():
            totals[name] = totals.get(name, 0.0) + share / len(result.model.boosters)
    shares = sorted(totals.items(), key=lambda kv: -kv[1])
    graph_share = sum(v for k, v in shares if k not in table.spec.own_features)
    template = CardTemplate.beside(__file__)
    values = {"manifest": manifest, "owner": owner, "changes": changes_against(previous, manifest),
              "members": len(result.model.boosters), "spec": table.spec, "feature_count": len(table.spec.feature_names),
              "graph": "on" if table.spec.graph else "off", "link_types": ", ".join(table.spec.link_types),
              "graph_share": graph_share}
    sections = [
        template.section("model_details", values),
        template.section("intended_use", values),
        template.section("training_data", values, tables=[data_files_table(manifest),
                                                          balance_table(table.labels, splits)]),
        template.section("features", values, tables=[
            CardTable(columns=["feature", "share of total gain"], rows=[list(r) for r in shares[:25]],
                      caption="Top 25 features by gain")]),
        evaluation_section(test, result.slices, "merchant age band", table.labels[splits.test],
                           result.test_scores, choice, folder),
        _with_budget(thresholds_section(choice, test), result.review_budget, choice),
        template.section("limitations", values),
        lineage_section(manifest),
    ]
    return ModelCard(model_name=manifest.model_name, version=manifest.version, sections=sections)


def _with_budget(section: CardSection, cost: BudgetCost, choice: ThresholdChoice) -> CardSection:
    """The thresholds section with the review budget and the recall it costs."""
    return section.model_copy(update={"paragraphs": [*section.paragraphs, budget_paragraph(cost, choice)],
                                      "tables": [*section.tables, budget_table(cost, choice)]})
