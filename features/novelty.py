"""Novelty of a text against the texts a model was trained on (an out-of-distribution signal).

The signal is the share of a normalized text's character bigrams that never occurred in the
training texts, looked up in a hashed bit set (2**20 bits, 128 KiB, saved as safetensors).
Sales talk in the trained verticals scores near 0; another language, another domain or
garbage scores high. The serving policy uses it so that evidence from the model alone never
blocks text unlike anything the model was trained on (``policy/calls.py``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np

NOVELTY_BITS = 2**20


def _bigram_hashes(text: str, mask: int) -> list[int]:
    return [zlib.crc32(text[i:i + 2].encode("utf-8")) & mask for i in range(len(text) - 1)]


class BigramNovelty:
    """Share of unseen character bigrams, against a hashed set fitted on training texts."""

    def __init__(self, bits: np.ndarray) -> None:
        self.bits = np.asarray(bits, dtype=np.uint8)
        self.size = self.bits.size * 8
        self._mask = self.size - 1
        self._seen = np.unpackbits(self.bits).astype(bool)

    @classmethod
    def fit(cls, texts: Iterable[str], size: int = NOVELTY_BITS) -> BigramNovelty:
        """The bit set of every bigram in ``texts`` (normalized texts)."""
        seen = np.zeros(size, dtype=bool)
        for text in texts:
            seen[_bigram_hashes(text, size - 1)] = True
        return cls(np.packbits(seen))

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Novelty in [0, 1] per normalized text: the share of its bigrams never seen in
        training (0 for texts shorter than two characters)."""
        out = np.zeros(len(texts))
        for i, text in enumerate(texts):
            hashes = _bigram_hashes(text, self._mask)
            if hashes:
                out[i] = 1.0 - float(self._seen[hashes].mean())
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for safetensors."""
        return {"bits": self.bits}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BigramNovelty:
        """Inverse of ``to_arrays``."""
        return cls(arrays["bits"])
