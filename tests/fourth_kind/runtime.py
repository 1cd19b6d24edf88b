"""The review-spam runtime: a word-weight logistic model kept as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Self

import numpy as np

from common.decisions import DEFAULT_THRESHOLD_KEY, Thresholds, decide
from features.reasons import Reason
from kinds.runtime import (
    Explain,
    Records,
    RuntimeBase,
    Scores,
    as_columns,
    explain_cut,
)

WEIGHTS_FILE = "weights.json"


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return re.findall(r"[a-z0-9]+", text.lower())


class ReviewSpamModel(RuntimeBase):
    """Score = sigmoid(bias + the sum of the review's word weights)."""

    def __init__(self, weights: dict[str, float], bias: float, thresholds: Thresholds, tag: str) -> None:
        self.weights, self.bias, self.thresholds, self.tag = weights, bias, thresholds, tag

    @classmethod
    def from_bundle(cls, bundle: Any, *, device: str = "cpu", threads: int = 0) -> Self:
        """Load from a verified bundle."""
        saved = json.loads((Path(bundle.path) / WEIGHTS_FILE).read_text(encoding="utf-8"))
        return cls(saved["weights"], saved["bias"], bundle.manifest.thresholds[DEFAULT_THRESHOLD_KEY], bundle.tag)

    def save(self, folder: Path) -> None:
        """Write the weights."""
        (folder / WEIGHTS_FILE).write_text(json.dumps({"weights": self.weights, "bias": self.bias}), encoding="utf-8")

    def score(self, records: Records, explain: Explain = "flagged") -> Scores:
        """Score reviews; the strongest spam word is the reason of flagged ones."""
        texts = as_columns(records, ["text"])["text"]
        cut = explain_cut(explain, self.thresholds)
        scores, reasons = [], []
        for text in texts:
            tokens = words(str(text))
            logit = self.bias + sum(self.weights.get(t, 0.0) for t in tokens)
            score = float(1 / (1 + np.exp(-logit)))
            scores.append(score)
            top = max(tokens, key=lambda t: self.weights.get(t, 0.0), default=None)
            explained = cut is not None and score >= cut and top is not None
            reasons.append([Reason("spam_word", f"the word {top!r}")] if explained else [])
        return Scores(np.array(scores), [decide(s, self.thresholds) for s in scores], reasons)
