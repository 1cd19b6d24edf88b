"""Token ids of the character tokenizer computed with NumPy.

The trainer's tokenizer (``training/text_encoder.py``) maps every character to its own id
(WordLevel over a ``Split(".")`` pre-tokenizer, ``[CLS] text [SEP]``, right padding with id 0).
For such a tokenizer the ids of a whole batch are one table lookup over the batch's code
points: about 20x faster than ``tokenizers``' ``encode_batch``, which cost a tenth of a stream
call. A tokenizer.json of any other shape (a fine-tuned checkpoint's WordPiece, say) gets no
``CharIds`` and is run by ``tokenizers`` itself; so does any batch holding text the fast path
does not reproduce (a newline, which ``.`` does not match, or a special token such as
``[MASK]`` written out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


class CharIds:
    """``ids, attention_mask`` for a batch, equal to the character tokenizer's padded batch."""

    def __init__(self, vocab: dict[str, int], max_tokens: int, added_tokens: Sequence[str] = ()) -> None:
        self.pad, self.unk, self.cls, self.sep = (vocab[token] for token in SPECIALS)
        singles = {ord(token): index for token, index in vocab.items() if len(token) == 1}
        self.table = np.full(max(singles, default=0) + 1, self.unk, dtype=np.int64)
        self.table[list(singles)] = list(singles.values())
        self.max_chars = max_tokens - 2
        self.tokens_with_meaning = sorted({token for token in vocab if len(token) > 1} | set(added_tokens) | {"\n"})

    @classmethod
    def from_tokenizer_file(cls, path: Path, max_tokens: int) -> CharIds | None:
        """The fast path for a character tokenizer.json; None for any other tokenizer."""
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
        model, pre, post = spec.get("model") or {}, spec.get("pre_tokenizer") or {}, spec.get("post_processor") or {}
        single = [next(iter(part.values())).get("id") for part in post.get("single", [])]
        vocab = model.get("vocab") or {}
        if (model.get("type") != "WordLevel" or model.get("unk_token") != "[UNK]"
                or spec.get("normalizer") is not None
                or pre != {"type": "Split", "pattern": {"Regex": "."}, "behavior": "Isolated", "invert": False}
                or post.get("type") != "TemplateProcessing" or single != ["[CLS]", "A", "[SEP]"]
                or any(token not in vocab for token in SPECIALS) or vocab["[PAD]"] != 0
                or any(len(token) > 1 and not token.startswith("[") for token in vocab)):
            return None
        return cls(vocab, max_tokens, [token["content"] for token in spec.get("added_tokens") or []])

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """Padded ids and attention mask (texts truncated to ``max_tokens``); None when the
        batch holds text only the tokenizer itself reproduces."""
        joined = "".join(texts)
        if any(token in joined for token in self.tokens_with_meaning):
            return None
        try:
            codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        except UnicodeEncodeError:  # a lone surrogate
            return None
        known = codes < len(self.table)
        flat = np.where(known, self.table[np.where(known, codes, 0)], self.unk)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        starts = np.cumsum(lengths) - lengths
        kept = np.minimum(lengths, self.max_chars)
        rows = np.repeat(np.arange(len(texts)), kept)
        within = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
        ids = np.full((len(texts), int(kept.max(initial=0)) + 2), self.pad, dtype=np.int64)
        ids[:, 0] = self.cls
        ids[rows, within + 1] = flat[np.repeat(starts, kept) + within]
        ids[np.arange(len(texts)), kept + 1] = self.sep
        mask = (np.arange(ids.shape[1])[None, :] < (kept + 2)[:, None]).astype(np.int64)
        return ids, mask
