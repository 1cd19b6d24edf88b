"""The figures of a ``false-marketing`` run: each system (the served blend, the transformer, the
TF-IDF scorers, the lexicon) per category on the generated test split and on held-out real
rooms, the served decisions on both (cross-fitted on the held-out rooms), the real-world
checks, the quantization check and the per-script slices."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from common.decisions import Thresholds
from features.marketing import MARKETING_CATEGORIES, lexicon_scores, match_lexicon
from features.text import script_of
from kinds.false_marketing.config import (
    LEXICON_SYSTEM,
    LEXICON_THRESHOLDS,
    NEVER,
    SERVED_SYSTEM,
    TFIDF_SYSTEM,
    TRANSFORMER_SYSTEM,
    FalseMarketingConfig,
)
from kinds.false_marketing.data import MarketingData
from kinds.false_marketing.decisions import DecisionChooser
from kinds.false_marketing.encoder import OnnxEncoder
from kinds.false_marketing.fitting import HeldOutEvasions, HeldOutRooms
from kinds.false_marketing.runtime import FalseMarketingModel
from registry.metrics import RealCheck
from training.classification_metrics import BinaryMetrics, binary_metrics
from training.data.evasions import KINDS
from training.grouped import cluster_interval, heldout_checks
from training.real_checks import RealWorldChecks, file_checks, marketing_checks, missing, rate_check
from training.splits import Splits
from training.text_encoder import predict_torch

# The recall the maintainers' sealed set of real spoken evasions asks for (issue 30).
EVASION_RECALL_TARGET = 0.70
# 某 between two Chinese characters, as hosts say it inside a word to dodge a filter (关某节,
# 免某力): not 某某 (a masked name) nor 某 as "some" before a measure word or noun (某一, 某个, 某些,
# 某种, 某位, 某天, 某款, 某次, 某人, 某家, 某样, 某品牌, 某专家, 某地). An approximation of "inside
# a word": a masked surname (李某说) still counts.
HOST_EVASION = re.compile(r"(?<=[\u4e00-\u9fff])(?<!某)"
                          r"某(?![某一个些种位天款次人家样品专地])(?=[\u4e00-\u9fff])")


@dataclass
class SystemEvaluation:
    """One system's per-category test metrics."""

    name: str
    per_category: dict[str, BinaryMetrics]



def per_category_metrics(labels: np.ndarray, scores: np.ndarray, thresholds: dict[str, Thresholds],
                         n_boot: int = 0) -> dict[str, BinaryMetrics]:
    """BinaryMetrics for every category with at least one positive."""
    return {c: binary_metrics(labels[:, j], scores[:, j], thresholds[c], n_boot)
            for j, c in enumerate(MARKETING_CATEGORIES) if labels[:, j].any()}


def lexicon_matrix(texts: list[str]) -> np.ndarray:
    """The lexicon baseline's scores (rows x categories)."""
    rows = [lexicon_scores(match_lexicon(t)) for t in texts]
    return np.array([[row[c] for c in MARKETING_CATEGORIES] for row in rows])


def room_rate(key: str, description: str, hits: np.ndarray, rooms: np.ndarray, n_boot: int,
              target: float | None = None) -> RealCheck:
    """The share of ``hits`` with an interval that resamples whole ``rooms`` (a room's rows rise
    and fall together); Wilson's per row without bootstrap samples or with too few rooms to
    resample (``training.real_checks.MIN_GROUPS``)."""
    check = rate_check(key, description, hits, target, "at_least" if target is not None else None)
    low, high = cluster_interval(rooms, lambda rows: float(hits[rows].mean()) if len(rows) else None, n_boot)
    return check if low is None else check.model_copy(update={"low": low, "high": high})


def evasion_checks(evasions: HeldOutEvasions, caught: np.ndarray, flagged: np.ndarray, groups: np.ndarray,
                   n_boot: int) -> list[RealCheck]:
    """Disguised copies of held-out violating sentences caught (review or block), beside their
    own sentences undisguised (each counted once per copy) and by kind of evasion. ``groups``:
    each copy's room; the intervals resample whole rooms."""
    checks = [room_rate("heldout_evasions_caught", "evasions generated from held-out rooms' violating sentences "
                        "(one of each kind that applies): caught", caught, groups, n_boot, EVASION_RECALL_TARGET),
              room_rate("heldout_evasions_originals_caught", "the same sentences undisguised (once per copy): caught",
                        flagged[evasions.source], groups, n_boot)]
    for kind in KINDS:
        of_kind = evasions.kind == kind
        if of_kind.any():
            checks.append(room_rate(f"heldout_evasions_caught_{kind}", f"evasions of held-out rooms, {kind}: caught",
                                    caught[of_kind], groups[of_kind], n_boot))
    return checks


