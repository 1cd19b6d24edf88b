"""Sound embeddings for the character encoder: every Han character's input embedding is its
own vector plus one shared by every character of the same toneless pinyin syllable.

Speech recognition writes a word with another character of the same sound, and hosts disguise
a word the same way (降血鸭 for 降血压); a character encoder trained on a few
thousand sentences sees most characters too rarely to learn that 鸭 can stand for 压. The shared
syllable vector is trained by every character of the syllable, so a character the labelled rows
rarely or never hold inherits what its sound learned.

The sound part is a ``torch.nn.utils.parametrize`` parametrization of the word-embedding
matrix while training. Because a character's syllable is a function of its token id, the sum
is merged into a plain embedding matrix before the model is saved (``merge``): the saved
checkpoint, the ONNX graph and the serving code are those of an encoder without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.evasion import is_han

NO_SOUND = 0  # special tokens, Latin letters, digits, punctuation


def syllable_ids(vocab: dict[str, int], size: int) -> np.ndarray:
    """Token id -> syllable id (1..n, sorted by syllable) for the single Han characters of
    ``vocab`` that pypinyin reads (their most common reading, toneless); ``NO_SOUND`` else."""
    from pypinyin import Style, lazy_pinyin

    readings: dict[int, str] = {}
    for token, index in vocab.items():
        if len(token) == 1 and is_han(token):
            reading = lazy_pinyin(token, style=Style.NORMAL, errors="ignore")
            if reading and reading[0].isascii() and reading[0].isalpha():
                readings[index] = reading[0]
    numbers = {syllable: n + 1 for n, syllable in enumerate(sorted(set(readings.values())))}
    out = np.full(size, NO_SOUND, dtype=np.int64)
    for index, syllable in readings.items():
        if index < size:  # a token the embedding matrix has no row for is never embedded
            out[index] = numbers[syllable]
    return out


def _sound_share_class():  # built lazily: torch is a heavy import
    import torch

    class SoundShare(torch.nn.Module):
        """The parametrization: ``weight + syllable_table[syllable_of_token]``. The table starts
        at zero, so attaching it leaves the model's outputs unchanged."""

        def __init__(self, syllables: np.ndarray, hidden_size: int) -> None:
            super().__init__()
            self.register_buffer("syllables", torch.from_numpy(syllables))
            # Zeros drawn from no random generator: attaching leaves the run's dropout draws as they were.
            self.table = torch.nn.Embedding.from_pretrained(
                torch.zeros(int(syllables.max()) + 1, hidden_size), freeze=False, padding_idx=NO_SOUND)

        def forward(self, weight: Any) -> Any:
            return weight + self.table(self.syllables)

    return SoundShare


def _word_embeddings(model: Any) -> Any:
    return model.get_input_embeddings()


def attach(model: Any, tokenizer: Any) -> int:
    """Give ``model``'s character embeddings a shared part per syllable (trained with the
    model); returns the number of syllables. ``merge`` before saving."""
    from torch.nn.utils import parametrize

    embeddings = _word_embeddings(model)
    rows, hidden = embeddings.weight.shape
    syllables = syllable_ids(tokenizer.get_vocab(), rows)
    parametrize.register_parametrization(embeddings, "weight", _sound_share_class()(syllables, hidden))
    return int(syllables.max())


def merge(model: Any) -> None:
    """Fold the syllable part into the plain embedding matrix (a no-op without ``attach``).

    A masked-LM's output layer tied to the embeddings was trained on the characters' own part
    (it stays tied to the parametrization's original weight): it keeps that, untied, so the
    saved model scores as the trained one did."""
    import torch
    from torch.nn.utils import parametrize

    embeddings = _word_embeddings(model)
    if not parametrize.is_parametrized(embeddings, "weight"):
        return
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and output.weight is embeddings.parametrizations.weight.original:
        output.weight = torch.nn.Parameter(output.weight.detach().clone())
        model.config.tie_word_embeddings = False
    parametrize.remove_parametrizations(embeddings, "weight", leave_parametrized=True)
