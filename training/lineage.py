"""Lineage facts recorded in every manifest: file hashes, git commit, library versions."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from registry.bundle import TrainingFile, sha256_file

TRACKED_LIBRARIES = (
    "shopguard", "lightgbm", "scikit-learn", "numpy", "pandas", "torch", "transformers",
    "tokenizers", "onnx", "onnxruntime", "bentoml", "opencc",
)


SOURCE_TREE = Path(__file__).resolve().parents[1]  # the ShopGuard checkout this code runs from


def training_file(path: Path, rows: int, role: str | None = None) -> TrainingFile:
    """sha256 and row count of an input file (and how training used it), by its absolute path."""
    exported = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    return TrainingFile(path=str(path.resolve()), sha256=sha256_file(path), rows=rows, exported_at=exported,
                        role=role)


def git_commit() -> str | None:
    """The git commit of the ShopGuard source that trains, with ``-dirty`` if it has changes
    (not the current folder's: an analyst runs training from their own data folder)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=SOURCE_TREE,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=SOURCE_TREE,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model depends on."""
    versions = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
