"""The decisions of a ``false-marketing`` run, chosen on held-out rows: the blend weight, the
per-category thresholds (held-out real rooms where they hold enough positives, else
validation), the review budget, each lexicon rule's measured evidence (and the block rules
that only review), the model-only block floor (``DecisionSettings``, from which the served ``SegmentPolicy`` is built)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from common.decisions import Thresholds
from features.marketing import MARKETING_CATEGORIES
from kinds.false_marketing.blend import BlendSpace, blend
from kinds.false_marketing.config import NEVER, FalseMarketingConfig
from kinds.false_marketing.data import MarketingData
from kinds.false_marketing.fitting import HeldOutRooms
from policy.segments import RULE_EVIDENCE_PRIOR, SegmentPolicy, measured_rule_evidence
from training.classification_metrics import precision_recall
from training.real_checks import wilson
from training.splits import Splits
from training.text_encoder import mean_average_precision
from training.thresholds import (
    MIN_BLOCK_SUPPORT,
    UNREACHABLE,
    ThresholdChoice,
    apply_review_budget,
    best_f1_thresholds,
    choose_thresholds,
    held_out_block_objective,
    shared_review_threshold,
)


@dataclass
class DecisionSettings:
    """What decides a segment, chosen on held-out rows: thresholds (and how), the review
    budget's shares, each rule's measured evidence and the segment policy built from them."""

    thresholds: dict[str, Thresholds]
    choices: dict[str, ThresholdChoice | None]
    budget_shares: dict[str, float]
    evidence: dict[str, dict[str, float]]
    policy: SegmentPolicy



def review_only_rules(evidence: dict[str, dict], z: float) -> frozenset[str]:
    """The block rules that real rows showed wrong too often to block alone: the Wilson upper
    bound (``z`` standard errors) of the share of their matches that violate (in any category:
    a block acts on the segment) stays below the evidence a block rule is assumed to have."""
    demoted = set()
    for rule_id, measured in evidence.items():
        if measured["severity"] != "block":
            continue
        if wilson(measured["violating"], measured["matches"], z)[1] < RULE_EVIDENCE_PRIOR["block"]:
            demoted.add(rule_id)
    return frozenset(demoted)


def choose_blend_weight(labels: np.ndarray, transformer: np.ndarray, ngram: np.ndarray,
                        weights: list[float], space: BlendSpace = "probability") -> tuple[float, dict[str, float]]:
    """The transformer weight (among ``weights``) whose blend in ``space`` has the best mean
    PR-AUC over ``labels`` (held-out real rows or validation); ties go to the larger weight."""
    search = {f"{w:.2f}": mean_average_precision(labels, blend(transformer, ngram, w, space)) for w in weights}
    best = max(sorted(weights, reverse=True), key=lambda w: search[f"{w:.2f}"])
    return best, search


class DecisionChooser:
    """Chooses a run's decisions (``settings``) and its blend weight under ``config``: the
    precision and recall targets, ``min_real_positives``, the review budget and the model-only
    block precision."""

    def __init__(self, config: FalseMarketingConfig) -> None:
        self.config = config

    def blend_weight(self, data: MarketingData, held: HeldOutRooms | None, labels: np.ndarray,
                      transformer: np.ndarray, ngram: np.ndarray) -> tuple[float, dict[str, float]]:
        """The transformer's weight in the blend: chosen on the held-out real rows (categories
        with at least ``min_real_positives`` of them; fewer only add noise), else on validation.
        Sets ``held.served`` (and its evasions')."""
        if held is None:
            return choose_blend_weight(labels, transformer, ngram, self.config.blend_weights, self.config.blend_space)
        real_labels = data.labels[held.rows]
        enough = real_labels.sum(axis=0) >= self.config.min_real_positives
        weight, search = choose_blend_weight(real_labels * enough, held.transformer, held.tfidf,
                                             self.config.blend_weights, self.config.blend_space)
        held.served = blend(held.transformer, held.tfidf, weight, self.config.blend_space)
        if held.evasions is not None:
            evasions = held.evasions
            evasions.served = blend(evasions.transformer, evasions.tfidf, weight, self.config.blend_space)
        return weight, search

    def choose(self, labels: np.ndarray, scores: np.ndarray) -> tuple[dict[str, Thresholds], dict]:
        """Per category with both classes in ``labels``: the thresholds that meet the recall and
        precision targets on ``scores`` (never flags a category without them)."""
        thresholds, choices = {}, {}
        for j, category in enumerate(MARKETING_CATEGORIES):
            if labels[:, j].min() == labels[:, j].max():
                thresholds[category], choices[category] = NEVER, None
                continue
            choice = choose_thresholds(labels[:, j], scores[:, j], self.config.precision_target,
                                       self.config.recall_target)
            thresholds[category], choices[category] = choice.thresholds, choice
        return thresholds, choices

    def thresholds(self, labels: np.ndarray, scores: np.ndarray, real_labels: np.ndarray | None,
                    real_scores: np.ndarray | None, rule_flagged: np.ndarray | None = None
                    ) -> tuple[dict[str, Thresholds], dict]:
        """Per category: on held-out real rooms when they hold ``min_real_positives`` of its
        positives (block where the Wilson lower bound of precision at ``block_confidence_z``
        reaches the precision target; review by ``review_rule``: one threshold shared by these
        categories at the best F1 of the segment decision, or each at its own best F1), else on
        validation (the recall and precision targets). ``rule_flagged``: the held-out rows a
        lexicon rule flags whatever the thresholds (none when not given)."""
        thresholds, choices = self.choose(labels, scores)
        if real_labels is None:
            return thresholds, choices
        on_real = [j for j in range(len(MARKETING_CATEGORIES))
                   if real_labels[:, j].sum() >= self.config.min_real_positives]
        for j in on_real:
            category = MARKETING_CATEGORIES[j]
            choice = best_f1_thresholds(real_labels[:, j], real_scores[:, j], self.config.precision_target,
                                        MIN_BLOCK_SUPPORT, self.config.block_confidence_z)
            thresholds[category], choices[category] = choice.thresholds, choice
        if self.config.review_rule == "shared" and on_real:
            cut = self._shared_cut(thresholds, real_labels, real_scores, on_real, rule_flagged)
            for j in on_real:
                category = MARKETING_CATEGORIES[j]
                thresholds[category], choices[category] = self._shared_review(
                    choices[category], cut, real_labels[:, j], real_scores[:, j])
        return thresholds, choices

    @staticmethod
    def _shared_cut(thresholds: dict[str, Thresholds], real_labels: np.ndarray, real_scores: np.ndarray,
                    on_real: list[int], rule_flagged: np.ndarray | None) -> float:
        """The review cut shared by the categories ``on_real``, for the decision as served: a row is
        flagged by a rule, by another category at its review threshold (before any budget), or by
        one of these at ``min(cut, its block threshold)``."""
        flagged = (np.zeros(len(real_labels), dtype=bool) if rule_flagged is None
                   else np.asarray(rule_flagged, dtype=bool).copy())
        for j, category in enumerate(MARKETING_CATEGORIES):
            threshold = thresholds[category].block if j in on_real else thresholds[category].review
            flagged |= real_scores[:, j] >= threshold
        return shared_review_threshold(real_labels.any(axis=1), real_scores[:, on_real], flagged)

    def _shared_review(self, choice: ThresholdChoice, cut: float, labels: np.ndarray, scores: np.ndarray
                       ) -> tuple[Thresholds, ThresholdChoice]:
        """``choice`` with its review threshold at the shared ``cut`` (capped at its block)."""
        shared = Thresholds(block=choice.thresholds.block, review=min(cut, choice.thresholds.block))
        precision, recall, _ = precision_recall(labels > 0, scores >= shared.review)
        block = held_out_block_objective(self.config.precision_target, MIN_BLOCK_SUPPORT,
                                         self.config.block_confidence_z)
        return shared, choice.model_copy(update={
            "thresholds": shared, "review_precision": precision, "review_recall": recall, "review_shared": True,
            "objective": ("on held-out real rows: review = one threshold shared by the categories with enough real "
                          "positives, at the best F1 of the segment decision (flagged by any category or lexicon "
                          f"rule, against violating in any category); block = {block}")})

    def apply_budget(self, thresholds: dict[str, Thresholds], data: MarketingData, splits: Splits,
                      scores: np.ndarray, labels: np.ndarray, held: HeldOutRooms | None,
                      unseen: dict[str, np.ndarray] | None = None,
                      min_rows: int = 50) -> tuple[dict[str, Thresholds], dict]:
        """The review budget: review thresholds are raised until at most ``review_budget`` of
        the clean rows reach review, overall and within each source of clean text (synthetic
        talk, real reviews, titles, ad copy, chat, the held-out real rooms, and the ``unseen``
        clean real texts by source: served scores of text no model read) with at least
        ``min_rows`` rows. Returns the thresholds and each group's share."""
        sources = (np.full(len(splits.validation), "file") if data.sources is None
                   else data.sources[splits.validation].astype(str))
        extra = [("held-out real rooms", held.served, data.labels[held.rows])] if held is not None else []
        extra += [(name, rows, np.zeros((len(rows), labels.shape[1]))) for name, rows in (unseen or {}).items()
                  if len(rows)]
        for name, rows, row_labels in extra:
            scores = np.vstack([scores, rows])
            labels = np.vstack([labels, row_labels])
            sources = np.concatenate([sources, np.full(len(rows), name)])
        clean = ~labels.any(axis=1)
        groups = {} if sources is None else {
            str(name): clean & (sources == name) for name in sorted(set(sources[clean]))
            if (clean & (sources == name)).sum() >= min_rows}
        return apply_review_budget(thresholds, scores, MARKETING_CATEGORIES, clean, self.config.review_budget,
                                   groups)

    def model_only_floor(self, policy: SegmentPolicy, held: HeldOutRooms, matches: list,
                          labels: np.ndarray) -> SegmentPolicy:
        """The lowest floor (at least the configured one) at which the blocks the model would
        make alone (score at a category's block threshold, no rule of that category) on
        held-out real rooms reach ``model_only_block_precision``; never (1.01) when none does."""
        rows = []
        for i, row in enumerate(held.served):
            matched = {m.category for m in matches[i]}
            blocking = [row[j] for j, c in enumerate(MARKETING_CATEGORIES)
                        if c not in matched and row[j] >= policy.thresholds[c].block]
            if blocking:
                rows.append((float(max(blocking)), bool(labels[i].any())))
        for candidate in sorted({policy.model_only_block_floor, *[s for s, _ in rows]}):
            if candidate < policy.model_only_block_floor:
                continue
            kept = [positive for score, positive in rows if score >= candidate]
            if not kept or np.mean(kept) >= self.config.model_only_block_precision:
                return replace(policy, model_only_block_floor=float(candidate))
        return replace(policy, model_only_block_floor=UNREACHABLE)

    def settings(self, data: MarketingData, splits: Splits, validation: tuple[np.ndarray, np.ndarray],
                           held: HeldOutRooms | None, cutoff: float, matches: dict[int, list],
                           unseen: dict[str, np.ndarray] | None = None) -> DecisionSettings:
        """Thresholds, the review budget, rule evidence and the model-only floor, chosen on the
        held-out rows ``held`` (and the validation rows where a category has too few of them)."""
        labels, scores = validation
        real_labels = data.labels[held.rows] if held is not None else None
        rule_flagged = None if held is None else np.array([bool(matches[int(i)]) for i in held.rows], dtype=bool)
        thresholds, choices = self.thresholds(labels, scores, real_labels, None if held is None else held.served,
                                              rule_flagged)
        thresholds, budget_shares = self.apply_budget(thresholds, data, splits, scores, labels, held, unseen)
        real_matches = [matches[int(i)] for i in held.rows] if held is not None else []
        evidence = measured_rule_evidence(real_matches, real_labels, MARKETING_CATEGORIES) if held is not None else {}
        policy = SegmentPolicy(thresholds, MARKETING_CATEGORIES, cutoff, self.config.model_only_block_floor,
                               {k: v["evidence"] for k, v in evidence.items()},
                               review_only_rules(evidence, self.config.rule_demotion_z))
        if held is not None:
            policy = self.model_only_floor(policy, held, real_matches, real_labels)
        return DecisionSettings(thresholds, choices, budget_shares, evidence, policy)
