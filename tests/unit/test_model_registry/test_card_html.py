"""The HTML card: Chinese marked as such with a CJK font stack, wide tables scroll, and
every recorded string escaped."""

from __future__ import annotations

from registry.cards import CardSection, CardTable, ModelCard, to_html


def test_chinese_is_marked_tables_scroll_and_text_is_escaped(tmp_path) -> None:
    card = ModelCard(model_name="false-marketing", version="v1", sections=[CardSection(
        key="examples", title="Examples", paragraphs=["<script>alert(1)</script>"],
        tables=[CardTable(columns=["text", "score"], rows=[["全网最低价", 0.9]])])])
    page = to_html(card, tmp_path)
    assert '<span lang="zh-Hans">全网最低价</span>' in page
    assert "Noto Sans CJK SC" in page and "<div class='table-scroll'><table>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
