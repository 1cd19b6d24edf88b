"""``shopguard serve``: start the BentoML service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from model_registry.settings import load_settings


def serve(
    port: int = typer.Option(3000, help="HTTP port"),
    host: str = typer.Option("127.0.0.1", help="interface to bind; 0.0.0.0 for all"),
) -> None:
    """Serve the scoring API (``bentoml serve serving.service:ShopGuard``)."""
    settings = load_settings()
    env = {**os.environ, "SHOPGUARD_HOME": str(settings.home)}
    env.setdefault("BENTOML_HOME", str(settings.bentoml_home))
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:ShopGuard",
               "--port", str(port), "--host", host, "--working-dir", str(root)]
    raise typer.Exit(subprocess.call(command, env=env))