def host_evasion_checks(texts: list[str], violating: np.ndarray, flagged: np.ndarray, rooms: np.ndarray,
                        n_boot: int) -> list[RealCheck]:
    """The hosts' own disguises in held-out rooms: sentences with 某 inside a word (关某节 for
    关节, 免某力 for 免疫力; ``HOST_EVASION``), violating ones caught and clean ones flagged
    (each check left out when no held-out sentence of its kind holds one)."""
    disguised = np.array([bool(HOST_EVASION.search(text)) for text in texts], dtype=bool)
    checks = []
    for key, rows, what in (("heldout_host_evasions_caught", disguised & violating, "violating: caught"),
                            ("heldout_host_evasions_clean_flagged", disguised & ~violating, "clean: flagged")):
        if rows.any():
            description = f"the hosts' own evasions (某 inside a word) in held-out rooms, {what}"
            checks.append(room_rate(key, description, flagged[rows], rooms[rows], n_boot))
    return checks


class Evaluator:
    """Measures a run under ``config``: its held-out figures use the decisions ``DecisionChooser``
    makes, and name each real row's group ``group_column``."""

    def __init__(self, config: FalseMarketingConfig, group_column: str = "room") -> None:
        self.config = config
        self.group_column = group_column
        self.decisions = DecisionChooser(config)

    def held_out_figures(self, data: MarketingData, splits: Splits, validation: tuple[np.ndarray, np.ndarray],
                          held: HeldOutRooms, cutoff: float, matches: dict[int, list],
                          unseen: dict[str, np.ndarray] | None = None
                          ) -> tuple[RealWorldChecks, list[SystemEvaluation], pd.DataFrame]:
        """The served decisions on held-out rooms (the card's headline), cross-fitted: each fold's
        rows are decided by thresholds, budget, rule evidence and floor chosen on the *other*
        folds' held-out rows, so no figure reads a choice made on its own rows. Beside them, the
        ranking metrics of each system on the same rows, and each row's decision (by the sha256
        of its text)."""
        labels = data.labels[held.rows]
        verdicts: list = [None] * len(held.rows)
        evasions = held.evasions
        evasion_flags = np.zeros(0 if evasions is None else len(evasions.source), dtype=bool)
        for k in range(held.folds):
            inside = held.fold == k
            settings = self.decisions.settings(data, splits, validation, held.subset(~inside), cutoff, matches,
                                               unseen)
            for i in np.flatnonzero(inside):
                verdicts[i] = settings.policy.decide(held.served[i], matches[int(held.rows[i])], float(held.novelty[i]))
            if evasions is not None:
                for j in np.flatnonzero(held.fold[evasions.source] == k):
                    verdict = settings.policy.decide(evasions.served[j], match_lexicon(evasions.texts[j]),
                                                     float(evasions.novelty[j]))
                    evasion_flags[j] = verdict.decision != "allow"
        flagged = np.array([v.decision != "allow" for v in verdicts])
        category_flags = np.array([[c in v.labels for c in MARKETING_CATEGORIES] for v in verdicts])
        scores = np.array([v.score for v in verdicts])
        names = sorted({str(f.name) for f, _, real in data.files if real})
        note = (f"Every real labelled row ({len(held.rows):,} rows, {len(set(data.groups[held.rows])):,} groups, "
                f"from {', '.join(names)}) scored by one of {held.folds} runs that never saw its group, then "
                "decided by the served rules (thresholds, caps, lexicon) with every choice (thresholds, review "
                "budget, rule evidence, model-only floor) made on the other folds' rows. Intervals resample whole "
                "groups." + (f" The evasion rows: {len(evasions.source):,} disguised copies of the violating rows, "
                             "scored by the same runs and decided the same way, never used to choose anything."
                             if evasions is not None and len(evasions.source) else ""))
        blocked = np.array([v.decision == "block" for v in verdicts])
        checks = heldout_checks(labels.any(axis=1), flagged, scores, data.groups[held.rows].astype(str), labels,
                                category_flags, MARKETING_CATEGORIES, note, self.config.bootstrap_samples, blocked)
        if evasions is not None and len(evasions.source):
            rooms = data.groups[held.rows[evasions.source]].astype(str)
            checks.checks.extend(evasion_checks(evasions, evasion_flags, flagged, rooms, self.config.bootstrap_samples))
        checks.checks.extend(host_evasion_checks([data.texts[int(i)] for i in held.rows], labels.any(axis=1), flagged,
                                                 data.groups[held.rows].astype(str), self.config.bootstrap_samples))
        lexicon = np.array([[lexicon_scores(matches[int(i)])[c] for c in MARKETING_CATEGORIES] for i in held.rows])
        served_with_rules = np.array([[v.scores[c] for c in MARKETING_CATEGORIES] for v in verdicts])
        no_thresholds = dict.fromkeys(MARKETING_CATEGORIES, NEVER)
        systems = [SystemEvaluation(name, per_category_metrics(labels, values, no_thresholds))
                   for name, values in ((SERVED_SYSTEM + " with rule evidence", served_with_rules),
                                        (SERVED_SYSTEM, held.served), (TRANSFORMER_SYSTEM, held.transformer),
                                        (TFIDF_SYSTEM, np.nan_to_num(held.tfidf)), (LEXICON_SYSTEM, lexicon))]
        segments = pd.DataFrame({
            "sha256": [hashlib.sha256(data.texts[int(i)].encode("utf-8")).hexdigest() for i in held.rows],
            self.group_column: data.groups[held.rows].astype(str),
            "labels": ["|".join(c for c, on in zip(MARKETING_CATEGORIES, row, strict=True) if on) for row in labels],
            "decision": [v.decision for v in verdicts], "flagged_labels": ["|".join(v.labels) for v in verdicts],
            "score": scores, "fold": held.fold})
        return checks, systems, segments

    def test_systems(self, data: MarketingData, splits: Splits, test_labels: np.ndarray, served: np.ndarray,
                      transformer: np.ndarray, ngram: np.ndarray, thresholds: dict[str, Thresholds],
                      alone: dict[str, Thresholds], ngram_thresholds: dict[str, Thresholds]) -> list[SystemEvaluation]:
        """The served blend, the transformer, TF-IDF and the lexicon on the generated test split."""
        n_boot = self.config.bootstrap_samples
        return [
            SystemEvaluation(SERVED_SYSTEM, per_category_metrics(test_labels, served, thresholds, n_boot)),
            SystemEvaluation(TRANSFORMER_SYSTEM, per_category_metrics(test_labels, transformer, alone)),
            SystemEvaluation(TFIDF_SYSTEM, per_category_metrics(test_labels, np.nan_to_num(ngram), ngram_thresholds)),
            SystemEvaluation(LEXICON_SYSTEM, per_category_metrics(
                test_labels, lexicon_matrix([data.texts[i] for i in splits.test]),
                dict.fromkeys(MARKETING_CATEGORIES, LEXICON_THRESHOLDS))),
        ]

    def test_decisions(self, model: FalseMarketingModel, data: MarketingData, splits: Splits) -> RealWorldChecks:
        """Served decisions on the (synthetic) test split: clean flag rate, positives caught,
        binary F1, and evasion variants caught."""
        texts = [data.texts[i] for i in splits.test]
        positive = data.labels[splits.test].any(axis=1)
        flags = np.array([a.decision != "allow" for a in model.analyze(texts, spans_from_model=False)])
        checks = file_checks(flags, positive, "test split")
        if data.evasion is not None:
            evaded = data.evasion[splits.test] & positive
            checks.checks.append(rate_check("evasion_caught", "disguised claims (evasion variants) caught",
                                            flags[evaded]))
        return checks

    def real_world(self, model: FalseMarketingModel, data: MarketingData) -> RealWorldChecks:
        """The served model on the real files of ../shared/data (rows of the training data left out)."""
        if not self.config.real_checks:
            return missing("the run was configured without them (real_checks=false)")
        return marketing_checks(model, exclude=set(data.texts), review_budget=self.config.review_budget)

    def quantization_check(self, model: Any, tokenizer: Any, fp32: OnnxEncoder, texts: list[str],
                            labels: np.ndarray, int8_scores: np.ndarray,
                            thresholds: dict[str, Thresholds]) -> dict[str, Any]:
        """How far the ONNX files (fp32 and int8) score from PyTorch on ``texts``, and each
        category's F1 at its review threshold before and after quantization."""
        torch_scores = predict_torch(model, tokenizer, texts)
        fp32_scores = fp32.predict(texts)
        f1_change = {}
        for j, category in enumerate(MARKETING_CATEGORIES):
            if not labels[:, j].any():
                continue
            review = thresholds[category].review
            before = binary_metrics(labels[:, j], torch_scores[:, j], thresholds[category]).review.f1
            after = binary_metrics(labels[:, j], int8_scores[:, j], thresholds[category]).review.f1
            f1_change[category] = {"threshold": review, "f1_pytorch": before, "f1_int8": after,
                                   "change": after - before}
        return {
            "rows": len(texts),
            "max_abs_diff_fp32_vs_pytorch": float(np.abs(fp32_scores - torch_scores).max()),
            "max_abs_diff_int8_vs_pytorch": float(np.abs(int8_scores - torch_scores).max()),
            "mean_abs_diff_int8_vs_pytorch": float(np.abs(int8_scores - torch_scores).mean()),
            "p99_abs_diff_int8_vs_pytorch": float(np.quantile(np.abs(int8_scores - torch_scores), 0.99)),
            "f1_at_review_threshold": f1_change,
        }

    @staticmethod
    def per_script(data: MarketingData, splits: Splits, labels: np.ndarray, scores: np.ndarray,
                    thresholds: dict[str, Thresholds], n_boot: int,
                    min_rows: int = 20) -> dict[str, dict[str, BinaryMetrics]]:
        """The served system's per-category test metrics (with bootstrap intervals) for each
        script with enough rows."""
        scripts = np.array([script_of(data.texts[i]) for i in splits.test])
        return {script: per_category_metrics(labels[scripts == script], scores[scripts == script], thresholds, n_boot)
                for script in sorted(set(scripts.tolist())) if (scripts == script).sum() >= min_rows}
