"""While the database cannot be read, a token it vouched for lately still passes (scoring goes
on, decisions wait in the journal); an unknown one cannot be checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from database.engine import make_engine
from serving import auth
from serving.auth import TokenStore


def test_a_recently_verified_token_passes_while_the_database_is_down(tmp_path: Path, monkeypatch) -> None:
    database = tmp_path / "tokens.db"
    engine = make_engine(f"sqlite:///{database}")
    store = TokenStore(engine, cache_seconds=0)  # every check asks the database
    token = store.create("pipeline", ("score",), "test")
    other = store.create("other", ("score",), "test")
    assert store.verify(token) is not None  # vouched for once
    engine.dispose()
    database.rename(tmp_path / "moved.db")  # an empty database in its place: the tokens table cannot be read
    assert store.verify(token).name == "pipeline"
    with pytest.raises(SQLAlchemyError):
        store.verify(other)  # never checked before the outage: nobody can vouch for it
    monkeypatch.setattr(auth, "OUTAGE_GRACE_SECONDS", 0.0)
    with pytest.raises(SQLAlchemyError):
        store.verify(token)  # past the grace: not checked, refused


def test_no_grace_for_an_admin_token_nor_for_one_checked_long_before_the_last_read(tmp_path: Path) -> None:
    database = tmp_path / "tokens.db"
    engine = make_engine(f"sqlite:///{database}")
    store = TokenStore(engine, cache_seconds=0)
    admin = store.create("operator", ("admin",), "test")
    early = store.create("early", ("score",), "test")
    late = store.create("late", ("score",), "test")
    for token in (admin, early, late):
        assert store.verify(token) is not None
    engine.dispose()
    database.rename(tmp_path / "moved.db")
    assert store.verify(late).name == "late"  # checked at the last successful read
    for token in (admin, early):  # admin never by grace; early's standing is older than the last read
        with pytest.raises(SQLAlchemyError):
            store.verify(token)


def test_readiness_says_when_tokens_cannot_be_checked_and_again_when_they_can(tmp_path: Path) -> None:
    # A damaged database once left /readyz at 200 while every authenticated call answered 503:
    # only decision writes reached readiness, and no call got far enough to write one.
    from serving.health import ServiceHealth

    database = tmp_path / "tokens.db"
    engine = make_engine(f"sqlite:///{database}")
    store = TokenStore(engine, cache_seconds=0)
    token = store.create("reader", ("read",), "test")
    health = ServiceHealth()
    health.models, health.reads = {}, [store.reading.problem]
    assert store.verify(token) is not None and health.report()[0]
    engine.dispose()
    moved = tmp_path / "moved.db"
    database.rename(moved)
    database.write_bytes(b"garbage!" * 512)  # a damaged file in its place
    assert store.verify(token) is not None and health.report()[0]  # vouched for lately: the grace rides it out
    with pytest.raises(SQLAlchemyError):
        store.verify("sg_never-seen")  # nobody can vouch for this one
    ready, body = health.report()
    assert not ready and body["storage"]["problem"]
    engine.dispose()
    database.unlink()
    moved.rename(database)
    assert store.verify(token) is not None and health.report()[0]  # readable again: ready again
