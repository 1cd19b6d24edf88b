"""A Bento installs ``deploy/requirements-serving.txt`` and nothing else: every third-party
module the packed code imports (at module level or inside a function, as serving runs both)
must come from a package that file lists itself (pinned, not left to another package's
requirements), and every first-party import must be of a packed module."""

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
# imported lazily by code the service never runs (a whole file's graph features, for batch scoring)
BATCH_ONLY = {"kinds.merchant_risk.graph_scale"}


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


def _listed() -> set[str]:
    lines = (REPO / "deploy" / "requirements-serving.txt").read_text(encoding="utf-8").splitlines()
    return {re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
            for line in lines if line.strip() and not line.startswith("#")}


def _imports() -> list[tuple[str, Path]]:
    return [(module, path) for path in _packed_files() for module in sorted(_imported_modules(path))]


def test_every_third_party_module_the_bento_imports_is_listed_in_its_requirements() -> None:
    listed, providers = _listed(), metadata.packages_distributions()
    missing = {}
    for module, path in _imports():
        if module in FIRST_PARTY or module in sys.stdlib_module_names:
            continue
        distributions = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not distributions & listed:
            missing.setdefault(module, f"{path.relative_to(REPO)} ({', '.join(sorted(distributions)) or 'not installed'})")
    assert not missing, f"modules the Bento imports that its requirements do not list: {missing}"


def test_first_party_imports_of_the_bento_are_packed() -> None:
    packed = {p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".") for p in _packed_files()}
    packed |= {name.removesuffix(".__init__") for name in packed}
    unpacked = {}
    for path in _packed_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                if name.split(".")[0] in FIRST_PARTY and name not in packed and name not in BATCH_ONLY:
                    unpacked.setdefault(name, str(path.relative_to(REPO)))
    assert not unpacked, f"the Bento's code imports modules it does not pack: {unpacked}"
