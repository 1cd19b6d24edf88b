"""Rich output for the CLIs that tells the truth outside a terminal too.

Rich cuts a table to 80 columns when output is not a terminal (a pipe, a file, CI), turning
every number into ``0.90…``; ``terminal_console`` lets tables take their natural width
there. User-supplied text (reasons, names, notes) goes through ``plain`` so that Rich's
markup parser never eats brackets such as ``[forced past the PR-AUC guard: ...]``.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

NOT_A_TERMINAL_WIDTH = 10_000


def terminal_console(stderr: bool = False) -> Console:
    """A console: the terminal's width on a TTY, else wide enough that nothing is cut."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else NOT_A_TERMINAL_WIDTH)


def plain(value: Any) -> str:
    """``value`` as text Rich prints verbatim (markup escaped; None as empty)."""
    return "" if value is None else escape(str(value))
