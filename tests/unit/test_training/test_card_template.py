"""Card prose kept in templates beside each kind (``kinds/<kind>/card_template.md``), read and
filled by ``training/card_template.py``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from training.card_template import CARD_TEMPLATE_FILE, CardTemplate, CardTemplateError

REPO = Path(__file__).resolve().parents[3]


def _template(tmp_path: Path, text: str) -> CardTemplate:
    path = tmp_path / CARD_TEMPLATE_FILE
    path.write_text(text, encoding="utf-8")
    return CardTemplate.read(path)


def test_paragraphs_bullets_and_placeholders_are_filled(tmp_path: Path) -> None:
    template = _template(tmp_path, (
        "<!-- a comment\nover lines -->\n"
        "## model_details: Model details\n"
        "A paragraph over\ntwo lines.\n\nAnother with {{braces}}.\n\n"
        "- name: {manifest.model_name}; share {share:.1%}\n"
        "  and a second line\n"
        "- {optional}\n"
        "- last: {parameters[layers]}\n"
        "## limitations: Limitations\n- one\n"))
    values = {"manifest": SimpleNamespace(model_name="m"), "share": 0.25, "optional": "", "parameters": {"layers": 2}}
    section = template.section("model_details", values, tables=[], bullets_after=["added"])
    assert section.key == "model_details" and section.title == "Model details"
    assert section.paragraphs == ["A paragraph over two lines.", "Another with {braces}."]
    assert section.bullets == ["name: m; share 25.0% and a second line", "last: 2", "added"]
    assert template.section("limitations", key="other").key == "other"


def test_a_missing_value_or_section_is_named(tmp_path: Path) -> None:
    template = _template(tmp_path, "## a: A\n- {absent}\n")
    with pytest.raises(CardTemplateError, match="absent"):
        template.section("a", {})
    with pytest.raises(CardTemplateError, match="no section 'b'"):
        template.section("b", {})


@pytest.mark.parametrize("text, message", [("text first\n## a: A\n", "before the first"),
                                           ("## a: A\n## a: B\n", "appears twice"),
                                           ("## a: A\n- {unclosed\n", "section 'a'")])
def test_a_malformed_template_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CardTemplateError, match=message):
        _template(tmp_path, text)


@pytest.mark.parametrize("kind", ["false_marketing", "listing_quality", "merchant_risk"])
def test_every_kind_keeps_its_card_prose_in_a_template(kind: str) -> None:
    """Each built-in kind's card reads a template beside it, with the sections every card has."""
    folder = REPO / "kinds" / kind
    template = CardTemplate.read(folder / CARD_TEMPLATE_FILE)
    assert {"model_details", "intended_use", "training_data", "limitations"} <= set(template.sections)
    assert "CardTemplate.beside(__file__)" in (folder / "card.py").read_text(encoding="utf-8")
