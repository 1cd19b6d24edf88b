"""The ``false-marketing`` runtime: a character tokenizer and the int8 ONNX encoder served
by ONNX Runtime, the lexicon rules, per-category thresholds and evidence spans."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file

from features.decision import Decision, Thresholds
from features.marketing import MARKETING_CATEGORIES, LexiconMatch, lexicon_may_match, match_lexicon
from features.novelty import BigramNovelty
from features.text import NormalizedText, normalize_many, normalize_text
from features.text_scorer import CharNgramScorer, NgramHashing, tfidf
from model_registry.registry import LoadedBundle
from model_registry.runtimes.base import Explain, Records, RuntimeBase, Scores, check_cancelled
from model_registry.runtimes.char_ids import CharIds
from model_registry.runtimes.segment_policy import MODEL_ONLY_BLOCK_FLOOR, SegmentPolicy
from model_registry.settings import Device, onnx_providers

TOKENIZER_FILE = "tokenizer.json"
ONNX_INT8_FILE = "encoder.int8.onnx"
ONNX_FP32_FILE = "encoder.fp32.onnx"
TFIDF_FILE_PATTERN = "tfidf_{}.safetensors"
NOVELTY_FILE = "novelty.safetensors"
# The PyTorch checkpoint kept beside the ONNX files, so that a version can be fine-tuned further.
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.txt")
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
    novelty: float = 0.0
    capped: list[str] = field(default_factory=list)  # categories whose model-only block was capped at review
    spans_complete: bool = True  # False: the request's span budget ran out before this segment
    model_scores: list[float] = field(default_factory=list)  # the model's own per-category scores


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


def split_windows(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Every text's windows, and the index of the text each window came from."""
    owners, pieces = [], []
    for index, text in enumerate(texts):
        for _, piece in windows(text):
            owners.append(index)
            pieces.append(piece)
    return np.array(owners, dtype=np.int64), pieces


