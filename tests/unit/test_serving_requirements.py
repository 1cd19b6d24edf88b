"""A Bento installs ``deploy/requirements-serving.txt`` and nothing else: every third-party
module the packed code imports (at module level or inside a function, as serving runs both)
must come from a package that file lists or that one of them requires."""

from __future__ import annotations

import ast
import re
import sys
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"common", "features", "policy", "database", "registry", "kinds", "serving", "training", "batch",
               "shopguard", "benchmarks", "tests"}


def _packed_files() -> list[Path]:
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text(encoding="utf-8"))
    included = [REPO.glob(pattern) for pattern in bentofile["include"] if pattern.endswith(".py")]
    files = {p for found in included for p in found}
    excluded = [pattern for pattern in bentofile["exclude"] if pattern.endswith(".py")]
    return sorted(p for p in files if not any(fnmatch(str(p.relative_to(REPO)), e) for e in excluded))


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _closure(names: set[str]) -> set[str]:
    """The distributions ``names`` install, with everything they require (any extra left out)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[ ;<>=!\[~(]", r, maxsplit=1)[0].lower().replace("_", "-")
                 for r in requires if "extra ==" not in r]
    return seen


def test_every_module_the_bento_imports_is_installed_by_its_requirements() -> None:
    listed = {line.split("==")[0].strip().lower().replace("_", "-")
              for line in (REPO / "deploy" / "requirements-serving.txt").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")}
    installed = _closure(listed)
    providers = metadata.packages_distributions()
    missing = {}
    for path in _packed_files():
        for module in _imported_modules(path) - FIRST_PARTY - set(sys.stdlib_module_names):
            distributions = {d.lower().replace("_", "-") for d in providers.get(module, [])}
            if distributions and not distributions & installed:
                missing.setdefault(module, str(path.relative_to(REPO)))
    assert not missing, f"modules the Bento imports but its requirements do not install: {missing}"
