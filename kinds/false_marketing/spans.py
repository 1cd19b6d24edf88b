"""Evidence spans of the false-marketing runtime: occlusion (remove a window, see the served
score drop), searched by branch and bound (the TF-IDF half bounds each window's drop, the
encoder scores windows best-bound first), within a per-request budget of characters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from common.decisions import Decision, Thresholds
from features.evasion import resolve_normalized
from features.marketing import LexiconMatch
from features.text import NormalizedText, normalize_text
from kinds.false_marketing.blend import BlendSpace, blend, blend_floor
from kinds.false_marketing.encoder import MAX_TOKENS, OnnxEncoder, text_windows


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


class SpanScorer(Protocol):
    """What the span search needs of the runtime: its served scores and their parts."""

    encoder: OnnxEncoder
    categories: tuple[str, ...]
    transformer_weight: float
    blend_space: BlendSpace

    @property
    def thresholds(self) -> dict[str, Thresholds]: ...

    def predict_normalized(self, texts: Sequence[str]) -> np.ndarray: ...

    def tfidf_matrix(self, texts: Sequence[str]) -> np.ndarray | None: ...


# Occlusion spans cost one encoder pass per variant: the encoder may read at most this many
# characters of a request's variants (about 1,200 windows, a second of CPU; a text longer than
# one window is read in its windows and clause windows, ``encoder.text_windows``, and counted
# so). Segments are explained in order of score; the rest keep their lexicon spans and say
# that model spans were cut short.
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
    when a span must point back at the original characters. With ``resolve_evasions`` the
    text has its evasive spellings resolved (``features.evasion``) and so has the offset map."""

    def __init__(self, original: str, normalized: str, resolve_evasions: bool = False) -> None:
        self.original, self.text = original, normalized
        self.resolve_evasions = resolve_evasions
        self._full: NormalizedText | None = None

    @property
    def full(self) -> NormalizedText:
        """The normalized (and, when asked, resolved) text with its offsets (computed once)."""
        if self._full is None:
            full = normalize_text(self.original)
            self._full = resolve_normalized(full) if self.resolve_evasions else full
        return self._full


@dataclass
class SpanJob:
    """The occlusion variants of one segment and the categories they explain."""

    norm: Segment | NormalizedText
    result: SegmentAnalysis
    categories: list[str]
    starts: list[int]
    variants: list[str]


def span_jobs(model: SpanScorer, normalized: Sequence[Segment | NormalizedText], results: list[SegmentAnalysis],
               budget_chars: int = MAX_SPAN_CHARS) -> list[SpanJob]:
    """Occlusion work for one request: labels no lexicon rule explains, highest-scored
    segments first until ``budget_chars`` characters of variants are spent (the rest are
    marked ``spans_complete=False``)."""
    candidates = []
    for norm, result in zip(normalized, results, strict=True):
        covered = {m.category for m in result.lexicon}
        categories = [c for c in result.labels if c not in covered
                      and result.scores[c] >= model.thresholds[c].review]
        if categories and len(norm.text) >= 2:
            candidates.append((norm, result, categories))
    jobs, spent, exhausted = [], 0, False
    for norm, result, categories in sorted(candidates, key=lambda c: -c[1].score):
        read = sum(len(piece) for _, piece in text_windows(norm.text))  # characters the encoder reads
        cost = read * max(1, -(-len(norm.text) // OCCLUSION_STRIDE))
        exhausted = exhausted or spent + cost > budget_chars
        if exhausted:  # strictly by score: the rest are not explained
            result.spans_complete = False
            continue
        spent += cost
        starts, variants = occlusion_variants(norm.text)
        jobs.append(SpanJob(norm, result, categories, starts, variants))
    return jobs

def add_model_spans(model: SpanScorer, jobs: list[SpanJob]) -> None:
    """Occlusion spans: for each job's category, the window whose removal lowers the
    served score most (ignored when it lowers it by less than a fifth).

    The served score blends the encoder with the TF-IDF scorer, and the TF-IDF half of
    every variant is cheap, so each window's drop has an upper bound without the encoder:
    score - ``blend_floor(tfidf(variant))``, the blend with the encoder at its lowest. Windows
    are scored by the encoder in rounds, highest bound first, until no unscored window's bound
    beats the best drop found: the same window as scoring them all (``search_all_windows``
    does that), for a fraction of the encoder passes. Each round is one batched call over all
    jobs."""
    # A variant longer than one encoder window is scored over several windows: no cheap bound.
    long_jobs = [job for job in jobs if any(len(v) > MAX_TOKENS - 2 for v in job.variants)]
    search_all_windows(model, long_jobs)
    jobs = [job for job in jobs if all(len(v) <= MAX_TOKENS - 2 for v in job.variants)]
    if not jobs:
        return
    tfidf = model.tfidf_matrix([v for job in jobs for v in job.variants])
    searches, offset = [], 0
    for job in jobs:
        rows = None if tfidf is None else tfidf[offset:offset + len(job.variants)]
        offset += len(job.variants)
        searches.append(WindowSearch(job, model, rows))
    while rounds := [(search, windows) for search in searches if (windows := search.next_windows())]:
        texts = [search.job.variants[i] for search, windows in rounds for i in windows]
        encoder = model.encoder.predict_pieces(texts)
        offset = 0
        for search, windows in rounds:
            search.record(windows, encoder[offset:offset + len(windows)])
            offset += len(windows)
    for search in searches:
        apply_span(search.job, search.drops)

def search_all_windows(model: SpanScorer, jobs: list[SpanJob]) -> None:
    """Occlusion spans from every window's served score (long segments, and the reference
    ``add_model_spans`` is tested against)."""
    if not jobs:
        return
    scores = model.predict_normalized([v for job in jobs for v in job.variants])
    offset = 0
    for job in jobs:
        block = scores[offset:offset + len(job.variants)]
        offset += len(job.variants)
        drops = np.column_stack([job.result.scores[c] - block[:, model.categories.index(c)]
                                 for c in job.categories])
        apply_span(job, drops)

def apply_span(job: SpanJob, drops: np.ndarray) -> None:
    """Add the span of each category's largest drop (columns follow ``job.categories``;
    unscored windows hold -inf)."""
    for column, category in enumerate(job.categories):
        best = int(np.argmax(drops[:, column]))
        if drops[best, column] < 0.2 * job.result.scores[category]:
            continue
        full = job.norm.full if isinstance(job.norm, Segment) else job.norm
        start, end = full.original_span(job.starts[best], min(len(full.text), job.starts[best] + OCCLUSION_WINDOW))
        job.result.spans.append(Span(start, end, full.original[start:end], category, "model"))



class WindowSearch:
    """The branch-and-bound state of one job's occlusion search (``add_model_spans``)."""

    def __init__(self, job: SpanJob, model: SpanScorer, tfidf: np.ndarray | None) -> None:
        self.job, self.weight, self.space = job, model.transformer_weight, model.blend_space
        columns = [model.categories.index(c) for c in job.categories]
        full = np.array([job.result.scores[c] for c in job.categories])
        self.tfidf = (tfidf[:, columns] if tfidf is not None
                      else np.full((len(job.variants), len(columns)), np.nan))
        self.full = full
        self.bounds = full - blend_floor(self.tfidf, self.weight, self.space)
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

    def record(self, windows: list[int], encoder_rows: np.ndarray) -> None:
        """The exact drops of ``windows`` from their encoder scores (one row of all categories
        per window): one blend call per round, not per window."""
        served = blend(encoder_rows[:, self.columns], self.tfidf[windows], self.weight, self.space)
        self.drops[windows] = self.full - served
        self.scored[windows] = True
