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

from common.errors import ShopGuardError
from kinds import MODEL_KINDS, ModelKind, is_training_module, plugin_kinds
from kinds.answers import KindAnswers
from shopguard.kind_checks import imported_modules  # the contract suite's reader, shared
from training.kind_training import KindTraining, training_half

REPO = Path(__file__).resolve().parents[3]
KINDS = [*MODEL_KINDS.values(), *plugin_kinds("tests.fourth_kind.kind:REVIEW_SPAM")]
RUNTIME_CONTRACT = ("from_bundle", "save", "score", "score_groups", "score_catalogue", "missing_api_fields")
# Code every kind goes through: it may loop over kinds and call their parts, never branch on one.
SHARED = ["serving", "batch", "shopguard", "kinds/answers.py", "registry/store.py",
          "registry/bundle.py", "registry/card_standards.py", "registry/cli.py",
          "registry/release.py", "training/cli.py", "training/compare.py", "training/evaluate.py",
          "training/kind_training.py"]
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


def serving_side_files(package: str) -> list[Path]:
    """A package's modules, less a kind folder's training half (``kinds/<kind>/training.py`` ...)."""
    return [p for p in (REPO / package).rglob("*.py")
            if not is_training_module(".".join(p.relative_to(REPO).with_suffix("").parts))]


@pytest.mark.parametrize("package", ["common", "features", "policy", "database", "registry", "kinds", "serving",
                                     "batch"])
def test_serving_and_the_layers_below_never_import_training(package: str) -> None:
    """Training code is the ``training`` package and each kind folder's training half."""
    offenders = [str(p.relative_to(REPO)) for p in serving_side_files(package)
                 if any(is_training_module(m) for m in imported_modules(p))]
    assert offenders == []


def test_a_kind_folders_training_half_counts_as_training() -> None:
    assert is_training_module("training.cli") and is_training_module("kinds.listing_quality.training")
    assert is_training_module("kinds.false_marketing.generator") and is_training_module("kinds.merchant_risk.card")
    assert not is_training_module("kinds.false_marketing.runtime") and not is_training_module("kinds.answers")
    assert REPO / "kinds/listing_quality/pipeline.py" not in serving_side_files("kinds")


def test_the_service_loads_no_training_module(tmp_path: Path) -> None:
    """Names in data count too: importing the service (and so the kinds table) imports no
    ``training`` module, whatever the table names."""
    probe = ("import sys, serving.service; from kinds import is_training_module; "
             "print(sorted(m for m in sys.modules if is_training_module(m)))")
    env = {"SHOPGUARD_HOME": str(tmp_path / "home"), "BENTOML_HOME": str(tmp_path / "bentoml"), "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