def max_by_owner(values: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """Per-text maximum over its windows' rows."""
    if len(values) == len(owners) == n:  # every text fits one window
        return values
    out = np.full((n, values.shape[1]), -np.inf)
    np.maximum.at(out, owners, values)
    return out


def blend(transformer: np.ndarray, tfidf: np.ndarray | None, transformer_weight: float) -> np.ndarray:
    """Per-category weighted mean of the two scorers (the transformer alone where the TF-IDF
    scorer has no column)."""
    if tfidf is None or transformer_weight >= 1.0:
        return transformer
    mixed = transformer_weight * transformer + (1 - transformer_weight) * tfidf
    return np.where(np.isnan(tfidf), transformer, mixed)


@dataclass(frozen=True)
class TfidfGroup:
    """Category scorers sharing one hashing and IDF (the trainer fits one per category on the
    same texts): one TF-IDF matrix and one sparse-dense product score them all."""

    hashing: NgramHashing
    idf: np.ndarray
    columns: list[int]
    coef: np.ndarray
    intercept: np.ndarray


def tfidf_groups(scorers: dict[str, CharNgramScorer], categories: Sequence[str]) -> list[TfidfGroup]:
    """The scorers of ``categories`` grouped by hashing and IDF."""
    members: dict[tuple[NgramHashing, bytes], list[int]] = {}
    for column, category in enumerate(categories):
        if category in scorers:
            scorer = scorers[category]
            members.setdefault((scorer.hashing, scorer.idf.tobytes()), []).append(column)
    return [TfidfGroup(hashing, scorers[categories[columns[0]]].idf, columns,
                       np.column_stack([scorers[categories[c]].coef for c in columns]),
                       np.array([scorers[categories[c]].intercept for c in columns]))
            for (hashing, _), columns in members.items()]


def tfidf_scores(scorers: dict[str, CharNgramScorer], texts: Sequence[str], categories: Sequence[str],
                 groups: list[TfidfGroup] | None = None) -> np.ndarray:
    """TF-IDF scores (rows x categories); NaN where a category has no scorer. Equal to each
    scorer's own ``score`` (one TF-IDF matrix per group instead of one per category)."""
    out = np.full((len(texts), len(categories)), np.nan)
    for group in groups if groups is not None else tfidf_groups(scorers, categories):
        logits = np.asarray(tfidf(group.hashing.counts(texts), group.idf) @ group.coef, dtype=np.float64)
        out[:, group.columns] = 1.0 / (1.0 + np.exp(-(logits + group.intercept)))
    return out


# Occlusion spans cost one encoder pass per variant: a request's variants may hold at most
# this many characters (about 1,200 windows, a second of CPU). Segments are explained in
# order of score; the rest keep their lexicon spans and say that model spans were cut short.
MAX_SPAN_CHARS = 150_000


# Windows of 6 characters (a word or two of Chinese) with stride 5 overlap by one: every
# character is covered with a fifth as many variants as characters. Real segments are about
# 46 characters, so this costs 9-10 encoder calls per explained segment (16 with 4/3).
OCCLUSION_WINDOW = 6


OCCLUSION_STRIDE = 5


def occlusion_variants(text: str, window: int = OCCLUSION_WINDOW,
                       stride: int = OCCLUSION_STRIDE) -> tuple[list[int], list[str]]:
    """Window starts and the text with each window removed."""
    starts = list(range(0, max(1, len(text) - window + 1), stride))
    if starts[-1] < len(text) - window:  # cover the last characters too
        starts.append(len(text) - window)
    return starts, [text[:s] + text[s + window:] for s in starts]


class Segment:
    """A segment's normalized text, with the offset map (``normalize_text``) computed only
    when a span must point back at the original characters."""

    def __init__(self, original: str, normalized: str) -> None:
        self.original, self.text = original, normalized
        self._full: NormalizedText | None = None

    @property
    def full(self) -> NormalizedText:
        """The normalized text with its offsets (computed once)."""
        if self._full is None:
            self._full = normalize_text(self.original)
        return self._full


@dataclass
class SpanJob:
    """The occlusion variants of one segment and the categories they explain."""

    norm: Segment | NormalizedText
    result: SegmentAnalysis
    categories: list[str]
    starts: list[int]
    variants: list[str]


def _segment_texts(records: Records) -> list[str]:
    if isinstance(records, pd.DataFrame):
        return records["text"].astype(str).tolist()
    return [r["text"] if isinstance(r, dict) else r.text for r in records]  # type: ignore[index,union-attr]


class FalseMarketingModel(RuntimeBase):
    """Scores transcript segments per category and explains them with spans."""

    def __init__(self, encoder: OnnxEncoder, thresholds: dict[str, Thresholds],
                 categories: Sequence[str] = MARKETING_CATEGORIES, tag: str = "false-marketing:unsaved",
                 tfidf: dict[str, CharNgramScorer] | None = None, transformer_weight: float = 1.0,
                 novelty: BigramNovelty | None = None, novelty_cutoff: float = 1.0,
                 model_only_block_floor: float = MODEL_ONLY_BLOCK_FLOOR,
                 rule_evidence: dict[str, float] | None = None) -> None:
        self.encoder = encoder
        self.categories = tuple(categories)
        self.tag = tag
        self.tfidf = tfidf or {}
        self.tfidf_groups = tfidf_groups(self.tfidf, self.categories)
        self.transformer_weight = transformer_weight
        self.novelty = novelty
        self.policy = SegmentPolicy(thresholds, self.categories, novelty_cutoff, model_only_block_floor,
                                    dict(rule_evidence or {}))
        self.span_budget_chars = MAX_SPAN_CHARS

    # The decision settings live in ``self.policy`` (one frozen object); these read and replace them.
    @property
    def thresholds(self) -> dict[str, Thresholds]:
        """Per-category thresholds (``SegmentPolicy.thresholds``)."""
        return self.policy.thresholds

    @thresholds.setter
    def thresholds(self, value: dict[str, Thresholds]) -> None:
        self.policy = replace(self.policy, thresholds=value)

    @property
    def novelty_cutoff(self) -> float:
        """Novelty above which model-only blocks are capped (``SegmentPolicy.novelty_cutoff``)."""
        return self.policy.novelty_cutoff

    @novelty_cutoff.setter
    def novelty_cutoff(self, value: float) -> None:
        self.policy = replace(self.policy, novelty_cutoff=value)

    @property
    def model_only_block_floor(self) -> float:
        """Score below which model-only blocks are capped (``SegmentPolicy.model_only_block_floor``)."""
        return self.policy.model_only_block_floor

    @model_only_block_floor.setter
    def model_only_block_floor(self, value: float) -> None:
        self.policy = replace(self.policy, model_only_block_floor=value)

    @classmethod
    def from_bundle(cls, bundle: LoadedBundle, *, device: Device = "cpu", threads: int = 0,
                    onnx_file: str = ONNX_INT8_FILE) -> FalseMarketingModel:
        """Load the served encoder (int8 ONNX by default) from a verified bundle, on
        ``device`` (the caller passes ``Settings.device``) with ``threads`` ONNX Runtime
        threads (0: one per core)."""
        return cls.from_folder(bundle.path, bundle.manifest.thresholds, bundle.manifest.serving_params,
                               bundle.tag, device, onnx_file, threads)

    @classmethod
    def from_folder(cls, folder: Path, thresholds: dict[str, Thresholds], serving_params: dict,
                    tag: str, device: Device = "cpu",
                    onnx_file: str = ONNX_INT8_FILE, threads: int = 0) -> FalseMarketingModel:
        """Load from model files in ``folder`` (``from_bundle`` verifies hashes first; the
        trainer uses this on its work folder)."""
        encoder = OnnxEncoder(folder / onnx_file, folder / TOKENIZER_FILE, device, threads)
        tfidf = {}
        for category in MARKETING_CATEGORIES:
            path = folder / TFIDF_FILE_PATTERN.format(category)
            if path.exists():
                tfidf[category] = CharNgramScorer.from_arrays(load_file(str(path)))
        novelty_path = folder / NOVELTY_FILE
        novelty = BigramNovelty.from_arrays(load_file(str(novelty_path))) if novelty_path.exists() else None
        return cls(encoder, {c: thresholds[c] for c in MARKETING_CATEGORIES},
                   MARKETING_CATEGORIES, tag, tfidf, float(serving_params.get("transformer_weight", 1.0)),
                   novelty, float(serving_params.get("novelty_cutoff", 1.0)),
                   float(serving_params.get("model_only_block_floor", MODEL_ONLY_BLOCK_FLOOR)),
                   {k: float(v) for k, v in serving_params.get("rule_evidence", {}).items()})

    def save(self, folder: Path) -> None:
        """Write the model files into ``folder``: the ONNX encoders (int8 served, fp32 kept
        for checks) and tokenizer, the PyTorch checkpoint where the source folder has one,
        the TF-IDF scorers and the novelty bit set (safetensors)."""
        source = self.encoder.model_path.parent
        names = [ONNX_INT8_FILE, ONNX_FP32_FILE, TOKENIZER_FILE, *CHECKPOINT_FILES]
        for name in names:
            if (source / name).is_file() and source.resolve() != folder.resolve():
                shutil.copy2(source / name, folder / name)
        for category, scorer in self.tfidf.items():
            save_file(scorer.to_arrays(), str(folder / TFIDF_FILE_PATTERN.format(category)))
        if self.novelty is not None:
            save_file(self.novelty.to_arrays(), str(folder / NOVELTY_FILE))

    def score(self, records: Records, explain: Explain = "flagged") -> Scores:
        """Score segments (``TranscriptSegment`` records, dicts or a table with ``text``): per
        segment the highest category score, the segment decision and the full analysis
        (``Scores.segments``). ``explain="none"`` skips the model's occlusion spans."""
        return self.score_groups([records], explain)[0]

    def score_groups(self, groups: Sequence[Records], explain: Explain = "flagged") -> list[Scores]:
        """``[self.score(g, explain) for g in groups]`` with every encoder pass of all groups
        in shared batches (the service batches concurrent streams this way); each group keeps
        its own span budget, so a group's answer does not depend on the others."""
        texts = [_segment_texts(records) for records in groups]
        analyses = self.analyze_groups(texts, spans_from_model=explain != "none")
        return [Scores(np.array([a.score for a in group]), [a.decision for a in group], [[] for _ in group], group)
                for group in analyses]

    def predict_normalized(self, texts: Sequence[str]) -> np.ndarray:
        """Served scores (n, 8) for normalized texts: per window, the encoder's probabilities
        blended per category with the TF-IDF scorer by the weight chosen on validation; a long
        text takes its strongest window (so a claim at its end is not diluted)."""
        owners, pieces = split_windows(texts)
        scores = blend(self.encoder.predict_pieces(pieces), self.tfidf_matrix(pieces), self.transformer_weight)
        return max_by_owner(scores, owners, len(texts))

    def tfidf_matrix(self, texts: Sequence[str]) -> np.ndarray | None:
        """TF-IDF scores (n, 8); NaN for categories without a scorer; None without any."""
        return tfidf_scores(self.tfidf, texts, self.categories, self.tfidf_groups) if self.tfidf else None

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Served scores (n, 8) for raw texts (normalized here)."""
        return self.predict_normalized([normalize_text(t).text for t in texts])

    def analyze(self, texts: Sequence[str], spans_from_model: bool = True) -> list[SegmentAnalysis]:
        """Scores, labels, merged lexicon + model spans and a decision for each segment.

        Segment decision (``model_registry/policy.py`` documents the order): the model's decision per
        category from that category's thresholds, where a model-only ``block`` (no lexicon
        rule of that category matched) is capped at review when the score is below
        ``model_only_block_floor`` or the text's novelty is above the bundle's cutoff; then
        lexicon rules raise it (a ``block`` rule to block, a ``review`` rule to at least
        review). The strictest category wins."""
        return self.analyze_groups([texts], spans_from_model)[0]

    def analyze_groups(self, groups: Sequence[Sequence[str]], spans_from_model: bool = True
                       ) -> list[list[SegmentAnalysis]]:
        """``analyze`` of each group, sharing the encoder passes (segments, then span variants)."""
        flat = [text for texts in groups for text in texts]
        segments = [Segment(text, plain) for text, plain in zip(flat, normalize_many(flat), strict=True)]
        plain = [segment.text for segment in segments]
        probabilities = self.predict_normalized(plain)
        novelty = self.novelty.score(plain) if self.novelty is not None else np.zeros(len(plain))
        results = [self._segment_analysis(segment, row, float(novel))
                   for segment, row, novel in zip(segments, probabilities, novelty, strict=True)]
        grouped_segments, grouped, offset = [], [], 0
        for texts in groups:
            grouped_segments.append(segments[offset:offset + len(texts)])
            grouped.append(results[offset:offset + len(texts)])
            offset += len(texts)
        if spans_from_model:
            jobs = [job for group, group_results in zip(grouped_segments, grouped, strict=True)
                    for job in self._span_jobs(group, group_results, self.span_budget_chars)]
            self._add_model_spans(jobs)
        for result in results:
            result.labels = [c for c in self.categories if c in result.labels]
            result.spans.sort(key=lambda s: s.start)
        return grouped

    def _segment_analysis(self, segment: Segment, row: np.ndarray, novel: float) -> SegmentAnalysis:
        """One segment's labels, lexicon spans and decision (``SegmentPolicy``)."""
        matches = match_lexicon(segment.full) if lexicon_may_match(segment.text) else []
        verdict = self.policy.decide(row, matches, novel)
        spans = [Span(m.start, m.end, m.text, m.category, "lexicon", m.rule_id) for m in matches]
        return SegmentAnalysis(verdict.scores, verdict.labels, spans, verdict.decision, verdict.score, matches,
                               round(novel, 4), verdict.capped, model_scores=[float(v) for v in row])

    def _span_jobs(self, normalized: Sequence[Segment | NormalizedText], results: list[SegmentAnalysis],
                   budget_chars: int = MAX_SPAN_CHARS) -> list[SpanJob]:
        """Occlusion work for one request: labels no lexicon rule explains, highest-scored
        segments first until ``budget_chars`` characters of variants are spent (the rest are
        marked ``spans_complete=False``)."""
        candidates = []
        for norm, result in zip(normalized, results, strict=True):
            covered = {m.category for m in result.lexicon}
            categories = [c for c in result.labels if c not in covered
                          and result.scores[c] >= self.thresholds[c].review]
            if categories and len(norm.text) >= 2:
                candidates.append((norm, result, categories))
        jobs, spent, exhausted = [], 0, False
        for norm, result, categories in sorted(candidates, key=lambda c: -c[1].score):
            cost = len(norm.text) * max(1, -(-len(norm.text) // OCCLUSION_STRIDE))
            exhausted = exhausted or spent + cost > budget_chars
            if exhausted:  # strictly by score: the rest are not explained
                result.spans_complete = False
                continue
            spent += cost
            starts, variants = occlusion_variants(norm.text)
            jobs.append(SpanJob(norm, result, categories, starts, variants))
        return jobs

    def _add_model_spans(self, jobs: list[SpanJob]) -> None:
        """Occlusion spans: for each job's category, the window whose removal lowers the
        served score most (ignored when it lowers it by less than a fifth).

        The served score blends the encoder with the TF-IDF scorer, and the TF-IDF half of
        every variant is cheap, so each window's drop has an upper bound without the encoder:
        score - (1 - weight) * tfidf(variant). Windows are scored by the encoder in rounds,
        highest bound first, until no unscored window's bound beats the best drop found: the
        same window as scoring them all (``search_all_windows`` does that), for a fraction of
        the encoder passes. Each round is one batched call over all jobs."""
        # A variant longer than one encoder window is scored over several windows: no cheap bound.
        long_jobs = [job for job in jobs if any(len(v) > MAX_TOKENS - 2 for v in job.variants)]
        self.search_all_windows(long_jobs)
        jobs = [job for job in jobs if all(len(v) <= MAX_TOKENS - 2 for v in job.variants)]
        if not jobs:
            return
        tfidf = self.tfidf_matrix([v for job in jobs for v in job.variants])
        searches, offset = [], 0
        for job in jobs:
            rows = None if tfidf is None else tfidf[offset:offset + len(job.variants)]
            offset += len(job.variants)
            searches.append(_WindowSearch(job, self, rows))
        while requests := [(search, i) for search in searches for i in search.next_windows()]:
            texts = [search.job.variants[i] for search, i in requests]
            encoder = self.encoder.predict_pieces(texts)
            for row, (search, i) in enumerate(requests):
                search.record(i, encoder[row])
        for search in searches:
            self._apply_span(search.job, search.drops)

    def search_all_windows(self, jobs: list[SpanJob]) -> None:
        """Occlusion spans from every window's served score (long segments, and the reference
        ``_add_model_spans`` is tested against)."""
        if not jobs:
            return
        scores = self.predict_normalized([v for job in jobs for v in job.variants])
        offset = 0
        for job in jobs:
            block = scores[offset:offset + len(job.variants)]
            offset += len(job.variants)
            drops = np.column_stack([job.result.scores[c] - block[:, self.categories.index(c)]
                                     for c in job.categories])
            self._apply_span(job, drops)

    def _apply_span(self, job: SpanJob, drops: np.ndarray) -> None:
        """Add the span of each category's largest drop (columns follow ``job.categories``;
        unscored windows hold -inf)."""
        for column, category in enumerate(job.categories):
            best = int(np.argmax(drops[:, column]))
            if drops[best, column] < 0.2 * job.result.scores[category]:
                continue
            full = job.norm.full if isinstance(job.norm, Segment) else job.norm
            start, end = full.original_span(job.starts[best], min(len(full.text), job.starts[best] + OCCLUSION_WINDOW))
            job.result.spans.append(Span(start, end, full.original[start:end], category, "model"))


class _WindowSearch:
    """The branch-and-bound state of one job's occlusion search (``_add_model_spans``)."""

    def __init__(self, job: SpanJob, model: FalseMarketingModel, tfidf: np.ndarray | None) -> None:
        self.job, self.weight = job, model.transformer_weight
        columns = [model.categories.index(c) for c in job.categories]
        full = np.array([job.result.scores[c] for c in job.categories])
        self.tfidf = (tfidf[:, columns] if tfidf is not None
                      else np.full((len(job.variants), len(columns)), np.nan))
        self.full = full
        cheap = np.where(np.isnan(self.tfidf), 0.0, (1 - self.weight) * self.tfidf)
        self.bounds = full - cheap if self.weight < 1.0 else np.repeat(full[None, :], len(job.variants), 0)
        self.columns = columns
        self.drops = np.full((len(job.variants), len(columns)), -np.inf)
        self.scored = np.zeros(len(job.variants), dtype=bool)

    def next_windows(self) -> list[int]:
        """Windows to score next: per category, the unscored one with the highest bound when
        that bound beats the best drop so far (none: the search is over)."""
        if self.scored.all():
            return []
        wanted = set()
        bounds = np.where(self.scored[:, None], -np.inf, self.bounds)
        for column in range(bounds.shape[1]):
            candidate = int(np.argmax(bounds[:, column]))
            if bounds[candidate, column] > self.drops[:, column].max():
                wanted.add(candidate)
        return sorted(wanted)

    def record(self, window: int, encoder_row: np.ndarray) -> None:
        """The exact drops of ``window`` from its encoder scores (all categories)."""
        encoder = encoder_row[self.columns]
        tfidf = self.tfidf[window]
        served = encoder if self.weight >= 1.0 else np.where(
            np.isnan(tfidf), encoder, self.weight * encoder + (1 - self.weight) * tfidf)
        self.drops[window] = self.full - served
        self.scored[window] = True
