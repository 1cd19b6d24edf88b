"""The training half of each model kind: its ``train`` command, its file scorer (``models
compare``) and its checks (``evaluate``), named by the kind's line in the kinds table
(``ModelKind.training``). Only ``training`` and the CLI resolve it: ``serving`` never
imports this package.

A kind's training half is a ``KindTraining``: ``train`` is a Typer command (its own options:
links for merchants, real rooms for streams ...) registered as ``shopguard train <kind>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from common.errors import ShopGuardError
from kinds import MODEL_KINDS, ModelKind, import_path

if TYPE_CHECKING:
    from registry.metrics import RealWorldChecks
    from registry.store import LoadedBundle
    from training.classification_metrics import BinaryMetrics
    from training.compare import ScoredFile

    Metrics = dict[str, dict[str, BinaryMetrics]]


@dataclass(frozen=True)
class KindTraining:
    """What ``shopguard train``, ``models compare`` and ``evaluate`` do for one kind.

    - ``train``: the Typer command that trains, evaluates and registers a candidate;
    - ``score_file``: ``(bundle, data, **options) -> ScoredFile``, a labelled file scored by
      one version (options: ``links``, ``binary_category``, ``explain``);
    - ``evaluate_file``: ``(bundle, path, binary_category, group_column) -> (checks,
      metrics)``, the decision checks on any file; None: ``evaluate`` does not support it;
    - ``evaluate_real_world``: ``(bundle) -> checks`` on ``../shared/data``; None: none;
    - ``row_keys``: ``(data, **options) -> keys``, each row's identity in a file, as its
      training run recorded its rows (``training/row_identity.py``); None: the kind records
      no training rows and the promotion gate checks whole files only.
    """

    train: Callable[..., None]
    score_file: Callable[..., ScoredFile]
    evaluate_file: Callable[[LoadedBundle, Path, str | None, str], tuple[RealWorldChecks, Metrics]] | None = None
    evaluate_real_world: Callable[[LoadedBundle], RealWorldChecks] | None = None
    row_keys: Callable[..., list[str]] | None = None


def training_half(kind: ModelKind) -> KindTraining:
    """The kind's training half (``ModelKind.training``)."""
    half = import_path(kind.training)
    if not isinstance(half, KindTraining):
        raise ShopGuardError(f"{kind.name}: {kind.training} is a {type(half).__name__}, not a KindTraining.")
    return half


def training_of(name: str) -> KindTraining:
    """The training half of a model name's kind."""
    from kinds import model_kind

    return training_half(model_kind(name))


def add_train_commands(app: typer.Typer, **options: Any) -> None:
    """``shopguard train <kind>`` for every kind of the table."""
    for kind in MODEL_KINDS.values():
        app.command(kind.name, **options)(training_half(kind).train)
