"""The contract suite of model kinds, as scikit-learn's ``check_estimator`` is for estimators.

A plug-in author runs ``check_kind(KIND, KindData(...), workdir=tmp)`` on their kind with tiny
data: it trains the kind with its own ``train`` command in a fresh home under ``workdir``, loads
the registered bundle (hash-checked), scores through the runtime, answers through the answers
class (what the HTTP service calls), batch-scores through ``batch/jobs.py``, renders the card,
and checks every contract the shared code relies on. A failed check raises ``KindCheckError``
naming the check, what it saw and what to fix.

``kind_checks(kind)`` lists the checks (``check_kind(..., generate_only=True)`` returns them
bound to one trained kind), so a test suite can run each as its own test.

This module imports ``training`` (to train the kind): it is for authors and tests, and nothing
under ``serving``, ``batch`` or ``registry`` imports it.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from common.decisions import DECISION_RANK, Thresholds
from common.errors import ShopGuardError
from kinds import ModelKind, is_training_module
from kinds.answers import Answer, Refused, no_holds
from kinds.runtime import ModelRuntime, Scores
from policy.document import CallRules
from registry.bundle import (
    MANIFEST_FILE,
    BundleIntegrityError,
    read_verified_manifest,
    sha256_file,
)
from registry.cards import CARD_HTML, CARD_JSON, CARD_MD, ModelCard, heading, md_text
from registry.store import LoadedBundle, ModelRegistry

# Card sections every kind's card must have (keys of ``CardSection``); the standards of
# ``registry/card_standards.py`` map them to Hugging Face and Model Card Toolkit fields.
REQUIRED_CARD_SECTIONS = ("model_details", "evaluation")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".dill", ".sav")
UNKNOWN_FIELD = "shopguard_check_unknown_field"


class KindCheckError(AssertionError):
    """A kind broke a contract: ``check`` names the check, the message says what to fix."""

    def __init__(self, check: str, kind: str, problem: str, fix: str) -> None:
        super().__init__(f"[{check}] kind {kind!r}: {problem}\n  How to fix: {fix}")
        self.check, self.kind, self.problem, self.fix = check, kind, problem, fix


@dataclass(frozen=True)
class KindData:
    """Tiny data for a kind's checks.

    - ``train_args``: the arguments of the kind's ``train`` command (``shopguard train <kind>
      ARGS``), pointing at a tiny training file (seconds of training);
    - ``records``: one call's valid API records, as dicts (at least 3; ids distinct; some
      flagged and some allowed makes the threshold checks meaningful);
    - ``request``: the call's other fields, for kinds with ``answers.request_fields`` (a
      stream's ``stream_id``);
    - ``env``: environment variables for the whole check (``SHOPGUARD_DEVICE=cpu``);
    - ``tolerance``: how far a record's score may move between batchings (float rounding).
    """

    train_args: Sequence[str]
    records: Sequence[Mapping[str, Any]]
    request: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    tolerance: float = 1e-6


@dataclass
class TrainedKind:
    """A kind trained and loaded in a fresh home: what every check reads."""

    kind: ModelKind
    data: KindData
    workdir: Path
    home: Path
    registry: ModelRegistry
    bundle: LoadedBundle
    runtime: ModelRuntime
    records: list[BaseModel]

    def fail(self, check: str, problem: str, fix: str) -> KindCheckError:
        return KindCheckError(check, self.kind.name, problem, fix)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the block, restored after."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _env(data: KindData, workdir: Path) -> dict[str, str]:
    return {"SHOPGUARD_HOME": str(workdir / "home"), **data.env}


# -- checks that need no model -------------------------------------------------------------

def check_record_schema(kind: ModelKind, data: KindData) -> None:
    """The record schema accepts the given records, rejects an unknown field naming it, and
    names the field of every missing required field and of a value of the wrong type (the
    service answers 400 with ``detail[].loc``; batch jobs write the field into the rejects)."""
    name = "check_record_schema"
    if len(data.records) < 3:
        raise KindCheckError(name, kind.name, f"KindData has {len(data.records)} record(s)",
                             "give at least 3 valid records (the batching checks split them)")
    for index, record in enumerate(data.records):
        try:
            kind.record.model_validate(dict(record))
        except ValidationError as exc:
            raise KindCheckError(name, kind.name, f"record {index} of KindData is refused: {exc.errors()[0]}",
                                 "give valid API records in KindData.records") from None
    first = dict(data.records[0])
    cases = [(UNKNOWN_FIELD, {**first, UNKNOWN_FIELD: 1}, "an unknown field is accepted",
              f"set model_config = ConfigDict(extra='forbid') on {kind.record.__name__}")]
    cases += [(f, {k: v for k, v in first.items() if k != f}, f"leaving out the required field {f!r}",
               f"keep {f!r} required, and let pydantic name it")
              for f, info in kind.record.model_fields.items() if info.is_required()]
    cases += [(f, {**first, f: {"not": ["a", "valid", "value"]}}, f"a nested object as {f!r}",
               f"type {f!r} so that a nested object is refused (strict=True), naming it")
              for f in kind.record.model_fields]
    for field_name, payload, what, fix in cases:
        try:
            kind.record.model_validate(payload)
        except ValidationError as exc:
            locs = [e["loc"] for e in exc.errors()]
            if not any(loc and loc[0] == field_name for loc in locs):
                raise KindCheckError(name, kind.name, f"{what} is refused, but the errors name {locs}, not "
                                     f"{field_name!r}", fix) from None
            continue
        if field_name == UNKNOWN_FIELD or kind.record.model_fields[field_name].is_required() and field_name not in payload:
            raise KindCheckError(name, kind.name, f"{what}: {kind.record.__name__} accepts it", fix)


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports by name (``import x``, ``from x import y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def _imports_training(module: str) -> bool:
    return is_training_module(module)


def serving_modules(kind: ModelKind) -> list[str]:
    """The modules of a kind's serving half: its records, results, answers and runtime."""
    runtime_module = kind.runtime_path.partition(":")[0]
    return sorted({kind.record.__module__, kind.result.__module__, type(kind.answers).__module__, runtime_module})


