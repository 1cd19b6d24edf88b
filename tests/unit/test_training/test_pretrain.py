import json
from pathlib import Path

import numpy as np
import pytest

from common.errors import ShopGuardError
from features.marketing import MARKETING_CATEGORIES
from tests.conftest import SHARED_DATA
from training.pretrain import (
    BASE_MANIFEST,
    BaseEncoderTrainer,
    Corpus,
    PretrainConfig,
    build_corpus,
    mask_tokens,
    verify_base_model,
    write_base_manifest,
)
from training.text_encoder import load_base_model, predict_torch

# Sound embeddings off here: their 3,755 common characters would outnumber the made-up corpus's 29
# a hundred to one in the masked-LM's output (test_sound_embeddings_reach_characters_the_corpus_lacks).
TINY = PretrainConfig(hidden_size=32, layers=1, heads=2, intermediate_size=64, epochs=8, batch_size=32,
                      learning_rate=3e-3, sound_embeddings=False)
WORDS = ["家人们", "这个", "面霜", "一天两粒", "饭后吃", "今天", "到手价", "点关注", "下播了", "名额有限"]


def _pretrained(folder: Path, config: PretrainConfig) -> Path:
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(WORDS, 4)) for _ in range(600)]
    training = BaseEncoderTrainer(config).fit(Corpus(texts, {"made up": len(texts)}), folder)
    write_base_manifest(folder, config, Corpus(texts, {"made up": len(texts)}), training)
    return folder


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return _pretrained(tmp_path_factory.mktemp("base"), TINY)


def test_masking_targets_only_plain_tokens_at_the_rate_asked() -> None:
    import torch

    ids = torch.randint(5, 100, (200, 50))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = mask_tokens(ids, special, 4, 100, 0.15, torch.Generator().manual_seed(0))
    target = labels != -100
    assert not target[special].any()
    assert 0.13 < target.float().mean() / (~special).float().mean() < 0.17
    assert (labels[target] == ids[target]).all()
    assert 0.75 < (inputs[target] == 4).float().mean() < 0.85  # 80% become [MASK]
    assert (inputs[~target] == ids[~target]).all()


