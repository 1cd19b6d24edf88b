"""Cards read as written for people: no raw dict, list repr or 17-digit float in any rendered
card (Markdown or HTML), and a threshold above 1 said in words, whatever the stored card
holds (the rewrite happens when a card is rendered)."""

from __future__ import annotations

import re
import time

from registry.card_text import (
    ABOVE_ONE_RULE,
    NEVER_BLOCKS,
    readable_text,
    short_float,
    threshold_words,
)
from registry.cards import CardSection, CardTable, ModelCard, to_html, to_markdown

RAW = ("fine-tuned from a base pretrained on 22,002 real texts: {'live_asr': 1452, 'reviews': 10000}; "
       "weight chosen among {'1.00': 0.36350201310457186, '0.75': 0.3951088028521293}")
LONG_FLOAT = re.compile(r"\d\.\d{6,}")


def _card() -> ModelCard:
    return ModelCard(model_name="false-marketing", version="v1", sections=[
        CardSection(key="model_details", title="Model details", bullets=[RAW, "labels: {'0': 'ok', '1': 'bad'}"]),
        CardSection(key="thresholds", title="Thresholds per category", tables=[CardTable(
            columns=["category", "block", "review", "validation block precision", "note"],
            rows=[["absolute_claim", 1.01, 0.0994, None, "review only"], ["counterfeit", 0.1598, 0.0719, 0.97, ""]])]),
        CardSection(key="lineage", title="Lineage", tables=[CardTable(
            columns=["parameter", "value"], rows=[["graph_aggregates", "['counts', 'mean']"],
                                                  ["weights", "{'a': 0.12345678912345}"]])]),
    ])


def test_reprs_read_as_key_value_lists_and_long_floats_as_four_figures() -> None:
    text = readable_text(RAW)
    assert "{" not in text and "'" not in text
    assert "live_asr: 1452; reviews: 10000" in text and "1.00: 0.3635; 0.75: 0.3951" in text
    assert readable_text("['counts', 'mean', 'sum']") == "counts, mean, sum"
    assert readable_text("x np.float64(0.123456789) y") == "x 0.1235 y"
    assert readable_text("{'a': {'b': [1, 2]}, 'c': None}") == "a: (b: (1, 2)); c: None"
    kept = "interval [0.6230, 0.6975], v1.4.39, 2026-12-06T04:48:40.123456+00:00, [click](javascript:x), model's {x}"
    assert readable_text(kept) == kept
    assert short_float(193.55231635899986) == "193.6" and short_float(1.2450004229780376e-06) == "1.245e-06"
    started = time.perf_counter()
    readable_text("{'" * 100_000 + "[" * 100_000)  # a text full of brackets costs a bounded scan
    assert time.perf_counter() - started < 5


def test_rendered_cards_hold_no_raw_dict_and_say_what_a_threshold_above_1_means(tmp_path) -> None:
    markdown, page = to_markdown(_card()), to_html(_card(), tmp_path)
    for text in (markdown, page):
        assert "{'" not in text and "{&#x27;" not in text and "['" not in text and "[&#x27;" not in text
        assert not LONG_FLOAT.search(text)
        assert f"1.0100: {NEVER_BLOCKS}" in text and ABOVE_ONE_RULE.split(":")[0] in text
        assert "live_asr: 1452" in text and "counts, mean" in text and "a: 0.1235" in text
    assert "| counterfeit | 0.1598 | 0.0719 | 0.9700 |" in markdown  # thresholds below 1 as they were
    assert markdown.count(NEVER_BLOCKS) == 1  # the review threshold and the precision column untouched


def test_a_row_per_decision_table_and_the_words_beside_it() -> None:
    card = ModelCard(model_name="listing-quality", version="v1", sections=[CardSection(
        key="thresholds", title="Thresholds", tables=[CardTable(
            columns=["decision", "threshold", "validation precision"], rows=[["block", 1.01, None],
                                                                             ["review", 0.2, 0.5]])])])
    markdown = to_markdown(card)
    assert f"| block | 1.0100: {NEVER_BLOCKS} | – |" in markdown and "| review | 0.2000 | 0.5000 |" in markdown
    assert threshold_words(1.01, 0.0994) == f"block: {NEVER_BLOCKS} (threshold 1.0100 > 1), review ≥ 0.0994"
    assert threshold_words(0.5, 0.2, ">=") == "block >= 0.5000, review >= 0.2000"


def test_hostile_text_stays_escaped_after_the_rewrite(tmp_path) -> None:
    hostile = "{'<script>': '<img src=x onerror=alert(1)>'}"
    card = ModelCard(model_name="m", version="v1", sections=[CardSection(key="k", title="t", bullets=[hostile])])
    page, markdown = to_html(card, tmp_path), to_markdown(card)
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;: &lt;img" in page
    assert "<script>" not in markdown and "&lt;script&gt;: &lt;img" in markdown
