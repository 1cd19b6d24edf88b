"""The review-spam training half: a generator, a trainer (word weights, card, registration),
the file scorer for ``models compare`` and the checks for ``evaluate``."""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from common.decisions import DEFAULT_THRESHOLD_KEY, Thresholds
from registry.bundle import FeatureSetRef, Lineage, Manifest
from registry.cards import CardSection, CardTable, ModelCard, write_card
from registry.metrics import ModelMetrics
from registry.store import LoadedBundle, ModelRegistry, new_version
from tests.fourth_kind.runtime import ReviewSpamModel, words
from training.classification_metrics import binary_metrics
from training.compare import ScoredFile
from training.kind_training import KindTraining
from training.lineage import training_file
from training.real_checks import file_checks
from training.report_tables import announce_candidate, console

THRESHOLDS = Thresholds(block=0.9, review=0.5)
SPAM = ["cheap", "followers", "click", "free", "promo", "winner", "discount", "link"]
PLAIN = ["fits", "well", "colour", "arrived", "quickly", "soft", "sturdy", "small", "the", "was"]


def generate_reviews(n: int, seed: int) -> pd.DataFrame:
    """``n`` reviews, a third spam: spam words mixed with plain ones."""
    rng = np.random.default_rng(seed)
    spam = rng.random(n) < 1 / 3
    texts = [" ".join(rng.choice(PLAIN, 5).tolist() + (rng.choice(SPAM, 2).tolist() if s else []))
             for s in spam]
    return pd.DataFrame({"review_id": [f"r{i}" for i in range(n)], "text": texts, "is_spam": spam.astype(int)})


def fit_weights(texts: list[str], labels: np.ndarray) -> tuple[dict[str, float], float]:
    """Naive-Bayes log-odds per word, and the prior's."""
    spam, ham = Counter(), Counter()
    for text, label in zip(texts, labels, strict=True):
        (spam if label else ham).update(set(words(text)))
    vocabulary = set(spam) | set(ham)
    n_spam, n_ham = int(labels.sum()), int(len(labels) - labels.sum())
    weights = {w: math.log((spam[w] + 1) / (n_spam + 2)) - math.log((ham[w] + 1) / (n_ham + 2)) for w in vocabulary}
    return weights, math.log((n_spam + 1) / (n_ham + 1))


def train(data: Path = typer.Option(..., "--data", help="reviews: .csv with review_id, text, is_spam")) -> None:
    """Train review-spam and register it as candidate."""
    frame = pd.read_csv(data)
    cut = int(len(frame) * 0.8)
    weights, bias = fit_weights(frame["text"][:cut].tolist(), frame["is_spam"][:cut].to_numpy())
    version = new_version()
    model = ReviewSpamModel(weights, bias, THRESHOLDS, f"review-spam:{version}")
    test = frame[cut:]
    metrics = binary_metrics(test["is_spam"].to_numpy(), model.score(test).scores, THRESHOLDS)
    manifest = Manifest(
        model_name="review-spam", version=version, task="binary-classification",
        feature_set=FeatureSetRef(name="review-words", version=1, features=["text"]),
        label_map={"spam": 1, "ok": 0}, thresholds={DEFAULT_THRESHOLD_KEY: THRESHOLDS},
        metrics=ModelMetrics(test=metrics),
        lineage=Lineage(training_files=[training_file(data, len(frame))], git_commit=None, parameters={},
                        library_versions={}, seed=0))
    card = ModelCard(model_name="review-spam", version=version, sections=[
        CardSection(key="model_details", title="Model details",
                    paragraphs=["Review spam: word weights (naive Bayes log-odds), a test-tree kind."]),
        CardSection(key="evaluation", title="Evaluation", tables=[CardTable(
            columns=["rows", "PR-AUC"], rows=[[metrics.rows, metrics.pr_auc]])]),
    ])
    with tempfile.TemporaryDirectory() as staging:
        model.save(Path(staging))
        write_card(card, Path(staging))
        registered = ModelRegistry().register(Path(staging), manifest)
    console.print(f"test PR-AUC {metrics.pr_auc:.3f}")
    announce_candidate(registered.tag)


def score_file(bundle: LoadedBundle, data: Path, explain: bool = False, **_: Any) -> ScoredFile:
    """A labelled review file scored by one version."""
    frame = pd.read_csv(data)
    scored = ReviewSpamModel.from_bundle(bundle).score(frame)
    return ScoredFile(frame["is_spam"].to_numpy(int).reshape(-1, 1), scored.scores.reshape(-1, 1),
                      scored.decisions, ["is_spam"], {"is_spam": THRESHOLDS}, None)


def evaluate_file(bundle: LoadedBundle, path: Path, binary_category: str | None, group_column: str | None = None
                  ) -> tuple[Any, dict]:
    """Flag rates and recall on a review file."""
    frame = pd.read_csv(path)
    flags = np.array([d != "allow" for d in ReviewSpamModel.from_bundle(bundle).score(frame).decisions])
    positive = frame["is_spam"].astype(bool).to_numpy() if "is_spam" in frame.columns else None
    return file_checks(flags, positive, path.name), {}


TRAINING = KindTraining(train=train, score_file=score_file, evaluate_file=evaluate_file)