def check_serving_imports_no_training(kind: ModelKind, data: KindData) -> None:
    """The kind's serving half (records, results, answers, runtime) never imports ``training``:
    not by name (read from the source), and not through what it imports (a fresh interpreter
    imports it and the service's kinds table and finds no training module loaded)."""
    name = "check_serving_imports_no_training"
    modules = serving_modules(kind)
    for module in modules:
        spec = importlib.util.find_spec(module)
        origin = Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None
        if origin is not None:
            bad = sorted(m for m in imported_modules(origin) if _imports_training(m))
            if bad:
                raise KindCheckError(name, kind.name, f"{origin} imports {bad}",
                                     "keep training code in the kind's training half (ModelKind.training, resolved "
                                     "by training and the CLI only); serving loads the runtime and answers")
    probe = ("import sys, importlib; "
             + "; ".join(f"importlib.import_module({m!r})" for m in ["kinds", *modules])
             + "; from kinds import is_training_module"
             + "; print(sorted(m for m in sys.modules if is_training_module(m)))")
    with tempfile.TemporaryDirectory(prefix="shopguard-kind-check-") as scratch:
        env = {**os.environ, "SHOPGUARD_HOME": str(Path(scratch) / "home"),
               "BENTOML_HOME": str(Path(scratch) / "bentoml"),
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        env.pop("SHOPGUARD_KINDS", None)
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    if result.returncode != 0:
        raise KindCheckError(name, kind.name, f"importing {modules} failed:\n{result.stderr[-1500:]}",
                             "make the serving half importable on its own")
    loaded = result.stdout.strip().splitlines()[-1]
    if loaded != "[]":
        raise KindCheckError(name, kind.name, f"importing {modules} loads {loaded}",
                             "find the import chain (python -X importtime) and move the training import into the "
                             "training half")


# -- training, loading -----------------------------------------------------------------------

def train_kind(kind: ModelKind, data: KindData, workdir: Path) -> TrainedKind:
    """Train the kind with its own ``train`` command in a fresh home under ``workdir``, then
    load its candidate through the registry (every file's hash checked) and its runtime."""
    import typer
    from typer.testing import CliRunner

    from training.kind_training import training_half

    name = "check_trains_and_registers"
    workdir.mkdir(parents=True, exist_ok=True)
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command(kind.name)(training_half(kind).train)
    env = _env(data, workdir)
    with environment(env):
        os.environ.setdefault("BENTOML_HOME", str(workdir / "bentoml"))
        outcome = CliRunner().invoke(app, [kind.name, *data.train_args], catch_exceptions=True)
        if outcome.exit_code != 0:
            detail = outcome.output[-2000:]
            if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
                detail += f"\n{type(outcome.exception).__name__}: {outcome.exception}"
            raise KindCheckError(name, kind.name, f"`shopguard train {kind.name} {' '.join(data.train_args)}` "
                                 f"exited {outcome.exit_code}:\n{detail}",
                                 "make the train command succeed on the tiny data (or fix KindData.train_args)")
        registry = ModelRegistry()
        try:
            bundle = registry.load(f"{kind.name}:candidate")
        except ShopGuardError as exc:
            raise KindCheckError(name, kind.name, f"no verified candidate after training: {exc}",
                                 "register the bundle with ModelRegistry.register (it marks it candidate)") from None
        runtime = kind.runtime_class().from_bundle(bundle, device="cpu")
    if runtime.tag != bundle.tag:
        raise KindCheckError(name, kind.name, f"the runtime's tag is {runtime.tag!r}, the bundle's {bundle.tag!r}",
                             "set the runtime's tag from bundle.tag in from_bundle")
    records = [kind.record.model_validate(dict(r)) for r in data.records]
    return TrainedKind(kind, data, workdir, Path(env["SHOPGUARD_HOME"]), registry, bundle, runtime, records)


def _is_pickle(path: Path) -> bool:
    """Whether a file is a pickle, or a zip (torch checkpoint) holding one."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    if path.suffix.lower() == ".npy":  # safe unless its dtype holds Python objects (stored pickled)
        try:
            np.load(path, allow_pickle=False, mmap_mode="r")
        except ValueError:
            return True
        return False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith((".pkl", "data.pkl")) for n in archive.namelist())
    return _pickle_framed(path)


def _pickle_framed(path: Path) -> bool:
    """Whether a file has a pickle's frame: the PROTO opcode (0x80) with protocol 2-5 first and
    the STOP opcode (``.``) last. Read as bytes, never unpickled."""
    with path.open("rb") as handle:
        head = handle.read(2)
        if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
            return False
        handle.seek(-1, 2)
        return handle.read(1) == b"."


def check_bundle_files(t: TrainedKind) -> None:
    """No pickle in the bundle; every file is listed in the manifest with its sha256; the
    manifest's own hash is the one the registry recorded."""
    name = "check_bundle_files"
    path, manifest = t.bundle.path, t.bundle.manifest
    pickled = sorted(p.name for p in path.iterdir() if p.is_file() and _is_pickle(p))
    if pickled:
        raise t.fail(name, f"the bundle holds pickled files {pickled}",
                     "save model files as JSON, LightGBM text, ONNX or safetensors (loading a pickle runs code)")
    if not manifest.files:
        raise t.fail(name, "the manifest lists no files", "stage the model files before ModelRegistry.register")
    for file_name, expected in manifest.files.items():
        if sha256_file(path / file_name) != expected:
            raise t.fail(name, f"{file_name!r} does not match its manifest hash", "register through ModelRegistry")
    record = t.registry.version_records.get(manifest.model_name, manifest.version)
    if record is None or record.manifest_sha256 != sha256_file(path / MANIFEST_FILE):
        raise t.fail(name, "the registry's recorded manifest hash does not match", "register through ModelRegistry")


def check_tampering_refused(t: TrainedKind) -> None:
    """A copy of the bundle with any one file altered, or an extra file, is refused on load
    naming the file; an edited manifest no longer matches the registry's recorded hash."""
    name = "check_tampering_refused"
    fix = "list every model file in the manifest (stage it before ModelRegistry.register) and load via the registry"
    with tempfile.TemporaryDirectory(prefix="shopguard-tamper-") as scratch:
        for file_name in [*t.bundle.manifest.files, "extra.bin"]:
            copy = Path(scratch) / f"copy-{len(os.listdir(scratch))}"
            shutil.copytree(t.bundle.path, copy)
            target = copy / file_name
            with target.open("ab") as handle:
                handle.write(b"\n tampered")
            try:
                read_verified_manifest(copy)
            except BundleIntegrityError as exc:
                if file_name not in str(exc):
                    raise t.fail(name, f"altering {file_name!r} is refused without naming it: {exc}", fix) from None
                continue
            raise t.fail(name, f"a bundle with {file_name!r} altered or added loads", fix)
    recorded = t.registry.version_records.get(t.bundle.manifest.model_name, t.bundle.manifest.version)
    edited = json.loads((t.bundle.path / MANIFEST_FILE).read_text(encoding="utf-8"))
    edited["thresholds"] = {k: {"block": 1.0, "review": 1.0} for k in edited["thresholds"]}
    if recorded is None or recorded.manifest_sha256 == _sha256_text(json.dumps(edited, ensure_ascii=False, indent=2)):
        raise t.fail(name, "an edited manifest would pass the registry's check", fix)


def _sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- scores ---------------------------------------------------------------------------------

def _score(t: TrainedKind, records: Sequence[BaseModel]) -> Scores:
    scored = t.runtime.score(list(records))
    if len(scored) != len(records) or len(scored.decisions) != len(records) or len(scored.reasons) != len(records):
        raise t.fail("check_scores_in_unit_interval", f"score() of {len(records)} records returned "
                     f"{len(scored)} scores, {len(scored.decisions)} decisions, {len(scored.reasons)} reason lists",
                     "return one score, decision and reason list per record, in order")
    return scored


def check_scores_in_unit_interval(t: TrainedKind) -> None:
    """Scores are finite numbers in [0, 1], decisions are block / review / allow."""
    name = "check_scores_in_unit_interval"
    scored = _score(t, t.records)
    values = np.asarray(scored.scores, dtype=np.float64)
    bad = [(i, float(v)) for i, v in enumerate(values) if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise t.fail(name, f"scores out of [0, 1] or not finite at (index, score) {bad[:5]}",
                     "return probabilities (a sigmoid or a calibrated score), never logits or NaN")
    unknown = sorted({d for d in scored.decisions if d not in DECISION_RANK})
    if unknown:
        raise t.fail(name, f"decisions {unknown} are not block / review / allow", "decide with common.decisions.decide")


def _compare(t: TrainedKind, check: str, expected: Scores, got: Scores, what: str, fix: str,
             reference: str = "alone") -> None:
    difference = np.abs(np.asarray(expected.scores, float) - np.asarray(got.scores, float))
    worst = int(np.argmax(difference)) if len(difference) else 0
    if len(difference) and difference[worst] > t.data.tolerance:
        raise t.fail(check, f"{what}: record {worst} scores {float(got.scores[worst])!r}, "
                     f"{reference} {float(expected.scores[worst])!r} (differs by {difference[worst]:.3g} > tolerance "
                     f"{t.data.tolerance:g})", fix)
    moved = [i for i, (a, b) in enumerate(zip(expected.decisions, got.decisions, strict=True)) if a != b]
    if moved:
        i = moved[0]
        raise t.fail(check, f"{what}: record {i} is decided {got.decisions[i]!r}, {reference} {expected.decisions[i]!r}",
                     fix)


BATCH_FIX = ("score each record from its own fields only: no batch statistics (dynamic quantization ranges, "
             "padding without a mask, normalization over the batch) and nothing shared between the records of a call")


def check_batch_equals_single(t: TrainedKind) -> None:
    """Scoring the records together gives each the score and decision it gets alone (the
    service's micro-batcher and batch jobs put any records in one batch)."""
    alone = Scores.joined([_score(t, [r]) for r in t.records])
    _compare(t, "check_batch_equals_single", alone, _score(t, t.records), "scored together", BATCH_FIX)


def check_order_independent(t: TrainedKind) -> None:
    """Scoring the records in reverse order gives each the same score and decision."""
    forward = _score(t, t.records)
    backward = _score(t, t.records[::-1])
    n = len(t.records)
    reordered = Scores(np.asarray(backward.scores)[::-1], backward.decisions[::-1], backward.reasons[::-1])
    _compare(t, "check_order_independent", forward, reordered, f"the {n} records reversed", BATCH_FIX,
             "in order")


def check_batch_size_independent(t: TrainedKind) -> None:
    """Scoring in batches of 2, through ``score_groups`` (the micro-batcher) and through
    ``score_catalogue`` (a batch job) gives each record the same score and decision."""
    name = "check_batch_size_independent"
    whole = _score(t, t.records)
    pairs = Scores.joined([_score(t, t.records[i:i + 2]) for i in range(0, len(t.records), 2)])
    _compare(t, name, whole, pairs, "scored in batches of 2", BATCH_FIX, "all together")
    groups = [t.records[:1], t.records[1:]]
    grouped = t.runtime.score_groups(groups)
    if len(grouped) != len(groups):
        raise t.fail(name, f"score_groups of {len(groups)} groups returned {len(grouped)}", "one Scores per group")
    _compare(t, name, whole, Scores.joined(grouped), "score_groups (the micro-batcher's call)", BATCH_FIX,
             "all together")
    _compare(t, name, whole, t.runtime.score_catalogue(list(t.records)), "score_catalogue (a batch job's call)",
             "score_catalogue must give the scores of score() (RuntimeBase's default does)", "score()")


def _derived_runtime(t: TrainedKind, thresholds: dict[str, Thresholds], reason: str) -> ModelRuntime:
    with environment(_env(t.data, t.workdir)):
        manifest = t.registry.derive_with_thresholds(t.bundle.tag, thresholds, reason=reason)
        # the trained version stays the kind's candidate for the other checks
        t.registry.aliases.set(t.kind.name, "candidate", t.bundle.manifest.version, action="register",
                               actor=t.registry.actor, reason="kind checks: back to the trained version")
        return t.kind.runtime_class().from_bundle(t.registry.load(manifest.tag), device="cpu")


def check_thresholds_followed(t: TrainedKind) -> None:
    """Decisions follow the bundle's thresholds: review <= block for every key; an ``allow``
    scores under the highest review threshold; a version derived with every threshold at 0
    allows nothing and is never less strict; one with every threshold above 1 is never
    stricter (rules may still raise a decision, but the model's part comes from the bundle)."""
    name = "check_thresholds_followed"
    thresholds = t.bundle.manifest.thresholds
    if not thresholds:
        raise t.fail(name, "the manifest has no thresholds", "store the served thresholds in Manifest.thresholds")
    scored = _score(t, t.records)
    top_review = max(th.review for th in thresholds.values())
    allowed_high = [(i, float(s)) for i, (s, d) in enumerate(zip(scored.scores, scored.decisions, strict=True))
                    if d == "allow" and s >= top_review]
    if allowed_high:
        raise t.fail(name, f"records allowed at or over the review threshold {top_review}: {allowed_high[:5]}",
                     "decide with the bundle's thresholds (common.decisions.decide)")
    fix = "read the thresholds from bundle.manifest.thresholds in from_bundle; never hard-code them"
    lowest = _derived_runtime(t, {k: Thresholds(block=0.0, review=0.0) for k in thresholds}, "kind checks: all 0")
    low = lowest.score(list(t.records))
    for i, (served, strict) in enumerate(zip(scored.decisions, low.decisions, strict=True)):
        if strict == "allow" or DECISION_RANK[strict] < DECISION_RANK[served]:
            raise t.fail(name, f"with every threshold at 0, record {i} is {strict!r} (served thresholds: {served!r})",
                         fix)
    highest = _derived_runtime(t, {k: Thresholds(block=1.01, review=1.01) for k in thresholds}, "kind checks: > 1")
    high = highest.score(list(t.records))
    for i, (served, lax) in enumerate(zip(scored.decisions, high.decisions, strict=True)):
        if DECISION_RANK[lax] > DECISION_RANK[served]:
            raise t.fail(name, f"with every threshold above 1, record {i} is {lax!r} (served thresholds: {served!r})",
                         fix)


# -- answers --------------------------------------------------------------------------------

def http_answer(t: TrainedKind, records: Sequence[BaseModel] | None = None) -> Answer:
    """The answer the HTTP service gives (``serving/service.py``: the kind's answers over the
    runtime, the micro-batcher's ``score_groups`` scores for micro-batched kinds, no merchant
    holds, the shipped call rules)."""
    records = list(t.records if records is None else records)
    scores = t.runtime.score_groups([records])[0] if t.kind.answers.micro_batched else None
    return t.kind.answers.answer(t.runtime, records, dict(t.data.request), no_holds, scores, CallRules())


def _jsonable(answer: Answer) -> Any:
    def plain(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {"fields": plain(answer.fields), "log": [plain(vars(item)) for item in answer.log],
            "batch_rows": plain(answer.batch_rows)}


def check_answers_deterministic(t: TrainedKind) -> None:
    """The same call answered twice gives the same fields, log items and batch rows."""
    first, second = _jsonable(http_answer(t)), _jsonable(http_answer(t))
    if first != second:
        part = next(k for k in first if first[k] != second[k])
        raise t.fail("check_answers_deterministic", f"two answers to the same call differ in {part}",
                     "no randomness, clocks or set ordering in score() or answer()")


def check_model_tag_in_answers(t: TrainedKind) -> None:
    """The version's tag is in the answer, in every decision-log item and every batch row."""
    name = "check_model_tag_in_answers"
    answer = http_answer(t)
    tag = t.bundle.tag
    if tag not in json.dumps(_jsonable(answer)["fields"], ensure_ascii=False):
        raise t.fail(name, f"the answer's fields never name {tag!r}", "put model.tag into each result's model field")
    wrong = [item.model for item in answer.log if item.model != tag] + \
        [row.get("model") for row in answer.batch_rows if row.get("model") != tag]
    if wrong or not answer.log or not answer.batch_rows:
        raise t.fail(name, f"log items / batch rows name {wrong[:3]} (or there are none), not {tag!r}",
                     "use per_record_answer (or fill LogItem.model and the batch row's model from model.tag)")


def check_answer_decisions_follow_runtime(t: TrainedKind) -> None:
    """Without merchant holds, a kind answering one result per record decides each as its
    runtime did (the answers raise decisions by policy only)."""
    if t.kind.answers.group_column is not None:
        return
    scored = _score(t, t.records)
    rows = http_answer(t).batch_rows
    if [r["decision"] for r in rows] != list(scored.decisions):
        raise t.fail("check_answer_decisions_follow_runtime",
                     f"answer decisions {[r['decision'] for r in rows]} but runtime {list(scored.decisions)}",
                     "answer with the runtime's decisions (apply_merchant_rule only raises them)")


def check_refusals_name_the_field(t: TrainedKind) -> None:
    """A call naming one entity twice is refused 4xx naming the id field at every index; a
    batch file's bad row is rejected naming its field; an unknown column names the column."""
    from batch.jobs import validate_rows

    name = "check_refusals_name_the_field"
    kind = t.kind
    if kind.id_field in kind.record.model_fields:
        refusal = kind.answers.refusal([*t.records, t.records[0]], "records")
        if not isinstance(refusal, Refused) or not 400 <= refusal.status < 500:
            raise t.fail(name, f"a call with {kind.id_field} {getattr(t.records[0], kind.id_field)!r} twice is "
                         f"not refused ({refusal!r})", "keep KindAnswers.refusal (it refuses repeated ids)")
        locs = [d.get("loc") for d in refusal.body.get("detail", [])]
        if not locs or not all(loc and loc[0] == "records" and loc[-1] == kind.id_field for loc in locs) or \
                sorted(loc[1] for loc in locs) != [0, len(t.records)]:
            raise t.fail(name, f"the refusal's detail locs are {locs}", "name [field, index, id_field] per index")
    rows = [dict(r) for r in t.data.records[:2]]
    field_name = next(iter(kind.record.model_fields))
    rows[1][field_name] = {"not": "valid"}
    frame = pd.DataFrame(rows)
    _, rejects = validate_rows(kind, frame.astype(object).where(frame.notna(), None))
    if [r["row"] for r in rejects] != [1] or not str(rejects[0]["field"]).startswith(field_name):
        raise t.fail(name, f"a batch row with a bad {field_name!r} gives rejects {rejects}",
                     "let the record schema name the field of a bad value")
    _, rejects = validate_rows(kind, pd.DataFrame([{**rows[0], UNKNOWN_FIELD: 1}]))
    if not rejects or rejects[0]["field"] != UNKNOWN_FIELD:
        raise t.fail(name, f"a batch row with an unknown column gives rejects {rejects}",
                     "forbid extra fields in the record schema")


def batch_job_rows(t: TrainedKind, workdir: Path) -> list[dict[str, Any]]:
    """The rows ``shopguard batch score`` writes for the records: a Parquet file in the
    API's record shape (request fields as columns for grouped kinds), read back as the job
    reads it and scored by its local engine (``batch.jobs.score_file``)."""
    from batch.jobs import read_table, score_file

    frame = pd.DataFrame([{**dict(t.data.request), **dict(r)} if t.kind.answers.group_column else dict(r)
                          for r in t.data.records])
    source = workdir / "kind-check-records.parquet"
    frame.to_parquet(source, index=False)
    results, rejects = score_file(t.kind, t.runtime, read_table(source, record=t.kind.record))
    if len(rejects):
        raise t.fail("check_batch_matches_http", f"the batch job rejected valid records: "
                     f"{rejects.to_dict(orient='records')[:3]}", "batch files hold API records: keep them valid")
    return results.astype(object).where(results.notna(), None).to_dict(orient="records")


def check_batch_matches_http(t: TrainedKind) -> None:
    """A batch job (records in a Parquet file, ``shopguard batch score``'s local engine) writes
    exactly the rows of the HTTP answer (the answers class over the runtime)."""
    name = "check_batch_matches_http"
    http = http_answer(t).batch_rows
    batch = batch_job_rows(t, t.workdir)
    if len(http) != len(batch):
        raise t.fail(name, f"HTTP gives {len(http)} rows, the batch job {len(batch)}",
                     "answer batch rows from the same answer code (KindAnswers.answer)")
    for i, (a, b) in enumerate(zip(http, batch, strict=True)):
        for column in a:
            x, y = a[column], b.get(column)
            same = (abs(float(x) - float(y)) <= t.data.tolerance if isinstance(x, int | float) and
                    isinstance(y, int | float) and not isinstance(x, bool) else x == y)
            if not same:
                raise t.fail(name, f"row {i}, column {column!r}: HTTP {x!r}, batch job {y!r}",
                             "score_catalogue must give score()'s results, and the batch file's columns must be "
                             "read as the API's fields")


# -- card -----------------------------------------------------------------------------------

def check_card(t: TrainedKind) -> None:
    """The bundle holds the card as Markdown, HTML and JSON; ``models card`` renders it in
    md (Hugging Face front matter with a model-index), html and json (Model Card Toolkit
    schema naming the version) with the required sections."""
    name = "check_card"
    fix = "write the card with registry.cards.write_card(card, staging) before registering"
    missing = [f for f in (CARD_MD, CARD_HTML, CARD_JSON) if f not in t.bundle.manifest.files]
    if missing:
        raise t.fail(name, f"the bundle has no {missing}", fix)
    card = ModelCard.model_validate_json((t.bundle.path / CARD_JSON).read_text(encoding="utf-8"))
    keys = [s.key for s in card.sections]
    absent = [k for k in REQUIRED_CARD_SECTIONS if k not in keys]
    if absent:
        raise t.fail(name, f"the card has sections {keys}, not {absent}",
                     f"add CardSection(key=...) for each of {list(REQUIRED_CARD_SECTIONS)}")
    with environment(_env(t.data, t.workdir)):
        markdown = t.registry.card(t.bundle.tag, "md", text_model=t.kind.text_model)
        page = t.registry.card(t.bundle.tag, "html")
        document = json.loads(t.registry.card(t.bundle.tag, "json"))
    required = [s for s in card.sections if s.key in REQUIRED_CARD_SECTIONS]
    if not markdown.startswith("---\n") or "model-index" not in markdown or \
            any(f"## {md_text(heading(s))}" not in markdown for s in required):
        raise t.fail(name, "the Markdown card lacks its front matter, model-index or a required section", fix)
    if not all(html.escape(heading(s)) in page for s in required) or "<h" not in page:
        raise t.fail(name, "the HTML card lacks a required section", fix)
    details = document.get("model_details", {})
    if details.get("name") != t.kind.name or details.get("version", {}).get("name") != t.bundle.manifest.version:
        raise t.fail(name, f"the JSON card names {details.get('name')!r} {details.get('version')!r}",
                     "register the manifest with the kind's name")
    if not document.get("quantitative_analysis", {}).get("performance_metrics"):
        raise t.fail(name, "the JSON card has no performance metrics",
                     "store test metrics in Manifest.metrics (training.evaluation.binary_metrics)")


# -- the suite ------------------------------------------------------------------------------

StaticCheck = Callable[[ModelKind, KindData], None]
TrainedCheck = Callable[[TrainedKind], None]
STATIC_CHECKS: tuple[StaticCheck, ...] = (check_record_schema, check_serving_imports_no_training)
TRAINED_CHECKS: tuple[TrainedCheck, ...] = (
    check_bundle_files, check_tampering_refused, check_scores_in_unit_interval, check_batch_equals_single,
    check_order_independent, check_batch_size_independent, check_thresholds_followed,
    check_answers_deterministic, check_answer_decisions_follow_runtime, check_model_tag_in_answers,
    check_refusals_name_the_field, check_batch_matches_http, check_card,
)


def kind_checks(kind: ModelKind) -> list[str]:
    """The names of every check, in the order ``check_kind`` runs them."""
    return [c.__name__ for c in STATIC_CHECKS] + ["check_trains_and_registers"] + [c.__name__ for c in TRAINED_CHECKS]


def check_kind(kind: ModelKind, data: KindData, *, workdir: Path, generate_only: bool = False,
               skip: Sequence[str] = ()) -> list[str] | list[tuple[str, Callable[[], None]]]:
    """Run every check on ``kind`` (training it with ``data`` in a fresh home under
    ``workdir``); raises ``KindCheckError`` at the first failure, naming the check and the fix.
    Returns the names of the checks that ran.

    ``generate_only=True``: train and load once, then return ``(name, check)`` pairs, each a
    no-argument callable, without running them (a test suite runs each as its own test).
    ``skip``: names of checks not to run (report why where you call it)."""
    workdir = Path(workdir)
    with environment(dict(data.env)):
        static = [(c.__name__, (lambda c=c: c(kind, data))) for c in STATIC_CHECKS if c.__name__ not in skip]
        if not generate_only:
            for _, run in static:
                run()
        trained = train_kind(kind, data, workdir)
        checks = static + [(c.__name__, (lambda c=c: c(trained))) for c in TRAINED_CHECKS if c.__name__ not in skip]
        if generate_only:
            return checks
        for _, run in checks[len(static):]:
            run()
    return [name for name, _ in checks[:len(static)]] + ["check_trains_and_registers"] + \
        [name for name, _ in checks[len(static):]]
