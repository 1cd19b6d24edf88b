"""The analyst notebooks run headless (nbclient) on small data against a real registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from registry.store import ModelRegistry
from tests.conftest import REPO, point_at_home

pytestmark = pytest.mark.integration  # the shared trained home


def run_notebook(name: str, parameters: dict[str, object]) -> nbformat.NotebookNode:
    """Execute ``notebooks/name`` with its ``parameters`` cell replaced, as papermill would."""
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO)}}).execute()
    return notebook


def _home_copy(trained_home: Path, tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    return point_at_home(monkeypatch, home)


def test_threshold_notebook_registers_new_thresholds_through_the_registry(trained_home, listing_file,
                                                                          tmp_path, monkeypatch) -> None:
    _home_copy(trained_home, tmp_path, monkeypatch)
    validation = tmp_path / "validation.parquet"
    pd.read_parquet(listing_file).sample(2000, random_state=5).to_parquet(validation)
    before = ModelRegistry().load("listing-quality:production")
    notebook = run_notebook("threshold_selection.ipynb", {
        "MODEL": "listing-quality:production", "DATA": str(validation), "PRECISION_TARGET": 0.9,
        "RECALL_TARGET": 0.8, "REVIEW_BUDGET": 0.05, "APPLY": True, "REASON": "notebook test"})
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    # rows sampled from the training file: the analyst is told the thresholds would be chosen on them
    assert f"WARNING: {before.tag} was trained on" in printed
    registry = ModelRegistry()
    candidate = registry.load("listing-quality:candidate")
    assert candidate.manifest.version != before.manifest.version
    assert candidate.manifest.thresholds != before.manifest.thresholds
    change = candidate.manifest.metrics.details["threshold_change"]
    assert change["derived_from"] == before.tag and change["evidence"]["rows"] == 2000
    assert change["evidence"]["review_budget"] == 0.05
    for name in ("model.lgb.txt", "feature_state.json"):
        assert candidate.manifest.files[name] == before.manifest.files[name]  # same model files
    card = registry.card("listing-quality:candidate", "md")
    assert f"# Model card: {candidate.tag}" in card  # its own name, not its parent's
    assert card.index("## Threshold change") < card.index("## Model Details")  # first: what this version serves
    registered = [e for e in registry.history("listing-quality") if e.action == "register"][-1]
    assert registered.reason == f"thresholds changed from {before.tag}: notebook test"


def test_error_notebook_lists_real_false_positives_and_negatives(trained_home, listing_file, tmp_path,
                                                                 monkeypatch) -> None:
    _home_copy(trained_home, tmp_path, monkeypatch)
    data = tmp_path / "sample.parquet"
    pd.read_parquet(listing_file).sample(1500, random_state=6).to_parquet(data)
    export = tmp_path / "errors"
    run_notebook("error_analysis.ipynb", {"MODEL": "listing-quality:production", "DATA": str(data),
                                          "TOP": 5, "TARGET": 0, "EXPORT": str(export)})
    review = ModelRegistry().load("listing-quality:production").manifest.thresholds["default"].review
    false_positives = pd.read_csv(export / "false_positives.csv")
    false_negatives = pd.read_csv(export / "false_negatives.csv")
    assert len(false_positives) == 5 and len(false_negatives) >= 1
    assert (false_positives.label == 0).all() and (false_positives.score >= review).all()
    assert (false_negatives.label == 1).all() and (false_negatives.score < review).all()
    assert false_positives.score.is_monotonic_decreasing
    assert false_positives.reasons.str.len().gt(0).all()
