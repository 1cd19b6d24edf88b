"""How false-marketing reads a segment: sentence by sentence (kinds/false_marketing/sentences.py),
and a long text in windows and clause windows (kinds/false_marketing/encoder.py)."""

from __future__ import annotations

import pytest

from features.marketing import MARKETING_CATEGORIES, LexiconMatch
from kinds.false_marketing.encoder import CLAUSE_STRIDE, CLAUSE_WINDOW, MAX_TOKENS, text_windows
from kinds.false_marketing.sentences import merge_sentences, sentence_pieces, sentences_by_owner
from kinds.false_marketing.spans import SegmentAnalysis, Span


@pytest.mark.parametrize(("text", "sentences"), [
    ("家人们晚上好。这个能降血压！保证有效果。", ["家人们晚上好。", "这个能降血压！", "保证有效果。"]),
    ("你们说呢？好的好的好的！！", ["你们说呢？", "好的好的好的！！"]),
    ("价格是9.9元。v1.2版本更新了", ["价格是9.9元。", "v1.2版本更新了"]),  # "." never cuts
    ("维c啊，有没有维c?有啊宝贝", ["维c啊，有没有维c?有啊宝贝"]),  # ASCII ? inside a word run
    ("It works! really well? yes", ["It works! ", "really well? yes"]),
    ("第一行文字在这\n第二行文字在这", ["第一行文字在这\n", "第二行文字在这"]),
    ("降！血！压！", ["降！血！压！"]),  # punctuation inside a word does not cut it
    ("好的。这个真的能降血压。", ["好的。这个真的能降血压。"]),  # too short to stand alone
    ("。。。这个真的能降血压", ["。。。这个真的能降血压"]),
    ("", [""]),
])
def test_sentence_pieces_cut_at_sentence_ends_and_keep_every_character(text, sentences) -> None:
    pieces = sentence_pieces(text)
    assert [piece for _, piece in pieces] == sentences
    assert "".join(sentences) == text
    assert all(text[start:start + len(piece)] == piece for start, piece in pieces)


def test_sentences_by_owner_names_each_sentences_text() -> None:
    owners, sentences = sentences_by_owner(["只有一句话而已", "第一句话在这。第二句话在这。"])
    assert owners.tolist() == [0, 1, 1]
    assert sentences == ["只有一句话而已", "第一句话在这。", "第二句话在这。"]


def _analysis(decision, scores, labels, spans=(), capped=(), novelty=0.0, complete=True) -> SegmentAnalysis:
    full = dict.fromkeys(MARKETING_CATEGORIES, 0.01) | scores
    matches = [LexiconMatch(s.category, s.rule_id, "review", s.start, s.end, s.text) for s in spans if s.rule_id]
    return SegmentAnalysis(full, list(labels), list(spans), decision, max(full.values()), matches, novelty,
                           list(capped), complete, list(full.values()))


def test_merged_sentences_take_the_strictest_decision_highest_scores_and_moved_spans() -> None:
    first = _analysis("review", {"false_scarcity": 0.7}, ["false_scarcity"], capped=["false_scarcity"],
                      spans=[Span(0, 4, "马上下播", "false_scarcity", "lexicon", "SCA-001")], novelty=0.2)
    second = _analysis("block", {"efficacy_claim": 0.95, "false_scarcity": 0.3}, ["efficacy_claim"],
                       spans=[Span(3, 6, "降血压", "efficacy_claim", "model")], novelty=0.1, complete=False)
    merged = merge_sentences([(0, first), (10, second)], MARKETING_CATEGORIES)
    assert merged.decision == "block"
    assert merged.scores["efficacy_claim"] == 0.95 and merged.scores["false_scarcity"] == 0.7
    assert merged.score == 0.95
    assert merged.labels == [c for c in MARKETING_CATEGORIES if c in {"false_scarcity", "efficacy_claim"}]
    assert [(s.start, s.end, s.text) for s in merged.spans] == [(0, 4, "马上下播"), (13, 16, "降血压")]
    assert [(m.start, m.end) for m in merged.lexicon] == [(0, 4)]
    assert merged.capped == ["false_scarcity"] and merged.novelty == 0.2 and not merged.spans_complete
    assert merged.model_scores == [max(a, b) for a, b in zip(first.model_scores, second.model_scores, strict=True)]


def test_a_single_sentence_is_its_own_analysis() -> None:
    only = _analysis("allow", {}, [])
    assert merge_sentences([(0, only)], MARKETING_CATEGORIES) is only


@pytest.mark.parametrize("length", [1, 60, 126, 127, 200, 1000])
def test_a_long_text_is_also_read_in_clause_windows_that_cover_it(length) -> None:
    text = "".join(chr(0x4E00 + i % 500) for i in range(length))
    read = text_windows(text)
    assert all(text[start:start + len(piece)] == piece for start, piece in read)
    if length <= MAX_TOKENS - 2:
        assert read == [(0, text)]  # a sentence that fits one window is read as before
        return
    clauses = [(start, piece) for start, piece in read if len(piece) == CLAUSE_WINDOW]
    long_windows = [piece for _, piece in read if len(piece) == MAX_TOKENS - 2]
    assert long_windows and clauses
    for pieces in ([(s, p) for s, p in read if len(p) == MAX_TOKENS - 2], clauses):
        covered = set()
        for start, piece in pieces:
            covered.update(range(start, start + len(piece)))
        assert covered == set(range(length))
    # every stretch of CLAUSE_STRIDE + 1 characters lies whole inside some clause window
    assert all(any(s <= i and i + CLAUSE_STRIDE < s + CLAUSE_WINDOW for s, _ in clauses)
               for i in range(length - CLAUSE_STRIDE))
