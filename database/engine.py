"""The ShopGuard database (SQLite by default, any SQLAlchemy URL) and its schema migrations.

The schema is versioned with Alembic (``database/migrations``); every process that
opens the database brings it to the newest revision first, so upgrading ShopGuard upgrades
the database on the next start. A database made before migrations existed (tables but no
``alembic_version``) is stamped at the revision its tables match, then upgraded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DatabaseError

from common.errors import ShopGuardError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_upgraded: set[str] = set()
_lock = threading.Lock()


def _alembic_config(connection):  # alembic objects
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _legacy_revision(tables: set[str]) -> str | None:
    """The revision a pre-migration database's tables match (None: a new database)."""
    if "model_aliases" not in tables and "decision_log" not in tables:
        return None
    return "0002" if "feedback" in tables else "0001"


def upgrade_schema(engine: Engine) -> str:
    """Bring the database to the newest schema revision; returns that revision."""
    from alembic import command
    from alembic.script import ScriptDirectory

    with engine.begin() as connection:
        config = _alembic_config(connection)
        tables = set(inspect(connection).get_table_names())
        legacy = _legacy_revision(tables)
        if "alembic_version" not in tables and legacy:
            command.stamp(config, legacy)
        command.upgrade(config, "head")
        return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _sqlite_pragmas(busy_timeout_ms: int, own_transactions: bool = False) -> Any:
    def on_connect(connection: Any, _record: Any) -> None:
        if own_transactions:  # the driver begins nothing itself: SQLAlchemy's "begin" event does
            connection.isolation_level = None
        cursor = connection.cursor()
        # WAL: readers (audit exports) never block the writer, and a commit is one append.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    return on_connect


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


_file_locks: dict[str, threading.Lock] = {}


@contextmanager
def write_lock(engine: Engine) -> Iterator[None]:
    """Hold the SQLite database's write turn across processes (a no-op on other databases).

    Writers of several worker processes that meet at SQLite's lock wait in its busy handler,
    which sleeps 1, 2, 5 ... 100 ms between tries: a writer that just finished takes the lock
    again while the other sleeps, and the other starves. An exclusive ``flock`` on a file beside
    the database instead queues them in the kernel, which wakes the next one as the lock is
    released."""
    import fcntl

    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    lock_path = f"{Path(path).expanduser()}.write-lock"
    with _lock:
        in_process = _file_locks.setdefault(lock_path, threading.Lock())
    with in_process, open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_engine(database_url: str, busy_timeout: float = 5.0, immediate: bool = False) -> Engine:
    """An engine for the ShopGuard database, migrated to the newest schema (once per URL
    and process). SQLite runs in WAL mode and waits up to ``busy_timeout`` seconds for a
    lock held by another process before an operation fails. With ``immediate``, a SQLite
    transaction takes the write lock when it begins (``BEGIN IMMEDIATE``), so that a
    transaction that reads, then writes never fails to upgrade its lock while another
    process writes (enforcement's read-modify-write transactions)."""
    if database_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        path = make_url(database_url).database
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, future=True, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas(int(busy_timeout * 1000), immediate))
        if immediate:
            event.listen(engine, "begin", _begin_immediate)
    else:
        engine = create_engine(database_url, future=True, pool_pre_ping=True)
    with _lock:
        if database_url not in _upgraded:
            try:
                upgrade_schema(engine)
            except DatabaseError as exc:
                raise DatabaseUnreadable(engine.url.render_as_string(hide_password=True),
                                         storage_cause(f"{type(exc).__name__}: {exc.orig or exc}")) from None
            _upgraded.add(database_url)
    return engine


class DatabaseUnreadable(ShopGuardError):
    """The database cannot be opened or migrated (a damaged file, a full disk, no server)."""

    def __init__(self, url: str, cause: str) -> None:
        advice = ("Restore it from a backup, move the file aside to start an empty one, or set "
                  "SHOPGUARD_DATABASE_URL to another database." if url.startswith("sqlite") else
                  "Check that the database server is running and reachable at that address and that the user may "
                  "connect, or set SHOPGUARD_DATABASE_URL to another database.")
        super().__init__(f"the database {url} cannot be opened: {cause}. {advice}")
        self.cause = cause


def storage_cause(error: str) -> str:
    """One line naming why a database cannot store, from an error's text: ``disk full``,
    ``damaged database``, ``database locked`` or the error itself."""
    text = error.splitlines()[0][:240] if error else "unknown error"
    lowered = text.lower()
    if "disk is full" in lowered or "no space" in lowered:
        return f"disk full ({text})"
    if "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        return f"damaged database ({text})"
    if "locked" in lowered or "busy" in lowered:
        return f"database locked ({text})"
    return text
