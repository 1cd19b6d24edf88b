"""``shopguard``: one CLI composed from each package's own commands.

Errors a user can fix are reported here, once, as one ``error: ...`` line on stderr without
a traceback: a ``ShopGuardError`` (bad data, a missing model, a refused promotion) and a file
the system cannot open exit with status 2, as do Click's usage errors (a missing file named
on the command line, an unknown option), which otherwise print a framed block.
Results go to stdout, logs and progress to stderr (``common/terminal.py``).
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from batch.cli import batch_app
from common.errors import ShopGuardError
from common.terminal import configure_logging
from policy.cli import enforcement_app
from registry.cli import PAIRED_GATE, models_app
from serving.cli import audit_app, bento_app, export_feedback_command, serve, tokens_app
from shopguard.clicklib import (
    BadParameter,
    ClickException,
    Context,
    MissingParameter,
    NoArgsIsHelpError,
    UsageError,
)
from shopguard.help_text import plain_flags, tidy_help
from training.cli import (
    compare_command,
    data_app,
    enforcement_rooms_command,
    evaluate_command,
    train_app,
)

USER_ERROR_EXIT = 2


def paired_shortfall(*args: Any, **kwargs: Any) -> Any:
    """``training.compare.paired_shortfall``, imported only when a promotion runs the gate
    (it pulls in scikit-learn and SciPy: 1.3 s on every command otherwise)."""
    from training.compare import paired_shortfall as gate

    return gate(*args, **kwargs)


def fail(message: str, status: int = USER_ERROR_EXIT) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``status``."""
    line = " ".join(message.split())
    typer.echo(typer.style("error: ", fg="red", bold=True) + line, err=True)
    raise SystemExit(status)


def usage_message(exc: ClickException) -> str:
    """A Click error as one sentence; usage mistakes point at the command's ``--help``."""
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    bad_value = isinstance(exc, BadParameter) and not isinstance(exc, MissingParameter)
    if isinstance(exc, UsageError) and not bad_value and ctx is not None:
        end = "" if message.endswith((".", "?", "!")) else "."
        message += f"{end} See '{ctx.command_path} --help'."
    return message


class ShopGuardGroup(TyperGroup):
    """The root command group: plain help for every command, logging set up for each run,
    and the user's errors from any subcommand as one ``error: ...`` line."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        tidy_help(self)

    def get_params(self, ctx: Context) -> list[Any]:
        """The root's options, Typer's completion options (added after ``__init__``) included,
        shown without a type beside a flag."""
        return plain_flags(super().get_params(ctx))

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        """The root's own options parsed; a mistake in them is one line too."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except ClickException as exc:
            fail(usage_message(exc), exc.exit_code)

    def invoke(self, ctx: Context) -> Any:
        configure_logging()
        try:
            return super().invoke(ctx)
        except ShopGuardError as exc:
            fail(str(exc))
        except NoArgsIsHelpError:
            raise
        except ClickException as exc:
            fail(usage_message(exc), exc.exit_code)
        except OSError as exc:
            if exc.filename is None:
                raise
            fail(f"{exc.filename}: {exc.strerror or exc}")
        except OperationalError as exc:  # a database busy (locked by another process) or gone mid-command
            fail(f"the database could not be used ({exc.orig}): the step that needed it was not done; retry when "
                 "the database is free")


# The promotion gate of ``models promote --data`` is training's paired comparison, handed to
# the registry's command through the context object (the registry package never imports training).
app = typer.Typer(cls=ShopGuardGroup, help="ShopGuard: moderation models for livestream e-commerce.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False,
                  context_settings={"obj": {PAIRED_GATE: paired_shortfall}})
data_app.command("export-feedback")(export_feedback_command)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
models_app.command("compare")(compare_command)
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")
app.add_typer(batch_app, name="batch")
enforcement_app.command("rooms")(enforcement_rooms_command)
app.add_typer(enforcement_app, name="enforcement")
app.add_typer(bento_app, name="bento")
app.command("serve")(serve)
app.command("evaluate")(evaluate_command)


def main() -> None:
    """Entry point of the ``shopguard`` script."""
    app()


if __name__ == "__main__":
    main()
