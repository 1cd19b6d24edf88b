"""The ``false-marketing`` runtime: the encoder (``encoder.py``) blended with the TF-IDF
scorers (``blend.py``), the segment rules (``policy/segments.py``) and the evidence spans
(``spans.py``), loaded from and saved to a bundle."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file

from common.decisions import Thresholds
from common.settings import Device
from features.evasion import resolve_normalized, resolve_plain
from features.marketing import (
    MARKETING_CATEGORIES,
    MASK_CHARACTERS,
    LexiconMatch,
    lexicon_may_match,
    masked_word_matches,
    match_lexicon,
)
from features.novelty import BigramNovelty
from features.text import normalize_many, normalize_text
from features.text_scorer import CharNgramScorer
from kinds.false_marketing.blend import (
    BlendSpace,
    tfidf_groups,
    tfidf_scores,
    windowed_blend,
)
from kinds.false_marketing.encoder import OnnxEncoder, max_by_owner
from kinds.false_marketing.sentences import (
    add_rule_matches,
    merge_sentences,
    sentence_pieces,
    sentences_by_owner,
)
from kinds.false_marketing.spans import (
    MAX_SPAN_CHARS,
    Segment,
    SegmentAnalysis,
    Span,
    add_model_spans,
    span_jobs,
)
from kinds.runtime import Explain, Records, RuntimeBase, Scores
from policy.segments import MODEL_ONLY_BLOCK_FLOOR, SegmentPolicy
from registry.store import LoadedBundle

TOKENIZER_FILE = "tokenizer.json"
ONNX_INT8_FILE = "encoder.int8.onnx"
ONNX_FP32_FILE = "encoder.fp32.onnx"
TFIDF_FILE_PATTERN = "tfidf_{}.safetensors"
# Whether segments have their evasive spellings resolved (``features.evasion``) before the
# lexicon rules and the model read them, when a bundle's serving parameters do not say
# (``serving_params["evasion_resolution"]``).
EVASION_RESOLUTION_DEFAULT = False
NOVELTY_FILE = "novelty.safetensors"
# The PyTorch checkpoint kept beside the ONNX files, so that a version can be fine-tuned further.
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.txt")


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
                 rule_evidence: dict[str, float] | None = None,
                 review_only_rules: Sequence[str] = (),
                 resolve_evasions: bool = EVASION_RESOLUTION_DEFAULT,
                 blend_space: BlendSpace = "probability") -> None:
        self.encoder = encoder
        # Homophones, look-alikes, masks and fillers mapped back to the sensitive word for
        # the rules and the model; spans still point at the original characters.
        self.resolve_evasions = resolve_evasions
        self.categories = tuple(categories)
        self.tag = tag
        self.tfidf = tfidf or {}
        self.tfidf_groups = tfidf_groups(self.tfidf, self.categories)
        self.transformer_weight = transformer_weight
        self.blend_space: BlendSpace = blend_space
        self.novelty = novelty
        self.policy = SegmentPolicy(thresholds, self.categories, novelty_cutoff, model_only_block_floor,
                                    dict(rule_evidence or {}), frozenset(review_only_rules))
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
        space = serving_params.get("blend_space", "probability")  # bundles without the key blend probabilities
        if space not in get_args(BlendSpace):
            raise ValueError(f"serving_params.blend_space is {space!r}; this version of shopguard reads "
                             f"{' or '.join(get_args(BlendSpace))}: upgrade shopguard or retrain the model")
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
                   {k: float(v) for k, v in serving_params.get("rule_evidence", {}).items()},
                   [str(rule) for rule in serving_params.get("review_only_rules", [])],
                   bool(serving_params.get("evasion_resolution", EVASION_RESOLUTION_DEFAULT)),
                   space)

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
        blended per category with the TF-IDF scorer's (``blend_space``, by the weight chosen at
        training); a long text takes its strongest window (a claim at its end is not diluted)."""
        return windowed_blend(self.encoder.predict_pieces, self.tfidf_matrix, texts, self.transformer_weight,
                              self.blend_space)

    def tfidf_matrix(self, texts: Sequence[str]) -> np.ndarray | None:
        """TF-IDF scores (n, 8); NaN for categories without a scorer; None without any."""
        return tfidf_scores(self.tfidf, texts, self.categories, self.tfidf_groups) if self.tfidf else None

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Served model scores (n, 8) for raw texts: per category the highest of their sentences
        (``sentences``), each normalized, and resolved when on, here."""
        owners, pieces = sentences_by_owner(texts)
        if self.resolve_evasions:
            normalized = [resolve_normalized(normalize_text(t)).text for t in pieces]
        else:
            normalized = [normalize_text(t).text for t in pieces]
        return max_by_owner(self.predict_normalized(normalized), owners, len(texts))

    def analyze(self, texts: Sequence[str], spans_from_model: bool = True) -> list[SegmentAnalysis]:
        """Scores, labels, merged lexicon + model spans and a decision for each segment.

        Segment decision (``policy/calls.py`` documents the order): the model's decision per
        category from that category's thresholds, where a model-only ``block`` (no lexicon
        rule of that category matched) is capped at review when the score is below
        ``model_only_block_floor`` or the text's novelty is above the bundle's cutoff; then
        lexicon rules raise it (a ``block`` rule to block unless the bundle lists it among
        ``review_only_rules``, a ``review`` rule to at least review). The strictest category
        wins."""
        return self.analyze_groups([texts], spans_from_model)[0]

    def analyze_groups(self, groups: Sequence[Sequence[str]], spans_from_model: bool = True
                       ) -> list[list[SegmentAnalysis]]:
        """``analyze`` of each group, sharing the encoder passes (sentences, then span variants).
        A segment of several sentences is judged sentence by sentence (``sentences``)."""
        pieces = [[sentence_pieces(text) for text in texts] for texts in groups]
        sentences = [[sentence for split in group for _, sentence in split] for group in pieces]
        analysed = self._analyze_sentences(sentences, spans_from_model)
        merged = []
        for texts, group, results in zip(groups, pieces, analysed, strict=True):
            found = iter(results)
            merged.append([self._whole_segment_rules(text, split, merge_sentences(
                [(start, next(found)) for start, _ in split], self.categories)) for text, split in zip(texts, group,
                                                                                                      strict=True)])
        return merged

    def _whole_segment_rules(self, text: str, split: list[tuple[int, str]], analysis: SegmentAnalysis
                             ) -> SegmentAnalysis:
        """A segment of several sentences also answers to the lexicon rules that match across
        a sentence end (原价299！现在只要59元: normalization drops the mark the cut is made at)."""
        if len(split) == 1:
            return analysis
        plain = normalize_many([text])[0]
        segment = Segment(text, resolve_plain(plain) if self.resolve_evasions else plain, self.resolve_evasions)
        inside = [(start, start + len(sentence)) for start, sentence in split]
        crossing = [m for m in self._lexicon_matches(segment)
                    if not any(start <= m.start and m.end <= end for start, end in inside)]
        return add_rule_matches(analysis, crossing, self.policy) if crossing else analysis

    def _analyze_sentences(self, groups: Sequence[Sequence[str]], spans_from_model: bool
                           ) -> list[list[SegmentAnalysis]]:
        flat = [text for texts in groups for text in texts]
        plain_texts = normalize_many(flat)
        if self.resolve_evasions:
            plain_texts = [resolve_plain(text) for text in plain_texts]
        segments = [Segment(text, plain, self.resolve_evasions)
                    for text, plain in zip(flat, plain_texts, strict=True)]
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
                    for job in span_jobs(self, group, group_results, self.span_budget_chars)]
            add_model_spans(self, jobs)
        for result in results:
            result.labels = [c for c in self.categories if c in result.labels]
            result.spans.sort(key=lambda s: s.start)
        return grouped

    def _lexicon_matches(self, segment: Segment) -> list[LexiconMatch]:
        matches = (match_lexicon(segment.full, masked_words=not self.resolve_evasions)
                   if lexicon_may_match(segment.text) else [])
        if self.resolve_evasions and MASK_CHARACTERS & set(segment.original):
            # resolution turns 关某节 into 关节: the masked-word rules read the text as said
            matches = sorted(matches + masked_word_matches(normalize_text(segment.original)),
                             key=lambda m: (m.start, m.category))
        return matches

    def _segment_analysis(self, segment: Segment, row: np.ndarray, novel: float) -> SegmentAnalysis:
        """One segment's labels, lexicon spans and decision (``SegmentPolicy``)."""
        matches = self._lexicon_matches(segment)
        verdict = self.policy.decide(row, matches, novel)
        spans = [Span(m.start, m.end, m.text, m.category, "lexicon", m.rule_id) for m in matches]
        return SegmentAnalysis(verdict.scores, verdict.labels, spans, verdict.decision, verdict.score, matches,
                               round(novel, 4), verdict.capped, model_scores=[float(v) for v in row])

