"""A kind's card prose kept out of code (as skops and setfit render cards from templates): a
markdown file beside the kind (``kinds/<kind>/card_template.md``) holds each section's title,
paragraphs and bullets with ``str.format`` placeholders, filled from the typed manifest and the
run's metrics; the kind's ``card.py`` adds the tables and plots.

The file's shape::

    <!-- comments are left out -->
    ## model_details: Model details
    A paragraph: its lines are joined with spaces, and a blank line ends it.

    - a bullet: name {manifest.model_name}; version {manifest.version}
      (an indented line goes on with the bullet)
    - {origin}

A section starts at ``## <key>: <title>``; a line starting with ``- `` starts a bullet, any
other text a paragraph. A placeholder names a value passed to ``CardTemplate.section``
(attributes and items as ``str.format`` reads them, with its format specs: ``{share:.2%}``);
literal braces are doubled. A bullet or paragraph that renders empty is left out (an optional
line filled from code)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.cards import CardImage, CardSection, CardTable

CARD_TEMPLATE_FILE = "card_template.md"
_HEADING = re.compile(r"^## (?P<key>[a-z0-9_]+): (?P<title>.+)$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


class CardTemplateError(ValueError):
    """A card template that cannot be read or filled: its file and what is wrong."""


@dataclass(frozen=True)
class SectionTemplate:
    """One section's prose: its key and title, its paragraphs and bullets (unfilled)."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CardTemplate:
    """The sections of a card template file, by key."""

    path: Path
    sections: dict[str, SectionTemplate]

    @classmethod
    def read(cls, path: Path) -> CardTemplate:
        """Read ``path`` (the shape in the module docstring); a line outside any section, a
        repeated key or a placeholder that ``str.format`` cannot parse is refused."""
        text = _COMMENT.sub("", path.read_text(encoding="utf-8"))
        sections: dict[str, SectionTemplate] = {}
        current: SectionTemplate | None = None
        block: list[str] = []  # the lines of the paragraph or bullet being read
        bullet = False

        def close() -> None:
            nonlocal block
            if block and current is not None:
                (current.bullets if bullet else current.paragraphs).append(" ".join(block))
            block = []

        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.rstrip()
            heading = _HEADING.match(line)
            if heading:
                close()
                key = heading["key"]
                if key in sections:
                    raise CardTemplateError(f"{path.name}, line {number}: section {key!r} appears twice")
                current = sections[key] = SectionTemplate(key, heading["title"].strip())
            elif not line.strip():
                close()
            elif current is None:
                raise CardTemplateError(f"{path.name}, line {number}: text before the first '## key: title'")
            elif line.startswith("- "):
                close()
                bullet, block = True, [line[2:].strip()]
            elif line.startswith("  ") and block:
                block.append(line.strip())
            else:
                if block and bullet:
                    close()
                bullet = False
                block.append(line.strip())
        close()
        for section in sections.values():
            for piece in (section.title, *section.paragraphs, *section.bullets):
                try:
                    list(string.Formatter().parse(piece))
                except ValueError as error:
                    raise CardTemplateError(f"{path.name}, section {section.key!r}: {error}: {piece!r}") from error
        return cls(path, sections)

    @classmethod
    def beside(cls, module_file: str) -> CardTemplate:
        """The template of the kind whose module is ``module_file`` (``card_template.md`` beside it)."""
        return cls.read(Path(module_file).resolve().parent / CARD_TEMPLATE_FILE)

    def section(self, name: str, values: dict[str, Any] | None = None, *, key: str | None = None,
                tables: list[CardTable] | None = None, images: list[CardImage] | None = None,
                bullets_after: list[str] | None = None) -> CardSection:
        """The section ``name`` filled with ``values`` (``key`` overrides its key: two
        templates may render one section), with ``tables`` and ``images`` from code and
        ``bullets_after`` (already written) after its own bullets."""
        template = self.sections.get(name)
        if template is None:
            raise CardTemplateError(f"{self.path.name}: no section {name!r}")
        values = values or {}

        def fill(piece: str) -> str:
            try:
                return piece.format(**values)
            except (KeyError, AttributeError, IndexError) as error:
                raise CardTemplateError(f"{self.path.name}, section {name!r}: no value for {error}") from error

        return CardSection(key=key or template.key, title=fill(template.title),
                           paragraphs=[text for text in map(fill, template.paragraphs) if text],
                           bullets=[*[text for text in map(fill, template.bullets) if text], *(bullets_after or [])],
                           tables=list(tables or []), images=list(images or []))