def test_pretraining_learns_and_writes_a_verified_base(base: Path) -> None:
    manifest = json.loads((base / BASE_MANIFEST).read_text(encoding="utf-8"))
    history = manifest["training"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # ten made-up words: context predicts a masked character far better than always guessing the
    # most frequent one
    words = "家人们这个面霜一天两粒饭后吃今天到手价点关注下播了名额有限"
    majority = max(words.count(c) for c in set(words)) / len(words)
    assert history[-1]["masked_accuracy"] > 2 * majority
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(manifest["files"])
    assert verify_base_model(base)["parameters"]["hidden_size"] == 32


def test_sound_embeddings_reach_characters_the_corpus_lacks(tmp_path: Path) -> None:
    """With sound embeddings the vocabulary holds every common character, and the characters the
    corpus never holds are read by their syllable: two unseen characters of one syllable the corpus
    has (双 and 爽, as 霜) sit closer together than two unseen ones of different such syllables."""
    import torch

    from training.sound_embeddings import syllable_ids

    folder = _pretrained(tmp_path / "sound", TINY.model_copy(update={"sound_embeddings": True}))
    tokenizer, model = load_base_model(folder, len(MARKETING_CATEGORIES))
    vocab = tokenizer.get_vocab()
    assert {"双", "爽", "鸭", "雪"} <= set(vocab) and len(vocab) > 3_700
    assert not any("parametrizations" in key for key in model.state_dict())  # merged: a plain checkpoint
    embeddings = model.get_input_embeddings().weight.detach()
    syllables = syllable_ids(vocab, len(vocab))
    seen = set("".join(WORDS))
    heard = {int(syllables[vocab[c]]) for c in seen}
    unseen: dict[int, list[int]] = {}
    for char, index in sorted(vocab.items()):
        if char not in seen and int(syllables[index]) in heard:
            unseen.setdefault(int(syllables[index]), []).append(index)
    groups = [members for members in unseen.values() if len(members) >= 2]
    assert len(groups) >= 15
    same = [float((embeddings[g[0]] - embeddings[g[1]]).norm()) for g in groups]
    other = [float((embeddings[a[0]] - embeddings[b[1]]).norm()) for a, b in zip(groups, groups[1:], strict=False)]
    assert np.mean(same) < 0.8 * np.mean(other), (np.mean(same), np.mean(other))
    assert torch.isfinite(embeddings).all()


def test_a_changed_base_file_is_refused_naming_it(base: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ", encoding="utf-8")
    with pytest.raises(ShopGuardError, match="config.json does not match"):
        verify_base_model(copy)


def test_the_classifier_starts_from_the_base_encoder_weights(base: Path) -> None:
    import torch
    from safetensors.torch import load_file

    tokenizer, model = load_base_model(base, len(MARKETING_CATEGORIES))
    saved = load_file(str(base / "model.safetensors"))
    key = next(k for k in saved if k.endswith("encoder.layer.0.attention.self.query.weight"))
    assert torch.equal(model.state_dict()[key], saved[key])  # the encoder is the pretrained one
    assert predict_torch(model, tokenizer, ["家人们这个面霜"]).shape == (1, len(MARKETING_CATEGORIES))
    # Fine-tuning may drop the base's attention dropout; the base keeps its own otherwise.
    attention = [m for name, m in model.named_modules() if name.endswith("attention.self")]
    assert attention and all(m.dropout.p == TINY.dropout > 0 for m in attention)
    _, tuned = load_base_model(base, len(MARKETING_CATEGORIES), attention_dropout=0.0)
    assert all(m.dropout.p == 0.0 for name, m in tuned.named_modules() if name.endswith("attention.self"))
    assert all(m.p == TINY.dropout for name, m in tuned.named_modules() if name.endswith("output.dropout"))


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")
def test_corpus_keeps_real_checks_and_labelled_sentences_out() -> None:
    from training.data import live_asr, real_text

    config = PretrainConfig(sources=["live_asr", "titles"])
    corpus = build_corpus(SHARED_DATA, config)
    texts = set(corpus.texts)
    labelled = live_asr.labelled_sentences(SHARED_DATA)["text"].tolist()
    from features.text import normalize_many

    assert not texts & set(normalize_many(labelled))
    checks = [t for t in real_text.product_titles(SHARED_DATA) if real_text.is_check_text(t)]
    assert not texts & set(normalize_many(checks))
    assert corpus.rows_per_source["live_asr"] > 0 and corpus.rows_per_source["titles"] > 1000


def test_loading_the_base_logs_one_line_instead_of_the_transformers_report(base: Path, caplog) -> None:
    import logging

    reported: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = reported.append
    logging.getLogger("transformers").addHandler(listener)
    try:
        with caplog.at_level(logging.INFO, logger="shopguard.training"):
            load_base_model(base, len(MARKETING_CATEGORIES))
    finally:
        logging.getLogger("transformers").removeHandler(listener)
    assert reported == []  # no load report (raw ANSI codes, once per fold) from transformers
    ours = [r for r in caplog.records if r.name == "shopguard.training"]
    assert [r.levelno for r in ours] == [logging.INFO] and "a new classification head" in ours[0].getMessage()


def test_weights_left_at_random_beyond_the_new_head_are_a_warning(caplog) -> None:
    import logging

    from training.text_encoder import log_loading

    with caplog.at_level(logging.INFO, logger="shopguard.training"):
        log_loading(Path("ckpt"), {"missing_keys": ["classifier.weight", "bert.encoder.layer.0.output.dense.bias"],
                                   "unexpected_keys": ["cls.predictions.bias"], "mismatched_keys": []})
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "ckpt: 1 weight(s) not in the checkpoint start at random "
                          "(bert.encoder.layer.0.output.dense.bias)")]
