"""The ``false-marketing`` runtime: a character tokenizer and the int8 ONNX encoder served
by ONNX Runtime, the lexicon rules, per-category thresholds and evidence spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features.decision import Decision, Thresholds, decide, stricter
from features.marketing import MARKETING_CATEGORIES, LexiconMatch, match_lexicon
from features.text import NormalizedText, normalize_text
from features.text_scorer import CharNgramScorer
from model_registry.registry import LoadedBundle
from model_registry.settings import Device, load_settings, onnx_providers

TOKENIZER_FILE = "tokenizer.json"
ONNX_INT8_FILE = "encoder.int8.onnx"
ONNX_FP32_FILE = "encoder.fp32.onnx"
TFIDF_FILE_PATTERN = "tfidf_{}.safetensors"
MAX_TOKENS = 128  # [CLS] + 126 characters + [SEP]; longer texts are scored in windows
WINDOW_STRIDE = 96
INFERENCE_BATCH = 64


@dataclass
class Span:
    """Evidence in the original text."""

    start: int
    end: int
    text: str
    category: str
    source: str
    rule_id: str | None = None


@dataclass
class SegmentAnalysis:
    """Everything decided about one segment."""

    scores: dict[str, float]
    labels: list[str]
    spans: list[Span]
    decision: Decision
    score: float
    lexicon: list[LexiconMatch] = field(default_factory=list)


def load_tokenizer(path: Path):  # noqa: ANN201 - tokenizers.Tokenizer
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

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), options, providers=onnx_providers(device))
        self.tokenizer = load_tokenizer(tokenizer_path)

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        logits = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

    def predict(self, texts: Sequence[str], batch_size: int = INFERENCE_BATCH) -> np.ndarray:
        """Probabilities (n, categories) for normalized texts; a long text takes the max over
        its windows. Batches are formed from texts of similar length."""
        pieces: list[tuple[int, str]] = []
        for index, text in enumerate(texts):
            pieces += [(index, piece) for _, piece in windows(text)]
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i][1]))
        out = np.zeros((len(texts), 0))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            probabilities = self._run([pieces[i][1] for i in chunk])
            if out.shape[1] == 0:
                out = np.zeros((len(texts), probabilities.shape[1]))
            for row, piece_index in zip(probabilities, chunk, strict=True):
                owner = pieces[piece_index][0]
                out[owner] = np.maximum(out[owner], row)
        return out


def blend(transformer: np.ndarray, tfidf: np.ndarray | None, transformer_weight: float) -> np.ndarray:
    """Per-category weighted mean of the two scorers (the transformer alone where the TF-IDF
    scorer has no column)."""
    if tfidf is None or transformer_weight >= 1.0:
        return transformer
    mixed = transformer_weight * transformer + (1 - transformer_weight) * tfidf
    return np.where(np.isnan(tfidf), transformer, mixed)


OCCLUSION_WINDOW = 4


OCCLUSION_STRIDE = 3  # windows of 4 overlap by 1: no character is missed, a third fewer variants than stride 2


def occlusion_variants(text: str, window: int = OCCLUSION_WINDOW,
                       stride: int = OCCLUSION_STRIDE) -> tuple[list[int], list[str]]:
    """Window starts and the text with each window removed."""
    starts = list(range(0, max(1, len(text) - window + 1), stride))
    if starts[-1] < len(text) - window:  # cover the last characters too
        starts.append(len(text) - window)
    return starts, [text[:s] + text[s + window:] for s in starts]


class FalseMarketingModel:
    """Scores transcript segments per category and explains them with spans."""

    def __init__(self, encoder: OnnxEncoder, thresholds: dict[str, Thresholds],
                 categories: Sequence[str] = MARKETING_CATEGORIES, tag: str = "false-marketing:unsaved",
                 tfidf: dict[str, CharNgramScorer] | None = None, transformer_weight: float = 1.0) -> None:
        self.encoder = encoder
        self.thresholds = thresholds
        self.categories = tuple(categories)
        self.tag = tag
        self.tfidf = tfidf or {}
        self.transformer_weight = transformer_weight

    @classmethod
    def from_bundle(cls, bundle: LoadedBundle, device: Device | None = None,
                    onnx_file: str = ONNX_INT8_FILE) -> FalseMarketingModel:
        """Load the served encoder (int8 ONNX by default) from a verified bundle."""
        from safetensors.numpy import load_file

        device = device or load_settings().device
        encoder = OnnxEncoder(bundle.path / onnx_file, bundle.path / TOKENIZER_FILE, device)
        tfidf = {}
        for category in MARKETING_CATEGORIES:
            path = bundle.path / TFIDF_FILE_PATTERN.format(category)
            if path.exists():
                tfidf[category] = CharNgramScorer.from_arrays(load_file(str(path)))
        thresholds = {c: t for c, t in bundle.manifest.thresholds.items() if c in MARKETING_CATEGORIES}
        weight = float(bundle.manifest.serving_params.get("transformer_weight", 1.0))
        return cls(encoder, thresholds, MARKETING_CATEGORIES, bundle.tag, tfidf, weight)

    def predict_normalized(self, texts: Sequence[str]) -> np.ndarray:
        """Served scores (n, 8) for normalized texts: the encoder's probabilities, blended
        per category with the TF-IDF scorer by the weight chosen on validation."""
        return blend(self.encoder.predict(texts), self.tfidf_matrix(texts), self.transformer_weight)

    def tfidf_matrix(self, texts: Sequence[str]) -> np.ndarray | None:
        """TF-IDF scores (n, 8); NaN for categories without a scorer; None without any."""
        if not self.tfidf:
            return None
        counts = {h: h.counts(texts) for h in {s.hashing for s in self.tfidf.values()}}
        return np.column_stack([self.tfidf[c].score_counts(counts[self.tfidf[c].hashing]) if c in self.tfidf
                                else np.full(len(texts), np.nan) for c in self.categories])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Served scores (n, 8) for raw texts (normalized here)."""
        return self.predict_normalized([normalize_text(t).text for t in texts])

    def analyze(self, texts: Sequence[str], spans_from_model: bool = True) -> list[SegmentAnalysis]:
        """Scores, labels, merged lexicon + model spans and a decision for each segment.

        Segment decision: the model's decision per category from that category's thresholds
        (the strictest wins), raised by lexicon rules: a ``block`` rule raises to block, a
        ``review`` rule to at least review."""
        normalized = [normalize_text(t) for t in texts]
        probabilities = self.predict_normalized([n.text for n in normalized])
        results = []
        for norm, row in zip(normalized, probabilities, strict=True):
            scores = {c: round(float(p), 6) for c, p in zip(self.categories, row, strict=True)}
            decision: Decision = "allow"
            labels = []
            for category in self.categories:
                category_decision = decide(scores[category], self.thresholds[category])
                if category_decision != "allow":
                    labels.append(category)
                decision = stricter(decision, category_decision)
            matches = match_lexicon(norm)
            spans = [Span(m.start, m.end, m.text, m.category, "lexicon", m.rule_id) for m in matches]
            for match in matches:
                decision = stricter(decision, "block" if match.severity == "block" else "review")
                if match.category not in labels:
                    labels.append(match.category)
            results.append(SegmentAnalysis(scores, labels, spans, decision, max(scores.values()), matches))
        if spans_from_model:
            self._add_model_spans(normalized, results)
        for result in results:
            result.labels = [c for c in self.categories if c in result.labels]
            result.spans.sort(key=lambda s: s.start)
        return results

    def _add_model_spans(self, normalized: list[NormalizedText], results: list[SegmentAnalysis]) -> None:
        """Occlusion spans for labels no lexicon rule explains: the window whose removal
        lowers the category's score most. A segment's variants are scored once for all its
        categories, and all segments' variants in one batched call."""
        jobs = []
        for norm, result in zip(normalized, results, strict=True):
            covered = {m.category for m in result.lexicon}
            categories = [c for c in result.labels if c not in covered
                          and result.scores[c] >= self.thresholds[c].review]
            if categories and len(norm.text) >= 2:
                starts, variants = occlusion_variants(norm.text)
                jobs.append((norm, result, categories, starts, variants))
        if not jobs:
            return
        scores = self.predict_normalized([v for *_, variants in jobs for v in variants])
        offset = 0
        for norm, result, categories, starts, variants in jobs:
            block = scores[offset:offset + len(variants)]
            offset += len(variants)
            for category in categories:
                drops = result.scores[category] - block[:, self.categories.index(category)]
                best = int(np.argmax(drops))
                if drops[best] < 0.2 * result.scores[category]:
                    continue
                start, end = norm.original_span(starts[best], min(len(norm.text), starts[best] + OCCLUSION_WINDOW))
                result.spans.append(Span(start, end, norm.original[start:end], category, "model"))
