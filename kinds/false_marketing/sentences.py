"""A segment of several sentences is judged sentence by sentence: the model learned sentences
(the real rooms are labelled one sentence at a time), and a claim inside a longer text is
diluted when the text is read whole. Each sentence is scored, matched and decided alone; the
segment takes the strictest decision, every sentence's labels and spans (offsets in the
segment), and per category the highest score.

On one room fold no model saw (benchmarks/marketing_sentences.py), 3 consecutive sentences of a
clip read whole ranked at ROC-AUC 0.828, sentence by sentence 0.851; at the same threshold
recall 0.58 against 0.66 with as many clean segments flagged (11%); 5 sentences 0.807 against
0.842. Speech recognition that does not punctuate leaves no sentence end to cut at: a long text
is then read in clause windows too (``encoder.text_windows``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from common.decisions import stricter
from features.marketing import LexiconMatch
from kinds.false_marketing.encoder import pieces_by_owner
from kinds.false_marketing.spans import SegmentAnalysis, Span
from policy.segments import SegmentPolicy, SegmentVerdict

# A sentence ends after 。？！ or a line break (speech recognition punctuates so), or after ?!
# before a space or the end; never after "." (9.9元, v1.2) nor ?! inside a word (维c?有).
FULL_WIDTH_ENDS = frozenset("。？！\n")
ASCII_ENDS = frozenset("?!")


def _sentence_ends(text: str) -> list[int]:
    """Where the sentences of ``text`` end (one scan: a run of marks is read once)."""
    ends, i, n = [], 0, len(text)
    while i < n:
        if text[i] in FULL_WIDTH_ENDS:
            i += 1
            while i < n and (text[i] in FULL_WIDTH_ENDS or text[i] in ASCII_ENDS):
                i += 1
            ends.append(i)
        elif text[i] in ASCII_ENDS:
            i += 1
            while i < n and text[i] in ASCII_ENDS:
                i += 1
            if i == n or text[i].isspace():
                while i < n and text[i].isspace():
                    i += 1
                ends.append(i)
        else:
            i += 1
    return ends


# A piece with fewer word characters joins its neighbour: 好的。 is no claim of its own, and
# punctuation put between a word's characters (降！血！压) does not cut the word.
MIN_SENTENCE_WORD_CHARS = 4


def sentence_pieces(text: str) -> list[tuple[int, str]]:
    """The sentences of ``text`` with their start offsets. A piece with fewer than
    ``MIN_SENTENCE_WORD_CHARS`` letters or digits joins the one before it (the one after it,
    at the start), so the pieces put together are ``text``; a text of one sentence is one piece."""
    bounds = [0, *_sentence_ends(text)]
    if bounds[-1] < len(text):
        bounds.append(len(text))
    spans: list[list[int]] = []  # [start, end, word characters] of each piece so far
    for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
        words = _word_chars(text[begin:end])
        if spans and (words < MIN_SENTENCE_WORD_CHARS or spans[-1][2] < MIN_SENTENCE_WORD_CHARS):
            spans[-1][1] = end
            spans[-1][2] += words
        else:
            spans.append([begin, end, words])
    return [(start, text[start:end]) for start, end, _ in spans] or [(0, text)]


def _word_chars(text: str) -> int:
    return sum(character.isalnum() for character in text)


def merge_sentences(parts: Sequence[tuple[int, SegmentAnalysis]], categories: Sequence[str]) -> SegmentAnalysis:
    """One segment's analysis from its sentences' (start offset, analysis): the strictest
    decision, per category the highest score, every label, span and lexicon match (moved to
    the segment's offsets), the highest novelty and every category capped in a sentence."""
    if len(parts) == 1 and parts[0][0] == 0:
        return parts[0][1]
    analyses = [analysis for _, analysis in parts]
    decision = analyses[0].decision
    for analysis in analyses[1:]:
        decision = stricter(decision, analysis.decision)
    scores = {c: max(a.scores[c] for a in analyses) for c in analyses[0].scores}
    labels = [c for c in categories if any(c in a.labels for a in analyses)]
    spans = [replace(span, start=span.start + start, end=span.end + start)
             for start, analysis in parts for span in analysis.spans]
    lexicon = [replace(match, start=match.start + start, end=match.end + start)
               for start, analysis in parts for match in analysis.lexicon]
    capped = [c for c in categories if any(c in a.capped for a in analyses)]
    model_scores = ([max(values) for values in zip(*(a.model_scores for a in analyses), strict=True)]
                    if all(a.model_scores for a in analyses) else [])
    return SegmentAnalysis(scores, labels, sorted(spans, key=_span_order), decision, max(scores.values()),
                           lexicon, max(a.novelty for a in analyses), capped,
                           all(a.spans_complete for a in analyses), model_scores)


def add_rule_matches(analysis: SegmentAnalysis, matches: Sequence[LexiconMatch], policy: SegmentPolicy
                     ) -> SegmentAnalysis:
    """``analysis`` with more lexicon matches applied as a segment's own are
    (``SegmentPolicy.with_rules``), each also a span."""
    verdict = policy.with_rules(SegmentVerdict(analysis.scores, analysis.decision, analysis.labels, analysis.capped),
                                matches)
    spans = [*analysis.spans, *(Span(m.start, m.end, m.text, m.category, "lexicon", m.rule_id) for m in matches)]
    return replace(analysis, scores=verdict.scores, labels=verdict.labels, decision=verdict.decision,
                   score=verdict.score, spans=sorted(spans, key=_span_order), lexicon=[*analysis.lexicon, *matches])


def _span_order(span: Span) -> int:
    return span.start


def sentences_by_owner(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Every text's sentences, and the index of the text each came from."""
    return pieces_by_owner(texts, sentence_pieces)
