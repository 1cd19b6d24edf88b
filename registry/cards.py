"""Model cards: one structured document rendered to Markdown, self-contained HTML and JSON.

The training pipelines fill a ``ModelCard`` from the same metrics object that chose the
thresholds; nothing in a card is written by hand.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.card_text import (
    ABOVE_ONE_RULE,
    NEVER_BLOCKS,
    NEVER_REVIEWS,
    above_any_score,
    readable_text,
)

CARD_MD = "card.md"
CARD_HTML = "card.html"
CARD_JSON = "card.json"

Cell = str | int | float | None


class CardTable(BaseModel):
    """A table in a card section."""

    model_config = ConfigDict(extra="forbid")

    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""


class CardImage(BaseModel):
    """A plot stored as a PNG file beside the card."""

    model_config = ConfigDict(extra="forbid")

    file: str
    caption: str


class CardSection(BaseModel):
    """One section: paragraphs, bullet points, tables and images, in that order."""

    model_config = ConfigDict(extra="forbid")

    key: str
    title: str
    paragraphs: list[str] = Field(default_factory=list)
    bullets: list[str] = Field(default_factory=list)
    tables: list[CardTable] = Field(default_factory=list)
    images: list[CardImage] = Field(default_factory=list)


class ModelCard(BaseModel):
    """A model card: the model's tag and its sections."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: str
    sections: list[CardSection]

    def section(self, key: str) -> CardSection:
        """The section with ``key``."""
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)


def _format_cell(value: Cell) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


THRESHOLD_SECTIONS = ("thresholds", "threshold_change")


def _readable(value: Cell) -> Cell:
    return readable_text(value) if isinstance(value, str) else value


def _threshold_cell(value: Cell, column: str, row: list[Cell]) -> Cell:
    """A threshold cell above 1 said in words (``1.0100: the model alone never blocks``)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not above_any_score(value):
        return value
    decision = column.lower()
    if "precision" in decision or "recall" in decision:
        return value
    if decision == "threshold" and row and isinstance(row[0], str):
        decision = row[0].lower()  # a table with a row per decision: decision | threshold | ...
    if "block" in decision:
        return f"{value:.4f}: {NEVER_BLOCKS}"
    if "review" in decision:
        return f"{value:.4f}: {NEVER_REVIEWS}"
    return value


def _presentable_table(table: CardTable, thresholds: bool) -> tuple[CardTable, bool]:
    rows, explained = [], False
    for row in table.rows:
        cells = [_readable(c) for c in row]
        if thresholds:
            said = [_threshold_cell(c, column, cells) for c, column in zip(cells, table.columns, strict=False)]
            explained = explained or said != cells
            cells = said + cells[len(said):]
        rows.append(cells)
    return CardTable(columns=[readable_text(c) for c in table.columns], rows=rows,
                     caption=readable_text(table.caption)), explained


def presentable(card: ModelCard) -> ModelCard:
    """The card as people read it: no raw dict, list repr or 17-digit float in any text or
    cell (``card_text.readable_text``), and a threshold above 1 said in words with the rule
    that explains it. Applied when a card is rendered, so cards stored before read well too."""
    sections = []
    for section in card.sections:
        thresholds = section.key in THRESHOLD_SECTIONS
        tables, explained = [], False
        for table in section.tables:
            shown, said = _presentable_table(table, thresholds)
            tables.append(shown)
            explained = explained or said
        bullets = [readable_text(b) for b in section.bullets]
        sections.append(section.model_copy(update={
            "title": readable_text(section.title), "paragraphs": [readable_text(p) for p in section.paragraphs],
            "bullets": bullets + ([ABOVE_ONE_RULE] if explained and ABOVE_ONE_RULE not in bullets else []),
            "tables": tables,
            "images": [i.model_copy(update={"caption": readable_text(i.caption)}) for i in section.images]}))
    return card.model_copy(update={"sections": sections})


# ``scheme://`` and ``www.``: what a Markdown viewer (GitHub's autolinks) turns into a link.
_AUTOLINK = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}):(?=//)|\b(www)\.")
# What makes brackets a link, an image or a reference definition: ``](``, ``][``, ``]:``, ``![``.
_LINK_SYNTAX = re.compile(r"\]\s*[(\[:]|!\[")


def md_text(value: object) -> str:
    """Text from data or the environment made inert in Markdown: HTML special characters
    become entities (no tag, script or ``<url>`` autolink from a category name, a file path
    or a promotion reason reaches a page), brackets and backslashes are escaped (no link,
    image or reference definition: ``[x](javascript:...)`` stays text; plain brackets such as
    an interval ``[0.61, 0.67]`` are left as they are), and a bare URL's ``://`` or ``www.``
    is escaped so that no viewer links it."""
    text = html.escape(str(value), quote=False).replace("\\", "\\\\")
    if _LINK_SYNTAX.search(text):
        text = text.replace("[", "\\[").replace("]", "\\]")
    return _AUTOLINK.sub(lambda m: f"{m.group(1)}\\:" if m.group(1) else "www\\.", text)


def _md_cell(value: Cell) -> str:
    return md_text(_format_cell(value)).replace("|", "\\|").replace("\n", " ")


def heading(section: CardSection) -> str:
    """The section's heading: the Hugging Face model card section it fills, then our title."""
    from registry.card_standards import HF_SECTIONS

    standard = HF_SECTIONS.get(section.key)
    if standard is None or standard.lower() == section.title.lower():
        return standard or section.title
    return f"{standard}: {section.title}"


