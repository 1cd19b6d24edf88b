"""``shopguard``: one CLI composed from each package's own commands."""

from __future__ import annotations

import typer

from model_registry.cli import models_app
from serving.cli import audit_app, export_feedback_command, serve
from training.cli import compare_command, data_app, evaluate_command, train_app

app = typer.Typer(help="ShopGuard: moderation models for livestream e-commerce.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
data_app.command("export-feedback")(export_feedback_command)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
models_app.command("compare")(compare_command)
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.command("serve")(serve)
app.command("evaluate")(evaluate_command)


def main() -> None:
    """Entry point of the ``shopguard`` script."""
    app()


if __name__ == "__main__":
    main()
