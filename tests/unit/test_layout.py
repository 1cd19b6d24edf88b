"""The direction of imports between ShopGuard's packages, read from the source (every
``import``, at the top of a module or inside a function): each package imports only the
packages below it, so that the layout the README draws is the one the code has."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kinds import is_training_module

REPO = Path(__file__).resolve().parents[2]
# Lowest first; a package may import its own modules and those of the levels before its own.
LEVELS: list[tuple[str, ...]] = [
    ("common",),  # errors, decisions, settings: shared by every layer
    ("features",),
    ("database",),
    ("policy",),
    ("registry",),
    ("kinds",),
    ("training", "serving", "batch"),  # side by side: none imports another
    ("shopguard",),
]
LEVEL = {package: i for i, level in enumerate(LEVELS) for package in level}
# A package's own `cli.py` is a command of the one CLI (shopguard composes it): it may read the
# kinds table to name the models, as the CLI does.
CLI_MAY_IMPORT = {"kinds"}


def modules_of(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def ours_imported(path: Path) -> set[str]:
    """The ShopGuard modules ``path`` imports (absolute imports; ours have no relative ones)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] in LEVEL}


def layer(module: str) -> str:
    """The package whose level ``module`` sits at: a kind folder's training half
    (``kinds/<kind>/training.py``, ``pipeline.py``, ``card.py``, ``generator.py``) is training."""
    return "training" if is_training_module(module) else module.split(".")[0]


def wrong_way(path: Path, root: Path = REPO) -> list[str]:
    """The imports of ``path`` (a module under ``root``) that point up or sideways."""
    package = layer(".".join(path.relative_to(root).with_suffix("").parts))
    allowed_up = CLI_MAY_IMPORT if path.name == "cli.py" else set()
    bad = []
    for name in sorted(ours_imported(path)):
        target = layer(name)
        if target != package and LEVEL[target] >= LEVEL[package] and target not in allowed_up:
            bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


@pytest.mark.parametrize("package", list(LEVEL))
def test_imports_point_down(package: str) -> None:
    assert [line for path in modules_of(package) for line in wrong_way(path)] == []


def test_common_imports_nothing_of_ours() -> None:
    outside = {p.name: sorted(n for n in ours_imported(p) if not n.startswith("common")) for p in modules_of("common")}
    assert {name: found for name, found in outside.items() if found} == {}


def test_a_kind_folders_serving_half_imports_no_training_and_no_serving() -> None:
    """A kind's record, features, runtime and answers are what the service loads: they import
    neither training code (the ``training`` package, any kind's training half) nor serving."""
    offenders = [f"{module_name(p)} imports {name}" for p in modules_of("kinds")
                 if not is_training_module(module_name(p))
                 for name in ours_imported(p)
                 if is_training_module(name) or name.split(".")[0] in ("serving", "batch", "shopguard")]
    assert offenders == []


def test_a_kind_folders_training_half_never_imports_serving() -> None:
    offenders = [f"{module_name(p)} imports {name}" for p in modules_of("kinds") if is_training_module(module_name(p))
                 for name in ours_imported(p) if name.split(".")[0] in ("serving", "batch", "shopguard")]
    assert offenders == []


def test_every_built_in_kind_is_one_folder() -> None:
    from kinds import MODEL_KINDS

    for kind in MODEL_KINDS.values():
        folder = REPO / "kinds" / kind.name.replace("-", "_")
        parts = [kind.record, kind.result, type(kind.answers)]
        assert {c.__module__.rsplit(".", 1)[0] for c in parts} == {f"kinds.{folder.name}"}, kind.name
        assert kind.runtime_path.startswith(f"kinds.{folder.name}.") and kind.training.startswith(
            f"kinds.{folder.name}."), kind.name
        assert {"record.py", "runtime.py", "answers.py", "training.py"} <= {p.name for p in folder.iterdir()}


def test_the_reader_sees_a_wrong_way_import(tmp_path: Path) -> None:
    """The check can fail: an upward import inside a function is found."""
    module = tmp_path / "registry" / "probe.py"
    module.parent.mkdir()
    module.write_text("import json\n\ndef f():\n    from serving.service import ShopGuard\n", encoding="utf-8")
    assert wrong_way(module, root=tmp_path) == ["registry/probe.py imports serving.service"]


def test_importing_the_service_sets_nothing_up(tmp_path: Path) -> None:
    """Importing the service (and so every package it reads) creates no folder and sets no
    environment variable: the service sets itself up when a worker constructs it."""
    import subprocess
    import sys

    home = tmp_path / "home"
    probe = ("import os; before = dict(os.environ); import serving.service; "
             "print(sorted(k for k in os.environ if os.environ.get(k) != before.get(k)))")
    env = {"SHOPGUARD_HOME": str(home), "PATH": "/usr/bin", "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert not home.exists()