def to_markdown(card: ModelCard, front_matter: str = "") -> str:
    """Render the card as Markdown (images referenced by file name), optionally after YAML
    front matter. Raw dicts, reprs and long floats are rewritten for people (``presentable``)."""
    card = presentable(card)
    lines = [front_matter.rstrip("\n")] if front_matter else []
    lines += [f"# Model card: {md_text(card.model_name)}:{md_text(card.version)}", ""]
    for section in card.sections:
        lines += [f"## {md_text(heading(section))}", ""]
        for paragraph in section.paragraphs:
            lines += [md_text(paragraph), ""]
        if section.bullets:
            lines += [f"- {md_text(b)}" for b in section.bullets] + [""]
        for table in section.tables:
            if table.caption:
                lines += [f"**{md_text(table.caption)}**", ""]
            lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
            lines.append("")
        for image in section.images:
            lines += [f"![{md_text(image.caption)}]({md_text(image.file)})", ""]
    return "\n".join(lines)


_HTML_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC",
"PingFang SC","Hiragino Sans GB","Microsoft YaHei","WenQuanYi Zen Hei",sans-serif;max-width:980px;margin:2em auto;
padding:0 1em;color:#222}
.table-scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px}
figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}
"""


_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def _html_text(value: object) -> str:
    """Escaped text; text holding Chinese is marked ``lang="zh-Hans"`` so that browsers pick a
    CJK font (the page is English)."""
    escaped = html.escape(str(value))
    return f'<span lang="zh-Hans">{escaped}</span>' if _CJK.search(escaped) else escaped


def to_html(card: ModelCard, image_dir: Path) -> str:
    """Render the card as one self-contained HTML page, images embedded as data URIs; wide
    tables scroll sideways instead of overflowing; raw dicts, reprs and long floats are
    rewritten for people (``presentable``)."""
    card = presentable(card)
    esc = _html_text
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Model card {html.escape(card.model_name)}:{html.escape(card.version)}</title>",
        f"<style>{_HTML_STYLE}</style></head><body>",
        f"<h1>Model card: {esc(card.model_name)}:{esc(card.version)}</h1>",
    ]
    for section in card.sections:
        parts.append(f"<section id='{html.escape(section.key)}'><h2>{esc(heading(section))}</h2>")
        parts += [f"<p>{esc(p)}</p>" for p in section.paragraphs]
        if section.bullets:
            parts.append("<ul>" + "".join(f"<li>{esc(b)}</li>" for b in section.bullets) + "</ul>")
        for table in section.tables:
            caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
            head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(_format_cell(c))}</td>" for c in row) + "</tr>"
                for row in table.rows
            )
            parts.append(f"<div class='table-scroll'><table>{caption}<thead><tr>{head}</tr></thead>"
                         f"<tbody>{body}</tbody></table></div>")
        for image in section.images:
            data = base64.b64encode((image_dir / image.file).read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(image.caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{esc(image.caption)}</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


# An absolute file path of the machine that trained (three parts or more), not part of a URL.
MACHINE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/|`()\[\]\"'<>,;]+/)+([^\s/|`()\[\]\"'<>,;]+/[^\s/|`()\[\]\"'<>,;]*)")

# A path relative to the trainer's working folder that starts in a hidden folder (the home,
# ``.shopguard/base_models/...``): the hidden folder is cut.
HOME_PATH = re.compile(r"(?<![\w/.~…-])\.[\w-]+/(?=[^\s/])")


def without_machine_paths(value: Any) -> Any:
    """``value`` (a text, or lists and dicts of them) with absolute paths of the training
    machine cut to their last two parts (``/work/shared/data/ads/x.jsonl`` -> ``…/ads/x.jsonl``),
    and a hidden folder leading a relative path cut (``.shopguard/base_models/b`` -> ``…/base_models/b``):
    a card travels to people who have no business knowing the trainer's file system."""
    if isinstance(value, str):
        return HOME_PATH.sub("…/", MACHINE_PATH.sub(lambda match: "…/" + match.group(1), value))
    if isinstance(value, list):
        return [without_machine_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: without_machine_paths(v) for k, v in value.items()}
    return value


def scrubbed(card: ModelCard) -> ModelCard:
    """The card with no path of the training machine (``without_machine_paths``)."""
    return ModelCard.model_validate(without_machine_paths(card.model_dump(mode="json")))


def write_card(card: ModelCard, folder: Path) -> None:
    """Write ``card.md``, ``card.html`` and ``card.json`` into ``folder`` (images already
    there), without the training machine's paths."""
    card = scrubbed(card)
    (folder / CARD_MD).write_text(to_markdown(card), encoding="utf-8")
    (folder / CARD_HTML).write_text(to_html(card, folder), encoding="utf-8")
    (folder / CARD_JSON).write_text(card.model_dump_json(indent=2), encoding="utf-8")
