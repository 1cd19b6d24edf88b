"""The kinds table as a contract (as scikit-learn's estimator checks prove theirs for every
estimator): every kind, a plug-in's too, offers what shared code calls, and shared code never
asks which kind it holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from features.errors import ShopGuardError
from model_registry.answers import KindAnswers
from model_registry.kinds import MODEL_KINDS, ModelKind, plugin_kinds
from shopguard.kind_checks import imported_modules  # the contract suite's reader, shared
from training.kinds import KindTraining, training_half

REPO = Path(__file__).resolve().parents[3]
KINDS = [*MODEL_KINDS.values(), *plugin_kinds("tests.fourth_kind.kind:REVIEW_SPAM")]
RUNTIME_CONTRACT = ("from_bundle", "save", "score", "score_groups", "score_catalogue", "missing_api_fields")
# Code every kind goes through: it may loop over kinds and call their parts, never branch on one.
SHARED = ["serving", "batch", "shopguard", "model_registry/answers/__init__.py", "model_registry/registry.py",
          "model_registry/bundle.py", "model_registry/card_standards.py", "model_registry/cli.py",
          "model_registry/release.py", "training/cli.py", "training/compare.py", "training/evaluate.py",
          "training/kinds/__init__.py"]
WHICH_KIND = re.compile(r"\bkind(\.name)? (is|==|!=) |\bis (not )?(LISTING_QUALITY|FALSE_MARKETING|MERCHANT_RISK)\b"
                        r"|(==|!=) ?[\"'](listing-quality|false-marketing|merchant-risk|listing|merchant|stream)[\"']"
                        r"|\b(entity_type|model_name|name)[\"']?\]? (==|!=) ?[\"']"
                        r"|(FALSE_MARKETING|LISTING_QUALITY|MERCHANT_RISK)\.(entity_type|name)\b")


def shared_files() -> list[Path]:
    return sorted(p for part in SHARED for p in ([REPO / part] if part.endswith(".py")
                                                 else (REPO / part).rglob("*.py")))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_kind_offers_what_shared_code_calls(kind: ModelKind) -> None:
    assert issubclass(kind.record, BaseModel) and issubclass(kind.result, BaseModel)
    assert isinstance(kind.answers, KindAnswers)
    assert kind.route.startswith("/v1/") and kind.route.endswith("/score")
    runtime = kind.runtime_class()
    assert [part for part in RUNTIME_CONTRACT if not callable(getattr(runtime, part, None))] == []
    half = training_half(kind)
    assert isinstance(half, KindTraining) and callable(half.train) and callable(half.score_file)
    grouped = kind.answers.group_column
    assert grouped is None or grouped in kind.answers.request_fields


@pytest.mark.parametrize("spec", ["no.such.module:KIND", "tests.fourth_kind.kind:NOTHING", "tests.fourth_kind.kind:ReviewRecord"])
def test_a_plugin_that_is_not_a_kind_is_refused_naming_it(spec: str) -> None:
    with pytest.raises(ShopGuardError, match=spec.split(":")[0].replace(".", r"\.")):
        plugin_kinds(spec)


def test_kinds_do_not_share_names_entity_types_or_routes() -> None:
    for part in ("name", "entity_type", "route"):
        values = [getattr(k, part) for k in KINDS]
        assert len(set(values)) == len(values), part


def test_shared_code_never_asks_which_kind_it_holds() -> None:
    offenders = [f"{p.relative_to(REPO)}:{n}: {line.strip()}" for p in shared_files()
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if WHICH_KIND.search(line)]
    assert offenders == []


def test_the_grep_finds_a_kind_test() -> None:
    assert WHICH_KIND.search("    if kind is FALSE_MARKETING:") and WHICH_KIND.search('if name == "merchant-risk":')
    assert WHICH_KIND.search('if row["entity_type"] == "merchant"') and WHICH_KIND.search("x == MERCHANT_RISK.entity_type")
    assert not WHICH_KIND.search("for kind in kinds:") and not WHICH_KIND.search("table.c.name == name")


@pytest.mark.parametrize("package", ["features", "model_registry", "serving", "batch"])
def test_serving_and_the_layers_below_never_import_training(package: str) -> None:
    offenders = [str(p.relative_to(REPO)) for p in (REPO / package).rglob("*.py")
                 if any(m == "training" or m.startswith("training.") for m in imported_modules(p))]
    assert offenders == []


def test_the_service_loads_no_training_module(tmp_path: Path) -> None:
    """Names in data count too: importing the service (and so the kinds table) imports no
    ``training`` module, whatever the table names."""
    probe = ("import sys, serving.service; "
             "print(sorted(m for m in sys.modules if m == 'training' or m.startswith('training.')))")
    env = {"SHOPGUARD_HOME": str(tmp_path / "home"), "BENTOML_HOME": str(tmp_path / "bentoml"), "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
