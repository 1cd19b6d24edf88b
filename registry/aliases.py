"""Aliases (``production``, ``candidate``) from a model name to a version, with an
append-only history of every change (time, actor, action, reason)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from common.errors import ShopGuardError

ALIASES: tuple[str, ...] = ("production", "candidate")

metadata = MetaData()

aliases_table = Table(
    "model_aliases",
    metadata,
    Column("model_name", String(128), primary_key=True),
    Column("alias", String(32), primary_key=True),
    Column("version", String(128), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alias_history_table = Table(
    "model_alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("model_name", String(128), nullable=False, index=True),
    Column("alias", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("version", String(128), nullable=True),
    Column("previous_version", String(128), nullable=True),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
)


@dataclass(frozen=True)
class AliasEvent:
    """One row of the alias history."""

    at: datetime
    model_name: str
    alias: str
    action: str
    version: str | None
    previous_version: str | None
    actor: str
    reason: str


class AliasStore:
    """Reads and changes aliases; every change is written to the history in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, model_name: str, alias: str) -> str | None:
        """The version an alias points to, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(aliases_table.c.version).where(
                    aliases_table.c.model_name == model_name, aliases_table.c.alias == alias
                )
            ).first()
        return None if row is None else str(row[0])

    def all_for(self, model_name: str) -> dict[str, str]:
        """Every alias of a model."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(aliases_table.c.alias, aliases_table.c.version).where(
                    aliases_table.c.model_name == model_name
                )
            ).all()
        return {str(a): str(v) for a, v in rows}

    def set(
        self, model_name: str, alias: str, version: str | None, *, action: str, actor: str, reason: str
    ) -> AliasEvent:
        """Point ``alias`` at ``version`` (None removes it) and append the change to history,
        which keeps why: an empty ``reason`` is refused."""
        if not reason.strip():
            raise ShopGuardError(f"changing {model_name}:{alias} needs a reason for the alias history; none was given")
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            previous_row = conn.execute(
                select(aliases_table.c.version).where(
                    aliases_table.c.model_name == model_name, aliases_table.c.alias == alias
                )
            ).first()
            previous = None if previous_row is None else str(previous_row[0])
            where = (aliases_table.c.model_name == model_name) & (aliases_table.c.alias == alias)
            if version is None:
                conn.execute(aliases_table.delete().where(where))
            elif previous is None:
                conn.execute(
                    insert(aliases_table).values(
                        model_name=model_name, alias=alias, version=version, updated_at=now
                    )
                )
            else:
                conn.execute(update(aliases_table).where(where).values(version=version, updated_at=now))
            event = AliasEvent(now, model_name, alias, action, version, previous, actor, reason)
            conn.execute(insert(alias_history_table).values(**event.__dict__))
        return event

    def record_event(self, model_name: str, action: str, version: str | None, *, actor: str,
                     reason: str) -> AliasEvent:
        """Append a registry event that moves no alias (alias ``-``) to the history."""
        event = AliasEvent(datetime.now(UTC), model_name, "-", action, version, None, actor, reason)
        with self._engine.begin() as conn:
            conn.execute(insert(alias_history_table).values(**event.__dict__))
        return event

    def history(self, model_name: str) -> list[AliasEvent]:
        """All alias changes of a model, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(alias_history_table)
                .where(alias_history_table.c.model_name == model_name)
                .order_by(alias_history_table.c.id)
            ).mappings().all()
        return [
            AliasEvent(
                at=r["at"], model_name=r["model_name"], alias=r["alias"], action=r["action"],
                version=r["version"], previous_version=r["previous_version"], actor=r["actor"],
                reason=r["reason"],
            )
            for r in rows
        ]
