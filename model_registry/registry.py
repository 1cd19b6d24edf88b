"""The model registry: bundles in the BentoML model store plus aliases and their history."""

from __future__ import annotations

import getpass
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from features.errors import ShopGuardError
from model_registry.aliases import ALIASES, AliasEvent, AliasStore, make_engine
from model_registry.bundle import Manifest, read_verified_manifest, write_bundle_files
from model_registry.settings import Settings, configure_bentoml_home, load_settings

MODEL_NAMES: tuple[str, ...] = ("listing-quality", "false-marketing", "merchant-risk")


class ModelNotFoundError(ShopGuardError):
    """No model version matches a reference."""


@dataclass(frozen=True)
class LoadedBundle:
    """A verified bundle: its folder on disk and its manifest."""

    path: Path
    manifest: Manifest

    @property
    def tag(self) -> str:
        """``name:version``."""
        return self.manifest.tag


@dataclass(frozen=True)
class VersionInfo:
    """One registered version as listings show it."""

    name: str
    version: str
    created_at: datetime
    aliases: tuple[str, ...]


def new_version() -> str:
    """A sortable, unique version string: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def current_actor() -> str:
    """Who is acting, for the alias history (``SHOPGUARD_ACTOR`` or the login name)."""
    try:
        return os.environ.get("SHOPGUARD_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def split_reference(reference: str) -> tuple[str, str | None]:
    """``name[:version|alias]`` -> (name, version-or-alias or None)."""
    name, _, version = reference.partition(":")
    if not name:
        raise ModelNotFoundError(f"{reference!r} names no model; use NAME or NAME:VERSION.")
    return name, (version or None)


class ModelRegistry:
    """Register, list, resolve, load, promote and roll back model versions."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        configure_bentoml_home(self.settings)
        self.aliases = AliasStore(make_engine(self.settings.database_url))
        # An explicit store: BentoML's default one is a process-wide singleton fixed at first
        # use, which would ignore a later change of SHOPGUARD_HOME.
        from bentoml._internal.models.model import ModelStore

        store_path = self.settings.bentoml_home / "models"
        store_path.mkdir(parents=True, exist_ok=True)
        self.store = ModelStore(store_path)

    # -- storing -------------------------------------------------------------------------
    def register(self, staging_dir: Path, manifest: Manifest, *, mark_candidate: bool = True) -> Manifest:
        """Store the files staged in ``staging_dir`` as a new version and (by default) point
        the ``candidate`` alias at it. Returns the completed manifest."""
        import bentoml

        version = manifest.version or new_version()
        manifest = manifest.model_copy(update={"version": version})
        with bentoml.models.create(
            f"{manifest.model_name}:{version}",
            _model_store=self.store,
            labels={"shopguard_task": manifest.task},
            metadata={"feature_set": manifest.feature_set.name},
        ) as model:
            completed = write_bundle_files(staging_dir, Path(model.path), manifest)
        if mark_candidate:
            self.aliases.set(
                manifest.model_name, "candidate", version, action="register",
                actor=current_actor(), reason="newly trained version",
            )
        return completed

    # -- reading -------------------------------------------------------------------------
    def versions(self, name: str | None = None) -> list[VersionInfo]:
        """Registered versions, newest first (of one model or of all)."""
        import bentoml

        found = []
        for model in bentoml.models.list(name, _model_store=self.store):
            aliases = self.aliases.all_for(model.tag.name)
            found.append(
                VersionInfo(
                    name=model.tag.name,
                    version=str(model.tag.version),
                    created_at=model.creation_time,
                    aliases=tuple(a for a, v in sorted(aliases.items()) if v == model.tag.version),
                )
            )
        return sorted(found, key=lambda v: (v.name, v.created_at), reverse=True)

    def resolve(self, reference: str) -> str:
        """Turn ``name``, ``name:alias``, ``name:latest`` or ``name:version`` into a tag.
        A bare name means its production version."""
        import bentoml

        name, version = split_reference(reference)
        version = version or "production"
        if version in ALIASES:
            target = self.aliases.get(name, version)
            if target is None:
                raise ModelNotFoundError(
                    f"{name} has no {version} version. Train one with `shopguard train {name}` "
                    f"and promote it with `shopguard models promote {name}:VERSION --reason ...`."
                )
            return f"{name}:{target}"
        try:
            model = bentoml.models.get(f"{name}:{version}", _model_store=self.store)
        except bentoml.exceptions.NotFound as exc:
            raise ModelNotFoundError(
                f"no model {name}:{version} in the store; `shopguard models list` shows what there is."
            ) from exc
        return str(model.tag)

    def load(self, reference: str) -> LoadedBundle:
        """Resolve a reference and return the verified bundle (hashes checked)."""
        import bentoml

        tag = self.resolve(reference)
        model = bentoml.models.get(tag, _model_store=self.store)
        path = Path(model.path)
        return LoadedBundle(path=path, manifest=read_verified_manifest(path))

    def history(self, name: str) -> list[AliasEvent]:
        """Every alias change of a model, oldest first."""
        return self.aliases.history(name)

    # -- changing aliases ----------------------------------------------------------------
    def promote(self, reference: str, *, reason: str, actor: str | None = None) -> AliasEvent:
        """Make a version production. The bundle is verified first; a candidate alias
        pointing at it is cleared."""
        bundle = self.load(reference)
        name, version = bundle.manifest.model_name, bundle.manifest.version
        if self.aliases.get(name, "production") == version:
            raise ShopGuardError(f"{name}:{version} is already production; nothing to promote.")
        event = self.aliases.set(
            name, "production", version, action="promote", actor=actor or current_actor(), reason=reason
        )
        if self.aliases.get(name, "candidate") == version:
            self.aliases.set(
                name, "candidate", None, action="clear", actor=actor or current_actor(),
                reason=f"promoted to production: {reason}",
            )
        return event

    def rollback(self, name: str, *, reason: str, actor: str | None = None) -> AliasEvent:
        """Point production back at the version it had before the current one was promoted."""
        current = self.aliases.get(name, "production")
        if current is None:
            raise ShopGuardError(f"{name} has no production version to roll back.")
        promotions = [
            e for e in self.aliases.history(name)
            if e.alias == "production" and e.action == "promote" and e.version == current
        ]
        target = promotions[-1].previous_version if promotions else None
        if target is None:
            raise ShopGuardError(
                f"{name}:{current} was the first production version; there is nothing to roll back to."
            )
        self.load(f"{name}:{target}")  # refuse to roll back onto a damaged bundle
        return self.aliases.set(
            name, "production", target, action="rollback", actor=actor or current_actor(), reason=reason
        )
