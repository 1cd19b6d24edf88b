"""The saved-model bundle: our own files inside one BentoML model, hashed and verified.

No pickle anywhere: model files are LightGBM text, ONNX, safetensors or JSON. Every file
is listed in ``manifest.json`` with its sha256, and loading refuses a bundle whose files do
not match, naming the file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.decisions import Thresholds
from common.errors import ShopGuardError
from registry.metrics import BaselineSystem, ModelMetrics, migrate_v1

MANIFEST_FILE = "manifest.json"
# Files BentoML itself writes into a model folder; not ours, not hashed.
BENTOML_OWN_FILES = frozenset({"model.yaml"})
# 2: typed metrics; baseline systems in their own field (1 is read and migrated on load).
MANIFEST_SCHEMA_VERSION = 2


DAMAGED_BUNDLE_HINT = ("Re-register the model from its training run (`shopguard train ...`), or, if it serves, put a "
                       "sound version in its place: `shopguard models promote NAME:VERSION --force --reason ...`.")


class BundleIntegrityError(ShopGuardError):
    """A bundle's files do not match its manifest; it must not be loaded."""


class TrainingFile(BaseModel):
    """Lineage of one training input file."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    rows: int
    exported_at: str | None = Field(None, description="the file's modification time (UTC): when it was exported")
    role: str | None = Field(None, description="how training used it, e.g. 'generated' or 'real, held out by room'")


class Lineage(BaseModel):
    """Where a model came from: data, code, parameters, libraries, seed."""

    model_config = ConfigDict(extra="forbid")

    training_files: list[TrainingFile]
    git_commit: str | None
    parameters: dict[str, Any]
    library_versions: dict[str, str]
    seed: int
    base_model: dict[str, Any] | None = Field(None, description=(
        "the checkpoint fine-tuned: its folder, the sha256 of its base manifest, its corpus"))


class FeatureSetRef(BaseModel):
    """The feature set a model was trained on."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: int
    features: list[str]


class Manifest(BaseModel):
    """Everything needed to load, trust and explain one model version."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = MANIFEST_SCHEMA_VERSION
    model_name: str
    version: str = ""
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    task: str
    feature_set: FeatureSetRef
    label_map: dict[str, Any]
    thresholds: dict[str, Thresholds] = Field(
        description="the served thresholds: 'default' for binary models, one per category otherwise")
    metrics: ModelMetrics
    baselines: dict[str, BaselineSystem] = Field(
        default_factory=dict, description="systems measured beside the served one (never served)")
    lineage: Lineage
    serving_params: dict[str, Any] = Field(
        default_factory=dict, description="how the runtime combines the model files (e.g. blend weights)")
    files: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _upgrade_schema(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("schema_version") == 1:  # written before typed metrics
            return migrate_v1(data)
        if isinstance(data, dict) and data.get("schema_version", MANIFEST_SCHEMA_VERSION) > MANIFEST_SCHEMA_VERSION:
            raise ValueError(f"manifest schema {data['schema_version']} is newer than this ShopGuard "
                             f"reads ({MANIFEST_SCHEMA_VERSION}); upgrade ShopGuard to load it")
        return data

    @property
    def tag(self) -> str:
        """``name:version``."""
        return f"{self.model_name}:{self.version}"

    def headline_metrics(self) -> dict[str, float | None]:
        """The test metrics listings show (binary: ROC-AUC and PR-AUC; multi-label: macro
        and lowest category PR-AUC)."""
        return self.metrics.headline()

    @property
    def headline_pr_auc(self) -> float | None:
        """The PR-AUC the promotion guard compares."""
        return self.metrics.test.headline_pr_auc


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_bundle_files(staging_dir: Path, target_dir: Path, manifest: Manifest) -> Manifest:
    """Copy the staged files into ``target_dir``, hash each one into the manifest and write
    the manifest last. Returns the completed manifest."""
    hashes: dict[str, str] = {}
    for source in sorted(p for p in staging_dir.iterdir() if p.is_file()):
        if source.name == MANIFEST_FILE or source.name in BENTOML_OWN_FILES:
            continue
        shutil.copy2(source, target_dir / source.name)
        hashes[source.name] = sha256_file(target_dir / source.name)
    completed = manifest.model_copy(update={"files": hashes})
    (target_dir / MANIFEST_FILE).write_text(
        json.dumps(completed.model_dump(mode="json"), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return completed


def read_verified_manifest(bundle_dir: Path, hint: str = DAMAGED_BUNDLE_HINT) -> Manifest:
    """Read the manifest and check every file against its sha256.

    Raises ``BundleIntegrityError`` naming the first file that is missing, altered or not
    listed in the manifest, with ``hint`` (what to do; a release's differs from the registry's)."""
    manifest_path = bundle_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleIntegrityError(f"{bundle_dir} has no {MANIFEST_FILE}; it is not a ShopGuard bundle.")
    try:
        manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:  # pydantic's ValidationError: a value this ShopGuard refuses (a NaN threshold)
        problem = str(exc).splitlines()
        raise BundleIntegrityError(
            f"bundle {bundle_dir.name}: its {MANIFEST_FILE} does not validate ({'; '.join(problem[1:3]).strip()}). "
            f"Refusing to load it. {hint}") from None
    for name, expected in manifest.files.items():
        path = bundle_dir / name
        if not path.is_file():
            raise BundleIntegrityError(
                f"bundle {manifest.tag}: file {name!r} listed in the manifest is missing. {hint}"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise BundleIntegrityError(
                f"bundle {manifest.tag}: file {name!r} has sha256 {actual[:12]}..., the manifest "
                f"says {expected[:12]}...; the file was altered. Refusing to load it. {hint}"
            )
    listed = set(manifest.files) | {MANIFEST_FILE} | BENTOML_OWN_FILES
    extra = sorted(p.name for p in bundle_dir.iterdir() if p.name not in listed)
    if extra:
        raise BundleIntegrityError(
            f"bundle {manifest.tag}: file {extra[0]!r} is not listed in the manifest. "
            f"Refusing to load a bundle with unknown files: move {extra[0]!r} out of {bundle_dir} if you put it "
            f"there, else treat the bundle as damaged. {hint}"
        )
    return manifest
