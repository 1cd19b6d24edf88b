"""The Click that Typer runs on: its vendored copy (recent Typer) or the ``click`` package.

Exceptions and classes must come from the same Click as Typer's commands, or ``except``
clauses and ``isinstance`` checks silently miss them."""

from __future__ import annotations

try:
    from typer._click.core import Command, Context
    from typer._click.exceptions import (
        BadParameter,
        ClickException,
        MissingParameter,
        NoArgsIsHelpError,
        UsageError,
    )
except ImportError:  # a Typer that still depends on the click package
    from click.core import Command, Context  # type: ignore[assignment]
    from click.exceptions import (  # type: ignore[assignment]
        BadParameter,
        ClickException,
        MissingParameter,
        NoArgsIsHelpError,
        UsageError,
    )

__all__ = ["BadParameter", "ClickException", "Command", "Context", "MissingParameter", "NoArgsIsHelpError", "UsageError"]
