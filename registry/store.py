"""The model registry: bundles in the BentoML model store plus aliases and their history."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.decisions import Thresholds
from common.errors import ShopGuardError
from common.settings import Settings, configure_bentoml_home, load_settings
from database.engine import make_engine
from registry.aliases import ALIASES, AliasEvent, AliasStore
from registry.bundle import (
    DAMAGED_BUNDLE_HINT,
    MANIFEST_FILE,
    BundleIntegrityError,
    Manifest,
    read_verified_manifest,
    sha256_file,
    write_bundle_files,
)
from registry.card_standards import hugging_face_front_matter, model_card_toolkit
from registry.cards import (
    CARD_JSON,
    CardSection,
    CardTable,
    ModelCard,
    scrubbed,
    to_html,
    to_markdown,
    without_machine_paths,
    write_card,
)
from registry.deployments import ServedVersions, live_window, serving_summary
from registry.version_records import VersionRecords

# (production, candidate, tolerance) -> why the candidate falls short, or None
ShortfallCheck = Callable[["LoadedBundle", "LoadedBundle", float], "str | None"]
# bundle -> why the API could not serve it, or None
ServableCheck = Callable[["LoadedBundle"], "str | None"]
FORCED_NOTE = "forced past the PR-AUC guard"  # in the reason of a promotion made with --force over a shortfall


def _refuse_unservable(bundle: LoadedBundle, servable: ServableCheck | None) -> None:
    """``ShopGuardError`` with ``servable``'s reason when the API could not serve ``bundle``."""
    why = servable(bundle) if servable is not None else None
    if why:
        raise ShopGuardError(why)


def _first_sentence(error: Exception) -> str:
    """An integrity error's finding, without its advice."""
    return str(error).split(". ")[0]


class UnrecordedBundleError(BundleIntegrityError):
    """A bundle in the model store this registry never recorded (``models adopt`` records it):
    not known to be damaged, but not verifiable either."""


class ModelNotFoundError(ShopGuardError):
    """No model version matches a reference."""


class PromotionRefusedError(ShopGuardError):
    """A candidate measured worse than production beyond the tolerance."""


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


def split_reference(reference: str) -> tuple[str, str | None]:
    """``name[:version|alias]`` -> (name, version-or-alias or None)."""
    name, colon, version = reference.partition(":")
    if not name:
        raise ModelNotFoundError(f"{reference!r} names no model; use NAME or NAME:VERSION.")
    if colon and not version:  # "name:" is a typo, not the production version
        raise ModelNotFoundError(f"{reference!r} names no version after the colon; use {name} (production), "
                                 f"{name}:VERSION or {name}:ALIAS.")
    return name, (version or None)


# A release serves its pinned versions whatever the aliases say: a promotion mends nothing there.
RELEASE_REBUILD_HINT = ("Rebuild the release from the registry (`shopguard bento build`), or restore the model store "
                        "it was built from.")


