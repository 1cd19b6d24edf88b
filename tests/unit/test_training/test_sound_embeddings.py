"""Sound embeddings: characters of one toneless syllable share a trained part, attaching them
leaves the encoder's outputs unchanged, and merging them leaves a plain encoder that scores
exactly as the parametrized one did."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training import sound_embeddings
from training.text_encoder import build_char_tokenizer, build_encoder, predict_torch, train_encoder

TEXTS = ["这个能降血压", "降血鸭的效果好", "今天只要九块九", "加我微信 abc", "连衣裙显瘦"]
LABELS = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0]], dtype=np.float32)


def _model():
    tokenizer = build_char_tokenizer(TEXTS, min_frequency=1)
    return tokenizer, build_encoder(len(tokenizer), 2, 16, 1, 2, 32, 0.0, 0)


def test_characters_of_one_syllable_share_an_id_and_others_have_none() -> None:
    tokenizer = build_char_tokenizer(TEXTS, min_frequency=1, extra_chars=["雅"])
    vocab = tokenizer.get_vocab()
    ids = sound_embeddings.syllable_ids(vocab, len(tokenizer))
    assert ids[vocab["压"]] == ids[vocab["鸭"]] == ids[vocab["雅"]] != sound_embeddings.NO_SOUND  # all "ya"
    assert ids[vocab["降"]] != ids[vocab["压"]]
    assert ids[vocab["a"]] == ids[vocab["[CLS]"]] == ids[vocab[" "]] == sound_embeddings.NO_SOUND
    assert vocab["雅"] == len(vocab) - 1  # extra characters come after the texts' own


def test_attaching_changes_nothing_until_trained_and_merging_keeps_the_scores() -> None:
    tokenizer, model = _model()
    before = predict_torch(model, tokenizer, TEXTS)
    syllables = sound_embeddings.attach(model, tokenizer)
    assert syllables >= 10
    assert np.array_equal(predict_torch(model, tokenizer, TEXTS), before)
    train_encoder(model, tokenizer, (TEXTS, LABELS), (TEXTS, LABELS), epochs=3, batch_size=2, learning_rate=1e-2,
                  weight_decay=0.0, warmup_ratio=0.1, patience=5, seed=0, device="cpu", max_seconds=None,
                  progress=lambda _: None, select_best=False)
    table = model.get_input_embeddings().parametrizations.weight[0].table.weight.detach()
    assert float(table[1:].abs().sum()) > 0 and float(table[0].abs().sum()) == 0  # no-sound row stays zero
    trained = predict_torch(model, tokenizer, TEXTS)
    assert not np.allclose(trained, before)
    sound_embeddings.merge(model)
    assert not torch.nn.utils.parametrize.is_parametrized(model.get_input_embeddings())
    assert set(model.state_dict()) == set(_model()[1].state_dict())  # a plain encoder's weights
    np.testing.assert_allclose(predict_torch(model, tokenizer, TEXTS), trained, atol=1e-6)


def _duck_row_after_training(with_sound: bool) -> tuple[torch.Tensor, torch.Tensor]:
    texts = ["这个能降血压", "今天只要九块九"]
    tokenizer = build_char_tokenizer(texts, min_frequency=1, extra_chars=["鸭"])
    model = build_encoder(len(tokenizer), 2, 16, 1, 2, 32, 0.0, 0)
    duck = tokenizer.get_vocab()["鸭"]
    start = model.get_input_embeddings().weight[duck].detach().clone()
    if with_sound:
        sound_embeddings.attach(model, tokenizer)
    train_encoder(model, tokenizer, (texts, LABELS[[0, 2]]), (texts, LABELS[[0, 2]]), epochs=2, batch_size=2,
                  learning_rate=1e-2, weight_decay=0.0, warmup_ratio=0.1, patience=5, seed=0, device="cpu",
                  max_seconds=None, progress=lambda _: None, select_best=False)
    sound_embeddings.merge(model)
    return start, model.get_input_embeddings().weight[duck].detach()


def test_a_syllable_learned_from_one_character_moves_its_homophone() -> None:
    """鸭 never occurs in training: without sound embeddings its vector stays where it started;
    with them it moves with what 压's syllable learned."""
    start, plain = _duck_row_after_training(with_sound=False)
    assert torch.equal(plain, start)
    start, shared = _duck_row_after_training(with_sound=True)
    assert not torch.allclose(shared, start)


def test_a_masked_lm_saved_after_merging_scores_as_it_was_trained(tmp_path) -> None:
    """The masked-LM's output layer, tied to the embeddings, was trained on the characters' own
    part: merging unties it and keeps that, so the saved base scores as measured in training."""
    from transformers import BertConfig, BertForMaskedLM

    from training.pretrain import masked_lm_loss

    tokenizer = build_char_tokenizer(TEXTS, min_frequency=1, extra_chars=["雅"])
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32, max_position_embeddings=128))
    model.eval()
    sound_embeddings.attach(model, tokenizer)
    with torch.no_grad():
        model.get_input_embeddings().parametrizations.weight[0].table.weight[1:] += 0.3  # as if trained
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
    with torch.no_grad():
        trained, _ = masked_lm_loss(model, encoded["input_ids"], encoded["attention_mask"], labels)
        sound_embeddings.merge(model)
        model.save_pretrained(tmp_path)
        loaded = BertForMaskedLM.from_pretrained(tmp_path).eval()
        saved, _ = masked_lm_loss(loaded, encoded["input_ids"], encoded["attention_mask"], labels)
    assert float(saved) == pytest.approx(float(trained), abs=1e-6)
    assert loaded.cls.predictions.decoder.weight is not loaded.get_input_embeddings().weight


def test_token_ids_past_the_embedding_rows_get_no_sound() -> None:
    ids = sound_embeddings.syllable_ids({"压": 1, "鸭": 5}, 4)  # a checkpoint whose vocabulary outgrew its rows
    assert ids.shape == (4,) and ids[1] != sound_embeddings.NO_SOUND


def test_attaching_draws_no_random_numbers() -> None:
    tokenizer, model = _model()
    torch.manual_seed(3)
    sound_embeddings.attach(model, tokenizer)
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(torch.rand(1), after)  # dropout masks after attaching are the run's own
