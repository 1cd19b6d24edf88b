"""The encoder's training batches: token ids encoded once equal the tokenizer's padded batch,
and validation is scored only where something reads it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="全网最低价加微信私聊abc x%[]降血压😀", max_size=2 * MAX_TOKENS),
                min_size=1, max_size=12))
def test_ids_encoded_once_pad_to_the_tokenizers_own_batch(texts: list[str]) -> None:
    ids, mask = padded(token_ids(TOKENIZER, texts), TOKENIZER.pad_token_id)
    expected = TOKENIZER(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    assert ids.tolist() == expected["input_ids"].tolist()
    assert mask.tolist() == expected["attention_mask"].tolist()


def _train(select_best: bool) -> list[dict]:
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], dtype=np.float32)
    model = build_encoder(len(TOKENIZER), 2, 16, 1, 2, 32, 0.0, 0)
    result = train_encoder(model, TOKENIZER, (TEXTS, labels), (TEXTS, labels), epochs=3, batch_size=2,
                           learning_rate=1e-3, weight_decay=0.0, warmup_ratio=0.1, patience=5, seed=0, device="cpu",
                           max_seconds=None, progress=lambda _: None, select_best=select_best)
    return result["history"]


def test_validation_is_scored_only_at_the_kept_epoch_unless_the_best_is_selected() -> None:
    last_only = _train(select_best=False)
    assert [h["validation_mean_pr_auc"] is None for h in last_only] == [True, True, False]
    every = _train(select_best=True)
    assert all(isinstance(h["validation_mean_pr_auc"], float) for h in every)
    # Skipping validation changes nothing of the training itself.
    assert [h["train_loss"] for h in last_only] == [h["train_loss"] for h in every]
