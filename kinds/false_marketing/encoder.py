"""The false-marketing encoder at serving time: the character tokenizer and the int8 ONNX
encoder run by ONNX Runtime, in batches of similar lengths, long texts in windows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from common.settings import Device, onnx_providers
from kinds.false_marketing.char_ids import CharIds
from kinds.runtime import check_cancelled

MAX_TOKENS = 128  # [CLS] + 126 characters + [SEP]; longer texts are scored in windows
WINDOW_STRIDE = 96
# A text longer than one window is also read in windows of about a clause: the model learned
# sentences, and a claim said without a sentence end in a long text is diluted in a 126-character
# window. On one unseen room fold (benchmarks/marketing_sentences.py, runs of 5 sentences of a
# clip with their sentence ends removed, 144 characters on average) ROC-AUC 0.807 -> 0.836; a
# sentence that fits one window is read as before.
CLAUSE_WINDOW, CLAUSE_STRIDE = 32, 16
INFERENCE_BATCH = 64


def load_tokenizer(path: Path):  # -> tokenizers.Tokenizer, imported here only
    """The character tokenizer with truncation and padding set for inference."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def windows(text: str, size: int = MAX_TOKENS - 2, stride: int = WINDOW_STRIDE) -> list[tuple[int, str]]:
    """Overlapping windows of a long text (start offset, piece); one window if it fits."""
    if len(text) <= size:
        return [(0, text)]
    starts = list(range(0, len(text) - size, stride)) + [len(text) - size]
    return [(s, text[s:s + size]) for s in starts]


class OnnxEncoder:
    """Batched multi-label inference with an ONNX encoder (probabilities per category)."""

    def __init__(self, model_path: Path, tokenizer_path: Path, device: Device = "cpu",
                 threads: int = 0) -> None:
        import onnxruntime as ort

        self.model_path, self.tokenizer_path = model_path, tokenizer_path
        options = ort.SessionOptions()
        # ONNX Runtime's threads spin after each run by default, taking the cores the Python
        # side of scoring needs: without spinning one process scores 1,200 segments/s at 1.3 ms
        # of CPU each (890/s at 2.2 ms with it).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), options, providers=onnx_providers(device))
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.char_ids = CharIds.from_tokenizer_file(tokenizer_path, MAX_TOKENS)

    def token_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded token ids and attention mask (the NumPy path for a character tokenizer)."""
        fast = self.char_ids.encode(texts) if self.char_ids is not None else None
        if fast is not None:
            return fast
        encodings = self.tokenizer.encode_batch(texts)
        return (np.array([e.ids for e in encodings], dtype=np.int64),
                np.array([e.attention_mask for e in encodings], dtype=np.int64))

    def _run(self, texts: list[str]) -> np.ndarray:
        check_cancelled()  # a cancelled caller's work stops between batches (serving/admission.py)
        ids, mask = self.token_ids(texts)
        logits = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

    def predict(self, texts: Sequence[str], batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Probabilities (n, categories) for normalized texts; a long text takes the max over
        its windows."""
        owners, pieces = split_windows(texts)
        return max_by_owner(self.predict_pieces(pieces, batch_size), owners, len(texts))

    def predict_pieces(self, pieces: Sequence[str], batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Probabilities for texts that fit one window (longer ones are truncated). Batches
        are formed from texts of similar length."""
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        out = np.zeros((len(pieces), 0))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            probabilities = self._run([pieces[i] for i in chunk])
            if out.shape[1] == 0:
                out = np.zeros((len(pieces), probabilities.shape[1]))
            out[chunk] = probabilities
        return out


def text_windows(text: str) -> list[tuple[int, str]]:
    """What a text is read as: itself when it fits one window; else its windows of
    ``MAX_TOKENS - 2`` characters and its clause windows (``CLAUSE_WINDOW``)."""
    found = windows(text)
    if len(found) == 1:
        return found
    return found + windows(text, CLAUSE_WINDOW, CLAUSE_STRIDE)


def pieces_by_owner(texts: Sequence[str], cut: Callable[[str], list[tuple[int, str]]]
                    ) -> tuple[np.ndarray, list[str]]:
    """Every text's pieces (``cut``: a text's (offset, piece) list), and the index of the text
    each came from."""
    owners, pieces = [], []
    for index, text in enumerate(texts):
        for _, piece in cut(text):
            owners.append(index)
            pieces.append(piece)
    return np.array(owners, dtype=np.int64), pieces


def split_windows(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Every text's windows (``text_windows``), and the index of the text each came from."""
    return pieces_by_owner(texts, text_windows)


def max_by_owner(values: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """Per-text maximum over its windows' rows."""
    if len(values) == len(owners) == n:  # every text fits one window
        return values
    out = np.full((n, values.shape[1]), -np.inf)
    np.maximum.at(out, owners, values)
    return out
