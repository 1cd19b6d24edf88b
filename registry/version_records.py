"""The registry database's record of every registered version and the sha256 of its
manifest, taken at registration: a manifest edited afterwards (thresholds included) no
longer matches and is refused at load."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, insert, select

metadata = MetaData()

versions_table = Table(
    "model_versions",
    metadata,
    Column("model_name", String(128), primary_key=True),
    Column("version", String(128), primary_key=True),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
)


@dataclass(frozen=True)
class VersionRecord:
    """One registered version as the database knows it."""

    model_name: str
    version: str
    registered_at: datetime
    manifest_sha256: str
    actor: str


class VersionRecords:
    """Read and add version records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, model_name: str, version: str, manifest_sha256: str, actor: str) -> VersionRecord:
        """Record a newly registered version."""
        record = VersionRecord(model_name, version, datetime.now(UTC), manifest_sha256, actor)
        with self.engine.begin() as connection:
            connection.execute(insert(versions_table).values(**record.__dict__))
        return record

    def get(self, model_name: str, version: str) -> VersionRecord | None:
        """The record of one version, or None if this registry never registered it."""
        with self.engine.connect() as connection:
            row = connection.execute(select(versions_table).where(
                versions_table.c.model_name == model_name, versions_table.c.version == version)).first()
        return None if row is None else VersionRecord(**row._mapping)

    def all(self, model_name: str | None = None) -> list[VersionRecord]:
        """Every recorded version (of one model or of all), oldest first."""
        query = select(versions_table).order_by(versions_table.c.registered_at)
        if model_name is not None:
            query = query.where(versions_table.c.model_name == model_name)
        with self.engine.connect() as connection:
            return [VersionRecord(**row._mapping) for row in connection.execute(query)]
