"""The configuration of a ``false-marketing`` training run (``FalseMarketingConfig``: its
parameters, unknown keys rejected) and the names a run gives its model, feature set and
the systems it compares."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field

from common.decisions import Thresholds
from kinds import FALSE_MARKETING
from kinds.false_marketing.blend import BlendSpace
from policy.segments import MODEL_ONLY_BLOCK_FLOOR
from training.pipeline import BaseTrainingConfig
from training.thresholds import UNREACHABLE

MODEL_NAME = FALSE_MARKETING.name
FEATURE_SET = "normalized_text_v1"
LEXICON_THRESHOLDS = Thresholds(block=1.0, review=0.5)
NEVER = Thresholds(block=UNREACHABLE, review=UNREACHABLE)
SERVED_SYSTEM = "served: transformer + TF-IDF blend"
TRANSFORMER_SYSTEM = "transformer alone (int8 ONNX)"
TFIDF_SYSTEM = "TF-IDF char 1-3-grams + logistic regression"
LEXICON_SYSTEM = "lexicon rules only"


class FalseMarketingConfig(BaseTrainingConfig):
    """Parameters of a false-marketing training run. Unknown keys are rejected."""

    validation_size: float = Field(0.15, gt=0, lt=0.5)
    bootstrap_samples: int = Field(100, ge=0)
    num_threads: int = Field(1, ge=0, validation_alias=AliasChoices("num_threads", "torch_threads"),
                             description=("PyTorch threads (0: one per core; `torch_threads` is accepted too). "
                                          "One is the default: the small encoder's steps are short, and on a busy "
                                          "2-core machine two threads ran a step 10x slower than one"))
    base_model: str | None = Field(None, description="local checkpoint folder to fine-tune")
    hidden_size: int = Field(128, ge=16)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(256, ge=16)
    dropout: float = Field(0.1, ge=0, lt=1)
    attention_dropout: float = Field(0.0, ge=0, lt=1, description=(
        "dropout of the attention probabilities while the encoder trains; it replaces a shopguard base "
        "checkpoint's own (used in its pretraining), other checkpoints keep theirs. 0 against 0.1 on the demo "
        "data (cross-fitted held-out rooms, two seeds): F1 0.635 / 0.640 and 0.645 / 0.632, ROC-AUC "
        "0.901 / 0.902 and 0.899 / 0.899, and 31 s less for the fold trainings (dropout of the 4 x length x "
        "length attention weights was an eighth of a training's time)"))
    sound_embeddings: bool = Field(True, description=(
        "give each Han character's embedding a part shared by its toneless pinyin syllable while "
        "fine-tuning (training/sound_embeddings.py); merged into the saved weights, so serving is unchanged. "
        "On the demo data, three trainings with it against two without: homophone evasions caught 45.1% and "
        "43.3%, efficacy recall 0.49 and 0.46, held-out F1 0.667 both, inside run-to-run noise"))
    epochs: int = Field(2, ge=1, description=(
        "passes over the training rows. 2 against 3 on the demo data (every decision as served on the "
        "cross-fitted held-out rooms, seeds 0 / 1): F1 0.668 / 0.664 against 0.662 / 0.657, recall 60.0% / "
        "58.8% against 58.3% / 56.7%, clean sentences flagged 3.8% / 3.5% against 3.4% / 3.0%, ROC-AUC "
        "0.904 / 0.900 against 0.901 / 0.899, real ad copy flagged 4.6% / 4.6% against 3.2% / 3.2%, and the "
        "fold trainings of seed 1, run alone, took 2 min 38 s against 3 min 41 s. 3 had scored one room fold as 5 did "
        "(benchmarks/marketing_fold.py) in 60% of the time"))
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    patience: int = Field(2, ge=1)
    max_train_seconds: float | None = Field(None, gt=0)
    tfidf_hash_features: int = Field(2**17, ge=2**10)
    blend_weights: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: [1.0, 0.75, 0.5, 0.25], min_length=1,
        description="transformer weights tried for the served blend with TF-IDF; chosen on held-out real "
                    "rooms when real files are given, else on validation")
    blend_space: BlendSpace = Field("logit", description=(
        "how the two scorers are blended: the weighted mean of their log-odds (logit) or of their "
        "probabilities. On the demo's cross-fitted held-out rooms (same fold scores, decisions replayed as "
        "served) logit at weight 0.25 against probability at 0.25: F1 0.641 / 0.633, ROC-AUC 0.902 / 0.897, "
        "real ad copy of the check part flagged 1.4% / 5.5%, titles 2.5% / 5.5%. A bundle without the key blends "
        "probabilities; shopguard before this key ignores it: upgrade the servers before promoting a logit model"))
    tfidf_regularization_c: float = Field(16.0, gt=0, description="inverse L2 strength of the TF-IDF scorers")
    tfidf_real_weight: float = Field(5.0, gt=0, description=(
        "weight of a real row (--real) against a --data row in the TF-IDF scorers' loss: real speech is what "
        "they must rank. With C 16, binary ROC-AUC of the TF-IDF scorers on held-out real rooms rose from 0.845 "
        "(weight 1, C 4) to 0.871 (benchmarks/marketing_tfidf_weights.py)"))
    review_budget: float = Field(0.05, gt=0, lt=1, description=(
        "largest share of ordinary (clean) traffic the model may send to review: held-out real rows and "
        "each source of clean validation text"))
    novelty_quantile: float = Field(0.99, gt=0, le=1, description=(
        "validation novelty quantile above which model-only evidence cannot block"))
    real_checks: bool = Field(True, description="run the real-world checks on ../shared/data")
    model_only_block_floor: float = Field(MODEL_ONLY_BLOCK_FLOOR, ge=0, le=1, description=(
        "evidence from the model alone never blocks below this score (it goes to review); with real "
        "files, raised where held-out real rooms show model-only blocks below the precision target"))
    real_folds: int = Field(3, ge=2, le=20, description=(
        "grouped folds over the real rows (--real): each fold's groups are held out of one training run. Three "
        "folds and the served encoder are four trainings: two rounds on two cores"))
    parallel_folds: int = Field(0, ge=0, le=32, description=(
        "held-out fold trainings run at once, each in a process of num_threads threads (0: one per core, at "
        "most the folds; 1: one after the other). Each fold is seeded alike either way, so the scores are the "
        "same; on CUDA they run one after the other"))
    real_weight: float = Field(3.0, gt=0, description=(
        "the encoder's loss weight of a real row (--real) against a --data row; 3 against 1 raised held-out "
        "real rooms' binary F1 from 0.630 to 0.647 and ROC-AUC from 0.897 to 0.901 (demo data, 4 room folds); "
        "6 gained little more (F1 0.652) and flagged more real reviews (5.0% against 3.1%) and titles"))
    generated_weight: float = Field(1.0, gt=0, description="loss weight of a --data row")
    off_platform_chat_rows: int = Field(6000, ge=0, description=(
        "real in-game chat rows (the in-game ads train file of ../shared/data, ad spam or not; none the training "
        "file holds) added to the off_platform TF-IDF scorer's rows only, not the encoder's nor the other "
        "categories': the generated file holds 1,200 and more there cost the encoder time and held-out F1 (3,000: "
        "0.624, 35 s). Replayed as served on the demo's fold scores, 6,000 raised the in-game check's ROC-AUC from "
        "0.828 to 0.884 and changed no decision on the held-out rooms nor any other check; 0: none"))
    evasion_copies: int = Field(1, ge=0, le=5, description=(
        "disguised copies (homophone, filler, look-alike, mask or pinyin: training.data.evasions) of each "
        "violating real training row, weighted as real rows; 0: none"))
    review_rule: Literal["shared", "per_category"] = Field("shared", description=(
        "how the review thresholds of the categories with min_real_positives held-out real positives are chosen: "
        "one threshold shared by them at the best F1 of the segment decision (flagged by any category or rule, "
        "against violating in any category), or each at its own best F1. On the demo's held-out rooms (the same "
        "fold scores, every decision replayed as served and cross-fitted) shared against per_category: F1 0.657 / "
        "0.635 (paired difference over resampled rooms +0.022 [0.010, 0.034]), recall 57.9% / 56.5%, "
        "clean sentences flagged 3.5% / 4.1%, efficacy claims flagged (any category) 42.7% / 34.7%, price "
        "claims flagged as price 52% / 61%, "
        "regulator cases caught 97.0% / 92.4%, real ad copy flagged 3.2% / 2.8%. Each category's own best F1 counts a "
        "violating sentence flagged under another category, and one a rule flags, against it; the segment's "
        "decision, which acts and is judged, counts neither"))
    block_confidence_z: float = Field(1.5, ge=0, le=4, description=(
        "held-out block thresholds: the Wilson lower bound of precision at this many standard errors must reach "
        "precision_target (0: the point precision). On the demo's held-out rooms (cross-fitted, every decision as "
        "served) the point precision gave 312 blocks, 91.0% right; 1.0 gave 259, 94.6% right; 1.5 gave 234, "
        "96.2% right; recall and F1 unchanged: the rows no longer blocked go to review"))
    rule_demotion_z: float = Field(2.0, ge=0, le=4, description=(
        "a block rule reviews only, never blocks alone, when the Wilson upper bound at this many standard errors of "
        "the share of its real matches that violate stays below a block rule's prior evidence (0.9). In the demo "
        "data: 治疗/根治 (EFF-001), 0 of 4 real matches violating (预防大于治疗); 1 of 2 (EFF-002) stays a block rule"))
    min_real_positives: int = Field(20, ge=1, description=(
        "a category's thresholds are chosen on held-out real rows when they hold this many of its positives"))
    model_only_block_precision: float = Field(0.9, gt=0, le=1, description=(
        "held-out real precision that model-only blocks must reach (else the floor is raised)"))
