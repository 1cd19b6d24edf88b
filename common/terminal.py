"""Output for the CLIs that composes: results on stdout, logs and progress on stderr.

Rich cuts a table to 80 columns when output is not a terminal (a pipe, a file, CI), turning
every number into ``0.90…``, and pads every line to the console's width. A ``terminal_console``
is the terminal's width on a TTY; elsewhere tables take their natural width, their titles and
captions start at the left edge (not centred over a table hundreds of columns wide) and no
line ends in padding. User-supplied text (reasons, names, notes) goes through ``plain`` so that Rich's
markup parser never eats brackets such as ``[forced past the PR-AUC guard: ...]``.

``configure_logging`` sends every log record (ours, the libraries', Python's warnings) to
stderr as one ``warning: ...`` line, each message once per command, without ANSI codes
outside a terminal.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table

NOT_A_TERMINAL_WIDTH = 10_000
_LINE_PADDING = re.compile(r"[ \t]+(?=\n)")
_ANSI_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class TerminalConsole(Console):
    """A Rich console that asks at each write whether its stream is a terminal: if so, it is
    the terminal's width; if not, it is wide enough that nothing is cut, and the lines it
    writes end without padding."""

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size, or ``NOT_A_TERMINAL_WIDTH`` columns outside a terminal."""
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(NOT_A_TERMINAL_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Rich's ``print``; outside a terminal, a table's title and caption left-aligned."""
        if not self.is_terminal:
            objects = tuple(_left_aligned(o) if isinstance(o, Table) else o for o in objects)
        super().print(*objects, **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        text = super()._render_buffer(buffer)
        return text if self.is_terminal else _LINE_PADDING.sub("", text)


def _left_aligned(table: Table) -> Table:
    """A shallow copy of ``table`` with its title and caption left-aligned (the caller's table
    is left as it was: it may be printed again to a terminal)."""
    aligned = copy.copy(table)
    aligned.title_justify = aligned.caption_justify = "left"
    return aligned


def terminal_console(stderr: bool = False) -> TerminalConsole:
    """A console on stdout (results) or stderr (logs, progress): see ``TerminalConsole``."""
    return TerminalConsole(stderr=stderr, log_path=False)


def plain(value: Any) -> str:
    """``value`` as text Rich prints verbatim (markup escaped; None as empty)."""
    return "" if value is None else escape(str(value))


def without_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves)."""
    return _ANSI_CODE.sub("", text)


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never break the command
            self.handleError(record)


class _Once(logging.Filter):
    """Lets each (level, message) through once; plain text outside a terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "py.warnings":
            message = _warning_text(message)
        if not sys.stderr.isatty():
            message = without_ansi(message)
        key = (record.levelno, message)
        if key in self.seen:
            return False
        self.seen.add(key)
        record.msg, record.args = message, None
        return True


def _warning_text(formatted: str) -> str:
    """``path:line: Category: message`` (and the source line) as ``message``."""
    first = formatted.strip().splitlines()[0] if formatted.strip() else formatted
    return re.sub(r"^.*?:\d+: \w+: ", "", first)


class _Lowercase(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def configure_logging() -> None:
    """Log records of every library to stderr through one handler, each message once per
    call, never with ANSI codes outside a terminal; Python warnings become log records;
    Hugging Face progress bars stay off (the CLI shows its own progress)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.addFilter(_Once())
    handler.setFormatter(_Lowercase("%(message)s"))
    root.addHandler(handler)
    logging.captureWarnings(True)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
