"""Help as a reader of ``--help`` expects it, whatever the docstrings were written for.

The commands' docstrings are also the packages' reference (reST: ``literal``, :role:`name`);
Click shows them verbatim, so their markup is turned into the CLI's own plain style
(`literal`), and their lines into paragraphs the help panel wraps to the terminal (a command
list would otherwise break lines where the source did). Typer writes a required argument as
``{name}`` in usage lines and errors; here it is ``NAME`` (``[NAME]`` when optional), as
Click and POSIX usage write it. A flag (``--force``, ``--help``) takes no value, so its help
shows no type (Typer writes ``<bool>`` beside it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from typer.core import TyperArgument, TyperOption

from shopguard.clicklib import Command, Context

_REST_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_REST_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_HYPHEN_BREAK = re.compile(r"(?<=\w-)\n[ \t]*(?=\w)")
_LINE_BREAK = re.compile(r"[ \t]*(?<!\n)\n(?!\n)[ \t]*")


def plain_help(text: str | None) -> str | None:
    """``text`` with reST inline markup written as plain `code`, and each paragraph on one line."""
    if not text:
        return text
    text = _REST_ROLE.sub(r"`\1`", _REST_LITERAL.sub(r"`\1`", text))
    return _LINE_BREAK.sub(" ", _HYPHEN_BREAK.sub("", text))


class UsageArgument(TyperArgument):
    """A Typer argument shown in usage lines as ``NAME`` (required) or ``[NAME]``."""

    def get_usage_pieces(self, ctx: Context) -> list[str]:
        """The argument's piece of the usage line."""
        name = self.usage_name
        name = name if self.required else f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]

    def get_error_hint(self, *_: Any) -> str:
        """How errors name the argument: ``'NAME'`` (Typer's Click passes no context)."""
        return f"'{self.usage_name}'"

    @property
    def usage_name(self) -> str:
        """``NAME``: the metavar or the parameter's name in capitals."""
        return (self.metavar or self.name or "").upper()


class FlagOption(TyperOption):
    """A Typer option whose help shows no type when it is a flag: ``--force``, not ``--force <bool>``."""

    def display_type_rich(self, ctx: Context) -> str | None:
        """The type shown in help: none for a flag."""
        return None if self.is_flag and not self.count else super().display_type_rich(ctx)


def commands_of(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    """``command`` and every command under it, with the words that invoke each."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands_of(sub, (*path, name))


def tidy_help(root: Command) -> None:
    """Plain help text and usage lines for ``root`` and every command under it."""
    for _, command in commands_of(root):
        command.help = plain_help(command.help)
        command.short_help = plain_help(command.short_help)
        for param in command.params:
            if hasattr(param, "help"):
                param.help = plain_help(param.help)
            if isinstance(param, TyperArgument) and not isinstance(param, UsageArgument):
                param.__class__ = UsageArgument
        help_option = command.get_help_option(Context(command)) if getattr(command, "add_help_option", False) else None
        plain_flags([*command.params, help_option])


def plain_flags(params: list[Any]) -> list[Any]:
    """``params`` with each Typer option shown as a ``FlagOption`` (no type beside a flag)."""
    for param in params:
        if isinstance(param, TyperOption) and not isinstance(param, FlagOption):
            param.__class__ = FlagOption
    return params
