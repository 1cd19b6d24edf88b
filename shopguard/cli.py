"""``shopguard``: one CLI composed from each package's own commands.

Errors a user can fix (``ShopGuardError``: bad data, a missing model, a refused promotion)
are reported here, once, as one line without a traceback, and exit with status 2.
"""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from batch.cli import batch_app
from features.errors import ShopGuardError
from model_registry.cli import PAIRED_GATE, models_app
from policy.cli import enforcement_app
from serving.cli import audit_app, bento_app, export_feedback_command, serve, tokens_app
from training.cli import (
    compare_command,
    data_app,
    enforcement_rooms_command,
    evaluate_command,
    train_app,
)
from training.compare import paired_shortfall

USER_ERROR_EXIT = 2


class ShopGuardGroup(TyperGroup):
    """The root command group: turns a ``ShopGuardError`` from any subcommand into a clean
    ``error: ...`` message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShopGuardError as exc:
            click.echo(click.style("error: ", fg="red", bold=True) + str(exc), err=True)
            raise SystemExit(USER_ERROR_EXIT) from None


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
