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


def training_file(path: Path, rows: int, role: str | None = None) -> TrainingFile:
    """sha256 and row count of an input file (and how training used it)."""
    exported = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    return TrainingFile(path=str(path), sha256=sha256_file(path), rows=rows, exported_at=exported, role=role)


def git_commit() -> str | None:
    """The current git commit of the working directory, with ``-dirty`` if it has changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
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
