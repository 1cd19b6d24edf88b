"""Typed query parameters and form fields of the console: an unknown parameter or a bad
value is a 400 page naming the field, never a 500."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.times import UserTime
from kinds import MODEL_KINDS, MODEL_NAMES, ModelKind

ENTITY_TYPES: tuple[str, ...] = tuple(kind.entity_type for kind in MODEL_KINDS.values())


def _record_categories(kind: ModelKind) -> list[str]:
    """The values of a record's ``category`` field when it is a fixed list (a listing's)."""
    field = kind.record.model_fields.get("category")
    values = get_args(field.annotation) if field is not None else ()
    return [v for v in values if isinstance(v, str)]


# The queue's category filter: each kind's taxonomy, positive label and record categories.
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(
    [c for kind in MODEL_KINDS.values() for c in kind.categories]
    + [kind.positive_label for kind in MODEL_KINDS.values() if kind.positive_label]
    + [c for kind in MODEL_KINDS.values() for c in _record_categories(kind)]))


# The queue's choices an item's page carries along, so that "next" keeps them.
CARRIED = ("type", "model", "category", "since", "until", "order")
MAX_DB_INT = 2**63 - 1  # the largest id a database integer holds: a larger one is a 400, not an overflow


class BadInput(ValueError):
    """A query parameter or form field that cannot be used: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    since: UserTime | None = None
    until: UserTime | None = None
    model: str | None = None
    type: str | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        if value is not None and value not in MODEL_NAMES:
            raise ValueError(f"not one of {', '.join(MODEL_NAMES)}")
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in ENTITY_TYPES:
            raise ValueError(f"not one of {', '.join(ENTITY_TYPES)}")
        return value


class QueueQuery(_Query):
    """The queue's filters, order and cursor."""

    category: str | None = None
    order: Literal["newest", "score"] = "newest"
    cursor: str | None = Field(None, pattern=r"^-?[0-9.eE+-]{1,32}:[0-9]{1,18}$")
    done: int | None = Field(None, ge=1, le=MAX_DB_INT)  # the decision a verdict was just stored on
    stored: str | None = Field(None, pattern=r"^[0-9]{1,18}-[0-9]{1,18}$")  # that verdict's feedback ids
    skipped: int | None = Field(None, ge=1, le=MAX_DB_INT)  # the decision just skipped

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"not one of {', '.join(CATEGORIES)}")
        return value

    def keyset(self) -> tuple[float, int] | None:
        """The cursor as (score, id)."""
        if not self.cursor:
            return None
        score, _, last = self.cursor.rpartition(":")
        try:
            parsed = float(score), int(last)
        except ValueError:
            parsed = (math.nan, 0)
        if not math.isfinite(parsed[0]) or not 1 <= parsed[1] <= MAX_DB_INT:
            raise BadInput("cursor", "not a cursor given by the queue's 'next' link")
        return parsed

    def stored_ids(self) -> tuple[int, int] | None:
        """The first and last feedback id of the verdict just stored."""
        if not self.stored:
            return None
        first, _, last = self.stored.partition("-")
        return int(first), int(last)

    def filters(self) -> dict[str, Any]:
        """Filters for ``queries.queue_page``."""
        return {"entity_type": self.type, "model": self.model, "category": self.category, "since": self.since,
                "until": self.until}


class SearchQuery(_Query):
    """The decision search's filters and cursor."""

    version: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    decision: Literal["block", "review", "allow"] | None = None
    entity: str | None = Field(None, max_length=128)
    request_id: str | None = Field(None, max_length=64)
    before: int | None = Field(None, ge=1, le=MAX_DB_INT)

    def filters(self) -> dict[str, Any]:
        """Filters for ``serving.decision_log``'s queries."""
        if self.version and not self.model:
            raise BadInput("version", "a version needs its model")
        model = f"{self.model}:{self.version}" if self.version else self.model
        return {"since": self.since, "until": self.until, "model": model, "decision": self.decision,
                "entity": self.entity, "request_id": self.request_id, "entity_type": self.type}


def parse(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """``model`` from query parameters or form fields (empty values are absent); ``BadInput``
    naming the first field at fault."""
    try:
        return model.model_validate({k: v for k, v in values.items() if v != ""})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "query"
        message = "unknown parameter" if error["type"] == "extra_forbidden" else error["msg"]
        raise BadInput(field, message) from None


def check_parameters(pairs: list[tuple[str, str]], allowed: tuple[str, ...] | None) -> None:
    """``BadInput`` naming the first query parameter given twice (one value would be dropped
    unsaid) or, where ``allowed`` lists what a page takes, one it does not take."""
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise BadInput(name, "given twice; send it once")
        seen.add(name)
        if allowed is not None and name not in allowed:
            takes = ", ".join(allowed) if allowed else "none"
            raise BadInput(name, f"unknown parameter (this page takes: {takes})")
