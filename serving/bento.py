"""``shopguard bento build``: pin the production models in a release file, then run
``bentoml build`` so that the Bento carries the service and exactly those models."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from common.errors import InvalidInputError, ShopGuardError
from common.settings import Settings
from kinds import MODEL_KINDS
from registry.release import RELEASE_FILE, Release, ReleasedModel, new_release, write_release
from registry.store import ModelNotFoundError, ModelRegistry, split_reference

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TAG_PREFIX = "__tag__:"
logger = logging.getLogger(__name__)


def production_release(registry: ModelRegistry, actor: str) -> Release:
    """A release pinning every model's production version, each verified (files and manifest
    hash) before it ships."""
    models: dict[str, ReleasedModel] = {}
    missing: list[str] = []
    for kind in MODEL_KINDS.values():
        try:
            tag = registry.resolve(f"{kind.name}:production")
        except ModelNotFoundError:
            missing.append(kind.name)
            continue
        registry.load(tag)
        name, version = split_reference(tag)
        record = registry.version_records.get(name, version or "")
        assert record is not None  # load() refuses a version without a record
        models[kind.name] = ReleasedModel(tag=tag, manifest_sha256=record.manifest_sha256)
    if missing:
        raise ShopGuardError(f"no production version of {', '.join(missing)}: a Bento carries every model kind. "
                             "Promote one first (`shopguard models promote NAME:VERSION --reason ...`).")
    return new_release(models, actor)


BENTO_VERSION = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")  # BentoML's tag rule


def build_bento(settings: Settings, context: Path = PROJECT_ROOT, version: str | None = None) -> tuple[str, Release]:
    """Write ``release.json`` into the build context and build the Bento; return its tag."""
    if not (context / "bentofile.yaml").exists():
        raise ShopGuardError(f"no bentofile.yaml in {context}; run from a ShopGuard checkout or pass --context")
    if version is not None and not BENTO_VERSION.fullmatch(version):
        raise InvalidInputError(f"--version {version!r}: a Bento version is 1-63 lower-case letters, digits, '-', "
                                "'_' or '.', starting and ending with a letter or digit", field="--version")
    release = production_release(ModelRegistry(settings), settings.actor)
    release_path = write_release(release, context / RELEASE_FILE)
    env = {**os.environ, "SHOPGUARD_HOME": str(settings.home), "BENTOML_HOME": str(settings.bentoml_home),
           "SHOPGUARD_RELEASE": str(release_path), "BENTOML_DO_NOT_TRACK": "true"}
    command = [sys.executable, "-m", "bentoml", "build", str(context), "--output", "tag"]
    if version:
        command += ["--version", version]
    result = subprocess.run(command, env=env, cwd=context, capture_output=True, text=True)
    tags = [line[len(TAG_PREFIX):].strip() for line in result.stdout.splitlines() if line.startswith(TAG_PREFIX)]
    if result.returncode != 0 or not tags:
        said = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        logger.warning("bentoml build failed (exit %s):\n%s", result.returncode, result.stderr[-3000:])
        raise ShopGuardError(f"bentoml build failed (exit {result.returncode}): {said[-1] if said else 'no message'}")
    return tags[-1], release
