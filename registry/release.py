"""A release: the exact model versions a deployable Bento carries, pinned with the sha256 of
each manifest.

``shopguard bento build`` writes ``release.json`` from the registry's ``production`` aliases;
the Bento's service loads exactly these versions from the Bento's own model store and checks
each manifest against the hash pinned here (every other file is checked against the
manifest), so a Bento needs no registry database to trust its models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import ShopGuardError

RELEASE_FILE = "release.json"


class ReleaseError(ShopGuardError):
    """A release file that is missing, malformed or names a model it does not pin."""


class ReleasedModel(BaseModel):
    """One pinned model version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str = Field(pattern=r"^[a-z0-9-]+:[A-Za-z0-9_.-]+$")
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Release(BaseModel):
    """The models of one deployable build, by model name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ReleasedModel]
    created_at: datetime
    created_by: str

    def pinned(self, model_name: str) -> ReleasedModel:
        """The pinned version of ``model_name``."""
        try:
            return self.models[model_name]
        except KeyError:
            raise ReleaseError(f"the release pins no {model_name} model (it pins "
                               f"{sorted(self.models) or 'none'}); rebuild it after promoting one") from None


def new_release(models: dict[str, ReleasedModel], created_by: str) -> Release:
    """A release of ``models``, stamped now by ``created_by`` (``Settings.actor``)."""
    return Release(models=models, created_at=datetime.now(UTC), created_by=created_by)


def write_release(release: Release, path: Path) -> Path:
    """Write ``release`` as JSON."""
    path.write_text(release.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_release(path: Path) -> Release:
    """Read a release file, naming the problem when it cannot be used."""
    try:
        return Release.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ReleaseError(f"release file {path} does not exist; `shopguard bento build` writes it") from None
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ReleaseError(f"release file {path} is not a valid release: {exc}") from None


def bento_release_file(working_dir: Path) -> Path | None:
    """The release file of the Bento being served from ``working_dir`` (BentoML serves a Bento
    from its ``src`` folder, beside ``bento.yaml``), or None outside a Bento."""
    candidate = working_dir / RELEASE_FILE
    return candidate if (working_dir.parent / "bento.yaml").exists() and candidate.exists() else None


def served_release(release_file: Path | None) -> Release | None:
    """The release a service serves: ``release_file`` (``SHOPGUARD_RELEASE``), else the Bento's
    own when it runs from one, else None (it follows the registry's aliases)."""
    path = release_file or bento_release_file(Path.cwd())
    return read_release(path) if path else None
