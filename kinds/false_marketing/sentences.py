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

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from common.decisions import stricter
from kinds.false_marketing.spans import SegmentAnalysis, Span

# A sentence ends after 。？！ or a line break (speech recognition punctuates so), or after ?!
# before a space or the end; never after "." (9.9元, v1.2) nor ?! inside a word (维c?有).
_SENTENCE = re.compile(r"(?:[^。？！?!\n]|[?!](?![?!]*(?:\s|$)))*(?:[。？！\n]+[?!]*|[?!]+(?=\s|$)\s*|$)")

# A piece with fewer word characters joins its neighbour: 好的。 is no claim of its own, and
# punctuation put between a word's characters (降！血！压) does not cut the word.
MIN_SENTENCE_WORD_CHARS = 4


def sentence_pieces(text: str) -> list[tuple[int, str]]:
    """The sentences of ``text`` with their start offsets. A piece with fewer than
    ``MIN_SENTENCE_WORD_CHARS`` letters or digits joins the one before it (the one after it,
    at the start), so the pieces put together are ``text``; a text of one sentence is one piece."""
    pieces: list[tuple[int, str]] = []
    for found in _SENTENCE.finditer(text):
        piece = found.group()
        if not piece:
            continue
        if pieces and (_word_chars(piece) < MIN_SENTENCE_WORD_CHARS
                       or _word_chars(pieces[-1][1]) < MIN_SENTENCE_WORD_CHARS):
            start, before = pieces[-1]
            pieces[-1] = (start, before + piece)
        else:
            pieces.append((found.start(), piece))
    return pieces or [(0, text)]


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


def _span_order(span: Span) -> int:
    return span.start


def split_sentences(texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Every text's sentences, and the index of the text each came from."""
    owners, sentences = [], []
    for index, text in enumerate(texts):
        for _, sentence in sentence_pieces(text):
            owners.append(index)
            sentences.append(sentence)
    return np.array(owners, dtype=np.int64), sentences
