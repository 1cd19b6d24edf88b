"""The policy file: the per-call rule parameters and enforcement over time, as typed data.

A policy is a YAML (or JSON) document validated by ``PolicyDocument``: unknown keys are
refused with the key named, every value is checked, and a key left out takes its default.
The shipped defaults are ``default_policy.yaml`` (each value says where it comes from);
``SHOPGUARD_POLICY`` names a file to use instead. A policy's **version** is its declared
``name`` plus the first 12 hex digits of the sha256 of its resolved content (defaults filled
in, keys sorted): two files that mean the same have the same version, and every ledger entry
and action records the version it was taken under.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Hashable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.errors import ShopGuardError
from features.marketing import MARKETING_CATEGORIES

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "default_policy.yaml"
RoomAction = Literal["none", "warn", "restrict", "stop"]
ROOM_ACTIONS: tuple[str, ...] = ("none", "warn", "restrict", "stop")
CreatorPenaltyKind = Literal["limit_live_selling", "withdraw_ecommerce"]
MerchantPenaltyKind = Literal["review_hold", "suspension"]
# How far each kind of penalty reaches: creators' penalties stop their live rooms; a merchant
# penalty raises its listings and streams to review (a suspension: to block).
PENALTY_RAISES: dict[str, str] = {"review_hold": "review", "suspension": "block"}


class Strict(BaseModel):
    """A policy section: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _every_category(points: dict[str, int], where: str, defaults: dict[str, int]) -> dict[str, int]:
    """Every category's points: those given, and the shipped default for a category left out
    (a file naming one category must not set the seven others to 0)."""
    unknown = sorted(set(points) - set(MARKETING_CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categor{'ies' if len(unknown) > 1 else 'y'} {unknown} in {where}; "
                         f"categories are {', '.join(MARKETING_CATEGORIES)}")
    return {c: int(points.get(c, defaults[c])) for c in MARKETING_CATEGORIES}


class ReviewBurst(Strict):
    """A stream call with this many segments at review within the window is blocked."""

    segments: int = Field(3, ge=2, le=1000, description="ShopGuard's stream rule since the first stream model")
    window_seconds: float = Field(60.0, gt=0, le=86_400, description="measured on the segments' start_ms")


class CallRules(Strict):
    """Rules applied to one call after the model (``policy/calls.py``)."""

    stream_review_burst: ReviewBurst = ReviewBurst()
    merchant_penalty_raises_to: Literal["review", "block"] = Field(
        "review", description="the least a listing or stream of a merchant under a review hold is raised to")


class Rung(Strict):
    """One step of a live room's ladder: reached when the flagged segments among the room's
    last ``rooms.window_segments`` segments weigh at least ``weight`` and hold at least
    ``blocks`` segments at block."""

    action: Literal["warn", "restrict", "stop"]
    weight: float = Field(gt=0, le=10_000)
    blocks: int = Field(0, ge=0, le=10_000)


class RoomRules(Strict):
    """The live-room ladder: model decisions as they come, weighed, in a sliding window of segments."""

    window_segments: int = Field(200, ge=1, le=100_000, description=(
        "the window: a room's last N segments in the order received (about 13 minutes of speech at 4 s a "
        "sentence); independent of how fast or in what chunks a caller sends them"))
    block_weight: float = Field(1.0, ge=0, le=100)
    review_weight: float = Field(0.1, ge=0, le=100, description=(
        "a segment at review weighs this much (the model sends ~5% of clean speech to review: ten of them "
        "weigh one block)"))
    rungs: tuple[Rung, ...] = (Rung(action="warn", weight=2.0, blocks=2),
                               Rung(action="restrict", weight=4.0, blocks=3),
                               Rung(action="stop", weight=6.0, blocks=3))
    stop_for_creator_penalty: bool = Field(True, description=(
        "a broadcast opened (or its host named) while the creator's live selling is limited or withdrawn is "
        "answered stop from its first chunk; a room in progress when a penalty starts follows its own rungs, "
        "the penalty stopping the host's next broadcast"))

    @model_validator(mode="after")
    def _ordered(self) -> RoomRules:
        most = self.window_segments * max(self.block_weight, self.review_weight)
        for rung in self.rungs:
            if rung.weight > most:
                raise ValueError(f"rung {rung.action} needs weight {rung.weight:g}, more than the last "
                                 f"{self.window_segments} segments (window_segments) can weigh ({most:g}): it could "
                                 "never be reached")
            if rung.blocks > self.window_segments:
                raise ValueError(f"rung {rung.action} needs {rung.blocks} blocks among the last "
                                 f"{self.window_segments} segments (window_segments): it could never be reached")
        actions = [r.action for r in self.rungs]
        if len(set(actions)) != len(actions) or actions != sorted(actions, key=ROOM_ACTIONS.index):
            raise ValueError("rungs must be warn, restrict, stop in that order, each at most once")
        weights = [r.weight for r in self.rungs]
        if weights != sorted(weights):
            raise ValueError("a stronger rung cannot need less weight than a weaker one")
        return self


class Recovery(Strict):
    """Credit recovery: ``points`` after ``clean_days`` without a violation while the credit is below ``below``."""

    below: int = Field(ge=1, le=1000)
    clean_days: float = Field(gt=0, le=3650)
    points: int = Field(1, ge=1, le=100)


class CreditPenalty(Strict):
    """Imposed when a creator's credit falls to ``at_or_below``; ``days`` None: until lifted."""

    at_or_below: int = Field(ge=0, le=1000, description="credit never falls below 0, so a level below it is never reached")
    kind: CreatorPenaltyKind
    days: float | None = Field(None, gt=0, le=3650)


def _default_creator_points() -> dict[str, int]:
    return {"absolute_claim": 1, "efficacy_claim": 3, "guarantee_claim": 2, "price_fraud": 2, "false_scarcity": 1,
            "counterfeit": 4, "off_platform": 2, "fake_endorsement": 2}


class CreatorRules(Strict):
    """Creators' (hosts') credit: Douyin's e-commerce creator credit as the issue cites it
    (start 10, cap 12, +1 after 7 clean days below 10 and after 30 clean days at or above 10,
    e-commerce permission withdrawn at 0); the deductions per category and the limits on live
    selling are ShopGuard's defaults (graver harm costs more: medical claims and fakes most)."""

    start: int = Field(10, ge=1, le=1000)
    cap: int = Field(12, ge=1, le=1000)
    points: dict[str, int] = Field(default_factory=_default_creator_points)
    recovery: tuple[Recovery, ...] = (Recovery(below=10, clean_days=7), Recovery(below=12, clean_days=30))
    penalties: tuple[CreditPenalty, ...] = (
        CreditPenalty(at_or_below=6, kind="limit_live_selling", days=7),
        CreditPenalty(at_or_below=3, kind="limit_live_selling", days=30),
        CreditPenalty(at_or_below=0, kind="withdraw_ecommerce", days=None))
    recovers_while_withdrawn: bool = Field(False, description="no recovery while e-commerce permission is withdrawn")

    @field_validator("points")
    @classmethod
    def _categories(cls, value: dict[str, int]) -> dict[str, int]:
        if any(v < 0 for v in value.values()):
            raise ValueError("points are deductions: give them as numbers >= 0")
        return _every_category(value, "creators.points", _default_creator_points())

    @model_validator(mode="after")
    def _consistent(self) -> CreatorRules:
        if self.start > self.cap:
            raise ValueError(f"start {self.start} is above cap {self.cap}")
        levels = [p.at_or_below for p in self.penalties]
        if levels != sorted(levels, reverse=True) or len(set(levels)) != len(levels):
            raise ValueError("penalties must go from the highest at_or_below to the lowest, each level once")
        if levels and levels[0] >= self.start:
            raise ValueError(f"a penalty at_or_below {levels[0]} is not below start {self.start}: every creator's "
                             "first charge would impose it")
        return self


class Milestone(Strict):
    """Imposed when a merchant's active points reach ``points``; ``days`` None: until lifted."""

    points: int = Field(ge=1, le=100_000)
    penalty: MerchantPenaltyKind
    days: float | None = Field(None, gt=0, le=3650)


def _default_merchant_points() -> dict[str, int]:
    return {"absolute_claim": 1, "efficacy_claim": 4, "guarantee_claim": 2, "price_fraud": 2, "false_scarcity": 1,
            "counterfeit": 6, "off_platform": 3, "fake_endorsement": 2}


class ModelHold(Strict):
    """The merchant-risk model's pre-identification: its ``block`` puts the merchant on a hold."""

    penalty: MerchantPenaltyKind = "review_hold"
    days: float = Field(30.0, gt=0, le=3650, description="ShopGuard's standing merchant block since issue 4")


class MerchantRules(Strict):
    """Merchants' violation points: TikTok Shop's milestones (12 / 24 / 36 / 48 points, points
    reset 90 days after issue: TikTok Shop Philippines since June 2025); the points per category
    follow its ranges (counterfeit 4-48, prohibited customer communication 1-12); the penalties
    are ShopGuard's (a hold raises the merchant's listings and streams to review)."""

    points: dict[str, int] = Field(default_factory=_default_merchant_points)
    listing_block_points: int = Field(4, ge=0, le=1000, description="an inferior listing at block (once per listing)")
    expire_days: float = Field(90.0, gt=0, le=3650)
    milestones: tuple[Milestone, ...] = (Milestone(points=12, penalty="review_hold", days=7),
                                         Milestone(points=24, penalty="review_hold", days=14),
                                         Milestone(points=36, penalty="review_hold", days=30),
                                         Milestone(points=48, penalty="suspension", days=None))
    model_hold: ModelHold = ModelHold()

    @field_validator("points")
    @classmethod
    def _categories(cls, value: dict[str, int]) -> dict[str, int]:
        if any(v < 0 for v in value.values()):
            raise ValueError("points must be numbers >= 0")
        return _every_category(value, "merchants.points", _default_merchant_points())

    @model_validator(mode="after")
    def _ascending(self) -> MerchantRules:
        levels = [m.points for m in self.milestones]
        if levels != sorted(levels) or len(set(levels)) != len(levels):
            raise ValueError("milestones must go from the fewest points to the most, each level once")
        return self


class Charging(Strict):
    """When a violation costs points."""

    once_per: Literal["category_per_broadcast", "segment"] = Field(
        "category_per_broadcast", description=(
            "a creator or merchant is charged at most once per category per broadcast (and once per listing), "
            "as a host is sanctioned per broadcast, not per sentence"))


class AppealRules(Strict):
    """One appeal per ledger entry, within the deadline (Mastodon: one appeal per strike)."""

    deadline_days: float = Field(7.0, gt=0, le=365, description=(
        "after this, an unappealed provisional charge is final"))


class PolicyDocument(Strict):
    """A whole policy. ``version`` names it in every action it takes."""

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    calls: CallRules = CallRules()
    rooms: RoomRules = RoomRules()
    creators: CreatorRules = CreatorRules()
    merchants: MerchantRules = MerchantRules()
    charging: Charging = Charging()
    appeals: AppealRules = AppealRules()

    @cached_property
    def version(self) -> str:
        """``name@<12 hex digits>``: the declared name and the hash of the resolved content."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return f"{self.name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


class PolicyError(ShopGuardError):
    """A policy file that cannot be used; the message names the file and the key."""


def _location(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_policy(data: object, source: str) -> PolicyDocument:
    """Validate a parsed document; ``PolicyError`` naming ``source`` and every bad key."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a mapping of sections (name, calls, rooms, creators, merchants, "
                          "charging, appeals); found " + type(data).__name__)
    try:
        # JSON in strict mode: YAML's lists are read as the tuples they stand for, and a value of
        # the wrong type is refused (true is not a window of 1 segment, "3" not a count of 3).
        text = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{source}: a value is not plain data (numbers, text, true/false, null, lists, "
                          f"mappings): {exc}") from None
    try:
        return PolicyDocument.model_validate_json(text, strict=True)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{_location(error['loc'])}: {message}")
        raise PolicyError(f"{source}: {'; '.join(problems[:5])}"
                          + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")) from None


def _unique_keys_loader() -> type:
    """YAML's safe loader refusing a key given twice in one mapping (the last silently won:
    an analyst's edit of a key written above would not take effect)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden
                    continue
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    raise yaml.constructor.ConstructorError(None, None, "a key must be a plain value",
                                                            key_node.start_mark)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                            key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    # YAML 1.1 (PyYAML) reads 1e3 as text; read it as the number it is, as YAML 1.2 and JSON do
    UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))
    return UniqueKeyLoader


def load_policy(path: Path | None = None) -> PolicyDocument:
    """The policy in ``path`` (YAML or JSON), or the shipped defaults."""
    import yaml

    path = path or DEFAULT_POLICY_FILE
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text (byte {exc.start}): save the policy as UTF-8 YAML or JSON") from None
    try:
        data = yaml.load(text, Loader=_unique_keys_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_policy(data, str(path))
