"""The NumPy token ids equal the character tokenizer's own padded batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinds.false_marketing.char_ids import CharIds
from kinds.false_marketing.encoder import MAX_TOKENS, load_tokenizer
from training.text_encoder import build_char_tokenizer

TRAINING_TEXTS = ["全网最低价今天只要九块九", "加我微信私聊", "100%纯天然无副作用", "aabbcc [x] mask", "限时秒杀"] * 2


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tokenizer")
    build_char_tokenizer(TRAINING_TEXTS).save_pretrained(str(folder))
    return folder / "tokenizer.json"


def tokenizer_batch(path: Path, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encodings = load_tokenizer(path).encode_batch(texts)
    return (np.array([e.ids for e in encodings], dtype=np.int64),
            np.array([e.attention_mask for e in encodings], dtype=np.int64))


# Known and unknown characters (astral ones too), brackets and spaces.
ORDINARY = st.text(alphabet=st.sampled_from(list("全网最低价今天只要九块微信私聊100%纯无副作用abcx []")
                                            + ["😀", "\U00020000", "é", "ｆ", "\t"]), max_size=150)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(ORDINARY, min_size=1, max_size=8))
def test_fast_ids_equal_the_tokenizer(tokenizer_file: Path, texts: list[str]) -> None:
    fast = CharIds.from_tokenizer_file(tokenizer_file, MAX_TOKENS).encode(texts)
    assert fast is not None
    expected_ids, expected_mask = tokenizer_batch(tokenizer_file, texts)
    np.testing.assert_array_equal(fast[0], expected_ids)
    np.testing.assert_array_equal(fast[1], expected_mask)


@settings(max_examples=50, deadline=None)
@given(texts=st.lists(ORDINARY, min_size=1, max_size=4), special=st.sampled_from(["[MASK]", "[CLS]", "\n", "a\n\nb"]),
       where=st.integers(0, 3))
def test_text_with_tokenizer_meaning_goes_to_the_tokenizer(tokenizer_file: Path, texts: list[str], special: str,
                                                           where: int) -> None:
    texts[where % len(texts)] += special
    assert CharIds.from_tokenizer_file(tokenizer_file, MAX_TOKENS).encode(texts) is None


def test_long_texts_are_truncated_like_the_tokenizer(tokenizer_file: Path) -> None:
    texts = ["全网最低价" * 60, "加我", ""]
    char_ids = CharIds.from_tokenizer_file(tokenizer_file, MAX_TOKENS)
    ids, mask = char_ids.encode(texts)
    assert ids.shape == (3, MAX_TOKENS)
    np.testing.assert_array_equal(ids, tokenizer_batch(tokenizer_file, texts)[0])
    np.testing.assert_array_equal(mask.sum(axis=1), [MAX_TOKENS, 4, 2])


def test_other_tokenizers_get_no_fast_path(tokenizer_file: Path, tmp_path: Path) -> None:
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    spec["pre_tokenizer"] = {"type": "Whitespace"}
    other = tmp_path / "tokenizer.json"
    other.write_text(json.dumps(spec), encoding="utf-8")
    assert CharIds.from_tokenizer_file(other, MAX_TOKENS) is None
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    spec["model"]["vocab"]["##ab"] = len(spec["model"]["vocab"])
    other.write_text(json.dumps(spec), encoding="utf-8")
    assert CharIds.from_tokenizer_file(other, MAX_TOKENS) is None