class ModelRegistry:
    """Register, list, resolve, load, promote and roll back model versions."""

    def __init__(self, settings: Settings | None = None, create: bool = True) -> None:
        """``create``: make the home and its model store where missing (not for a command that
        only reads the registry database)."""
        self.settings = settings or load_settings()
        if create:
            self.settings.home.mkdir(parents=True, exist_ok=True)
        # BentoML's model store (public API only) is process-wide and fixed at first use: a
        # registry on another SHOPGUARD_HOME in the same process shares it. Which versions
        # belong to this registry, and their manifest hashes, live in its database.
        self._bentoml_home_given = "BENTOML_HOME" in os.environ
        self.store_home = configure_bentoml_home(self.settings, create)
        engine = make_engine(self.settings.database_url)
        self.aliases = AliasStore(engine)
        self.version_records = VersionRecords(engine)
        self.deployments = ServedVersions(engine)  # what the running workers serve

    def serving(self, name: str, expected: str | None = None) -> dict[str, Any]:
        """What answers for ``name`` now: each live worker's version and whether they all
        serve ``expected`` (default: the production one; a Bento's pinned version in a
        release) (``registry/deployments.py``)."""
        return serving_summary(expected or self.aliases.get(name, "production"),
                               [s for s in self.deployments.live(live_window(self.settings)) if s.model_name == name])

    @property
    def actor(self) -> str:
        """Who is acting, for the alias history (``SHOPGUARD_ACTOR`` or the login name)."""
        return self.settings.actor

    # -- storing -------------------------------------------------------------------------
    def register(self, staging_dir: Path, manifest: Manifest, *, mark_candidate: bool = True,
                 reason: str = "newly trained version") -> Manifest:
        """Store the files staged in ``staging_dir`` as a new version and (by default) point
        the ``candidate`` alias at it, with ``reason`` in the alias history. Returns the
        completed manifest."""
        import bentoml

        version = manifest.version or new_version()
        manifest = manifest.model_copy(update={"version": version})
        with bentoml.models.create(
            f"{manifest.model_name}:{version}",
            labels={"shopguard_task": manifest.task},
            metadata={"feature_set": manifest.feature_set.name},
        ) as model:
            completed = write_bundle_files(staging_dir, Path(model.path), manifest)
        path = self._bundle_path(completed.tag)
        if not path.resolve().is_relative_to(self.store_home.resolve()):
            raise ShopGuardError(
                f"BentoML's model store in this process is not under {self.store_home} ({completed.tag} went to "
                f"{path}): BENTOML_HOME changed after BentoML first used its store. Set BENTOML_HOME before "
                "the process starts.")
        self.version_records.add(manifest.model_name, version, sha256_file(path / MANIFEST_FILE), self.actor)
        if mark_candidate:
            self.aliases.set(
                manifest.model_name, "candidate", version, action="register",
                actor=self.actor, reason=reason,
            )
        return completed

    def derive_with_thresholds(self, reference: str, thresholds: dict[str, Thresholds], *, reason: str,
                               evidence: dict[str, Any] | None = None, actor: str | None = None) -> Manifest:
        """Register a new version identical to ``reference`` except for its thresholds (bundles
        are immutable: changing a threshold is a new, reviewable version). The card gains a
        "Threshold change" section with the old and new values, the reason and the evidence;
        the new version becomes ``candidate``."""
        import tempfile

        bundle = self.load(reference)
        old = bundle.manifest.thresholds
        unknown = sorted(set(thresholds) - set(old))
        if unknown:
            raise ShopGuardError(f"{bundle.tag} has no threshold key(s) {unknown}; its keys are {sorted(old)}.")
        merged = {**old, **thresholds}
        change = {"derived_from": bundle.tag, "reason": reason, "actor": actor or self.actor,
                  "old": {k: t.model_dump() for k, t in old.items()},
                  "new": {k: t.model_dump() for k, t in merged.items()}, "evidence": evidence or {}}
        if not reason.strip():
            raise ShopGuardError("a threshold change needs a reason for the card and the alias history")
        version = new_version()
        with tempfile.TemporaryDirectory() as tmp:
            staging = Path(tmp)
            for name in bundle.manifest.files:
                shutil.copy2(bundle.path / name, staging / name)
            if CARD_JSON in bundle.manifest.files:
                card = ModelCard.model_validate_json((staging / CARD_JSON).read_text(encoding="utf-8"))
                # first, under this version's own name: the sections after it describe the parent (an earlier
                # change section among them becomes the parent's history, under a key of its own)
                earlier = [s.model_copy(update={"key": f"{s.key}_{bundle.manifest.version}",
                                                "title": f"Earlier threshold change ({bundle.tag})"})
                           if s.key == "threshold_change" else s for s in card.sections]
                card = card.model_copy(update={"version": version,
                                               "sections": [_threshold_change_section(change, version), *earlier]})
                write_card(card, staging)
            manifest = bundle.manifest.model_copy(update={
                "version": version, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "thresholds": merged, "files": {},
                "metrics": bundle.manifest.metrics.model_copy(update={
                    "details": {**bundle.manifest.metrics.details, "threshold_change": change}})})
            return self.register(staging, manifest, reason=f"thresholds changed from {bundle.tag}: {reason}")

    # -- reading -------------------------------------------------------------------------
    def versions(self, name: str | None = None) -> list[VersionInfo]:
        """Registered versions (of one model or of all), model by model, each model's newest first."""
        found = []
        for record in self.version_records.all(name):
            aliases = self.aliases.all_for(record.model_name)
            found.append(VersionInfo(
                name=record.model_name, version=record.version, created_at=record.registered_at,
                aliases=tuple(a for a, v in sorted(aliases.items()) if v == record.version)))
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
        if version == "latest":
            recorded = self.version_records.all(name)
            if not recorded:
                raise ModelNotFoundError(f"{name} has no registered version; `shopguard models list` "
                                         "shows what there is.")
            return f"{name}:{recorded[-1].version}"
        try:
            model = bentoml.models.get(f"{name}:{version}")
        except (bentoml.exceptions.BentoMLException, ValueError) as exc:
            raise ModelNotFoundError(
                f"no model {name}:{version} in the store; `shopguard models list {name}` lists its versions."
            ) from exc
        return str(model.tag)

    def load(self, reference: str) -> LoadedBundle:
        """Resolve a reference and return the verified bundle: every file's hash, and the
        manifest's own hash against the one recorded at registration."""
        tag = self.resolve(reference)
        name, version = split_reference(tag)
        record = self.version_records.get(name, version or "")
        if record is None:
            self._bundle_path(tag)  # a missing model is reported as such first
            raise UnrecordedBundleError(
                f"{tag} is in the model store but this registry never recorded its manifest hash (it "
                f"was registered by an older ShopGuard, or by another registry). Check it, then record "
                f"it with `shopguard models adopt {tag} --reason ...`, or re-register it from its "
                "training run.")
        return self.load_pinned(tag, record.manifest_sha256, pinned_by="registration")

    def load_pinned(self, tag: str, manifest_sha256: str, *, pinned_by: str = "the release") -> LoadedBundle:
        """The verified bundle of an exact ``name:version`` whose manifest hash is known from
        elsewhere (a Bento's release file): no registry database is read."""
        path = self._bundle_path(tag)
        hint = DAMAGED_BUNDLE_HINT if pinned_by == "registration" else RELEASE_REBUILD_HINT
        if not (path / MANIFEST_FILE).is_file():
            raise BundleIntegrityError(f"bundle {tag}: its {MANIFEST_FILE} is missing. {hint}")
        actual = sha256_file(path / MANIFEST_FILE)
        if actual != manifest_sha256:
            raise BundleIntegrityError(
                f"bundle {tag}: file {MANIFEST_FILE!r} has sha256 {actual[:12]}..., {pinned_by} "
                f"recorded {manifest_sha256[:12]}...; the manifest (thresholds included) was "
                f"edited{'' if pinned_by == 'registration' else f', or {pinned_by} names another build of it'}. "
                f"Refusing to load it. {hint}")
        return LoadedBundle(path=path, manifest=read_verified_manifest(path, hint))

    def _bundle_path(self, tag: str) -> Path:
        import bentoml

        try:
            return Path(bentoml.models.get(tag).path)
        except (bentoml.exceptions.BentoMLException, ValueError) as exc:
            raise ModelNotFoundError(f"no model {tag} in the store{self._store_hint()}; `shopguard models list` "
                                     "shows what there is.") from exc

    def _store_hint(self) -> str:
        """What to check when a model is missing in a process that chose BentoML's home itself
        (``BENTOML_HOME`` was not in its environment): one started by plain ``bentoml serve``
        has BentoML read its default home first (the service sets up nothing at import)."""
        if self._bentoml_home_given:
            return ""
        return (f" {self.store_home} (if this process is `bentoml serve`, BentoML read its default home: start the "
                f"service with `shopguard serve`, or set BENTOML_HOME={self.store_home})")

    def adopt(self, reference: str, *, reason: str) -> Manifest:
        """Record a version that is in the model store but not in this registry's database
        (registered by an older ShopGuard): its files are verified against its manifest, and
        the manifest's hash as it is now is recorded. The alias history says who did it."""
        import bentoml

        try:
            tag = str(bentoml.models.get(reference).tag)
        except (bentoml.exceptions.BentoMLException, ValueError) as exc:
            raise ModelNotFoundError(f"no model {reference} in the store.") from exc
        name, version = split_reference(tag)
        if self.version_records.get(name, version or "") is not None:
            raise ShopGuardError(f"{tag} is already recorded in this registry; nothing to adopt.")
        path = self._bundle_path(tag)
        manifest = read_verified_manifest(path)
        self.version_records.add(name, version or "", sha256_file(path / MANIFEST_FILE), self.actor)
        self.aliases.record_event(name, "adopt", version, actor=self.actor, reason=reason)
        return manifest

    def history(self, name: str) -> list[AliasEvent]:
        """Every alias change of a model, oldest first."""
        return self.aliases.history(name)

    def card(self, reference: str, card_format: str = "md", text_model: bool = False,
             bundle: LoadedBundle | None = None) -> str:
        """The version's model card (generated at training time) with its registry history
        appended: every promotion, rollback and alias change that concerned it. ``bundle``: the
        version already loaded and verified (a release's pin, by the release's hash)."""
        bundle = bundle or self.load(reference)
        card = scrubbed(ModelCard.model_validate_json((bundle.path / CARD_JSON).read_text(encoding="utf-8")))
        version = bundle.manifest.version
        events = [e for e in self.history(bundle.manifest.model_name)
                  if version in (e.version, e.previous_version)]
        card.sections.append(CardSection(
            key="registry_history", title="Registry history",
            paragraphs=["Alias changes that made this version production or candidate, or moved "
                        "production away from it (read from the registry when the card is shown)."],
            tables=[CardTable(columns=["time (UTC)", "action", "alias", "from", "to", "actor", "reason"],
                              rows=[[f"{e.at:%Y-%m-%d %H:%M:%S}", e.action, e.alias, e.previous_version,
                                     e.version, e.actor, e.reason] for e in events])],
        ))
        if card_format == "html":
            return to_html(card, bundle.path)
        if card_format == "json":
            return json.dumps(without_machine_paths(model_card_toolkit(card, bundle.manifest)), ensure_ascii=False,
                              indent=2)
        return to_markdown(card, without_machine_paths(hugging_face_front_matter(bundle.manifest, text_model)))

    # -- changing aliases ----------------------------------------------------------------
    def promote(self, reference: str, *, reason: str, actor: str | None = None, force: bool = False,
                tolerance: float | None = None, gate: ShortfallCheck | None = None,
                servable: ServableCheck | None = None) -> AliasEvent:
        """Make a version production. The bundle is verified first, then compared with
        production: by ``gate(production, candidate, tolerance)`` when given (the CLI's
        ``--data``: both scored on one shared file, paired), else by their stored test PR-AUC
        (measured on each version's own test split). More than ``tolerance`` worse is refused
        unless ``force`` (the history then says so), as is a production that cannot be loaded.
        ``servable(bundle)`` says why the API could not serve a version (refused whatever
        ``force`` says). A candidate alias pointing at the version is cleared."""
        bundle = self.load(reference)
        _refuse_unservable(bundle, servable)
        name, version = bundle.manifest.model_name, bundle.manifest.version
        current = self.aliases.get(name, "production")
        if current == version:
            raise ShopGuardError(f"{name}:{version} is already production; nothing to promote.")
        if current is not None:
            default = self.settings.promotion_pr_auc_tolerance
            allowed = default if tolerance is None else tolerance
            try:
                production = self.load(f"{name}:{current}")
            except (BundleIntegrityError, ModelNotFoundError, OSError) as damaged:
                if not force:
                    raise PromotionRefusedError(
                        f"production {name}:{current} cannot be loaded to compare {name}:{version} with: "
                        f"{_first_sentence(damaged)}. To put {name}:{version} in its place without a comparison, "
                        "pass --force with a --reason.") from None
                reason = (f"{reason} [{FORCED_NOTE}: production {name}:{current} could not be loaded: "
                          f"{_first_sentence(damaged)}]")
                return self._set_production(name, version, reason, actor)

            def shortfall_at(limit: float) -> str | None:
                return (gate(production, bundle, limit) if gate is not None
                        else self._pr_auc_shortfall(bundle.manifest, production.manifest, limit))

            shortfall = shortfall_at(allowed)
            if not shortfall and allowed > default:
                # a wider tolerance: the history says so, and (on the stored figures, a lookup; the paired
                # gate is not run twice) whether the version was let through only by it, as it says a --force
                loosened = self._pr_auc_shortfall(bundle.manifest, production.manifest, default) if gate is None \
                    else None
                reason = f"{reason} [tolerance {allowed:g} instead of {default:g}{f': {loosened}' if loosened else ''}]"
            if shortfall and not force:
                hint = ("" if gate is not None else f"; pass --data HELD_OUT_FILE to gate on both versions scored on "
                        f"one shared file (`shopguard models compare {name}:{current} {name}:{version} --data ...` "
                        "shows the details)")
                raise PromotionRefusedError(f"{shortfall}{hint}. To promote anyway pass --force with a --reason.")
            if shortfall:
                reason = f"{reason} [{FORCED_NOTE}: {shortfall}]"
        return self._set_production(name, version, reason, actor)

    def _set_production(self, name: str, version: str, reason: str, actor: str | None) -> AliasEvent:
        """Point production at ``version``; a candidate alias pointing at it is cleared."""
        event = self.aliases.set(
            name, "production", version, action="promote", actor=actor or self.actor, reason=reason
        )
        if self.aliases.get(name, "candidate") == version:
            self.aliases.set(
                name, "candidate", None, action="clear", actor=actor or self.actor,
                reason=f"promoted to production: {reason}",
            )
        return event

    @staticmethod
    def _pr_auc_shortfall(candidate: Manifest, production: Manifest, tolerance: float) -> str | None:
        """Why the candidate is worse than production beyond ``tolerance``, or None."""
        new, old = candidate.headline_pr_auc, production.headline_pr_auc
        if new is None or old is None or new >= old - tolerance:
            return None
        return (f"{candidate.tag} has stored test PR-AUC {new:.4f}, {old - new:.4f} below production "
                f"{production.tag} ({old:.4f}; each measured on its own test split); the tolerance is {tolerance:.4f}")

    def rollback(self, name: str, *, reason: str, actor: str | None = None,
                 servable: ServableCheck | None = None) -> AliasEvent:
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
        _refuse_unservable(self.load(f"{name}:{target}"), servable)  # never onto a damaged or unservable bundle
        return self.aliases.set(
            name, "production", target, action="rollback", actor=actor or self.actor, reason=reason
        )


def _threshold_change_section(change: dict[str, Any], version: str) -> CardSection:
    rows = [[key, change["old"][key]["block"], change["old"][key]["review"], values["block"], values["review"]]
            for key, values in change["new"].items()]
    evidence = [f"{key}: {value}" for key, value in change["evidence"].items()]
    return CardSection(
        key="threshold_change", title=f"Threshold change: the thresholds {version} serves",
        paragraphs=[f"{version} was derived from {change['derived_from']} by {change['actor']} with new thresholds "
                    f"only (same model files): {change['reason']}",
                    f"{version} decides with the new thresholds below. The rest of this card is "
                    f"{change['derived_from']}'s: its details, figures and threshold table describe the model "
                    "files this version shares, at the thresholds they were trained with."],
        bullets=evidence,
        tables=[CardTable(columns=["key", "old block", "old review", "new block", "new review"], rows=rows)],
    )
