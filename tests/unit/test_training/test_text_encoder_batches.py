"""The encoder's training batches: token ids encoded once equal the tokenizer's padded batch,
and validation is scored only where something reads it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from training.text_encoder import (
    MAX_TOKENS,
    build_char_tokenizer,
    build_encoder,
    padded,
    token_ids,
    train_encoder,
)

TEXTS = ["全网最低价今天只要九块九", "加我微信私聊", "100%纯天然无副作用", "aabbcc [x] mask", "限时秒杀",
         "降血压 good ok"]
TOKENIZER = build_char_tokenizer(TEXTS * 2)
LONG = "全网最低价加微信" * 40  # past MAX_TOKENS: truncated


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="全网最低价加微信私聊abc x%[]降血压😀", max_size=2 * MAX_TOKENS),
                min_size=1, max_size=12), st.sampled_from(["right", "left"]))
@example([LONG, "", "全"], "right")
@example([LONG, "", "全"], "left")
def test_ids_encoded_once_pad_to_the_tokenizers_own_batch(texts: list[str], side: str) -> None:
    tokenizer = build_char_tokenizer(TEXTS * 2)
    tokenizer.padding_side = side
    ids, mask = padded(token_ids(tokenizer, texts), tokenizer.pad_token_id, side)
    expected = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    assert ids.tolist() == expected["input_ids"].tolist()
    assert mask.tolist() == expected["attention_mask"].tolist()


def test_padding_uses_the_given_pad_id_and_truncation_holds() -> None:
    ids, mask = padded([[5, 6, 7], [8]], pad_id=3)
    assert ids.tolist() == [[5, 6, 7], [8, 3, 3]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert len(token_ids(TOKENIZER, [LONG])[0]) == MAX_TOKENS and token_ids(TOKENIZER, []) == []


def _train(select_best: bool, max_seconds: float | None = None) -> dict:
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], dtype=np.float32)
    model = build_encoder(len(TOKENIZER), 2, 16, 1, 2, 32, 0.1, 0)  # dropout draws torch's random numbers
    return train_encoder(model, TOKENIZER, (TEXTS, labels), (TEXTS, labels), epochs=3, batch_size=2,
                         learning_rate=1e-3, weight_decay=0.0, warmup_ratio=0.1, patience=5, seed=0, device="cpu",
                         max_seconds=max_seconds, progress=lambda _: None, select_best=select_best)


def test_validation_is_scored_only_at_the_kept_epoch_unless_the_best_is_selected() -> None:
    last_only = _train(select_best=False)
    assert [h["validation_mean_pr_auc"] is None for h in last_only["history"]] == [True, True, False]
    assert last_only["best_validation_mean_pr_auc"] == last_only["history"][-1]["validation_mean_pr_auc"]
    assert last_only["kept_epoch"] == 3
    every = _train(select_best=True)
    assert all(isinstance(h["validation_mean_pr_auc"], float) for h in every["history"])
    # Skipping validation changes nothing of the training itself (nor torch's random numbers).
    assert [h["train_loss"] for h in last_only["history"]] == [h["train_loss"] for h in every["history"]]


def test_a_run_out_of_time_still_scores_the_epoch_it_keeps() -> None:
    stopped = _train(select_best=False, max_seconds=1e-9)
    assert len(stopped["history"]) == 1
    assert stopped["history"][0]["validation_mean_pr_auc"] == pytest.approx(stopped["best_validation_mean_pr_auc"])
