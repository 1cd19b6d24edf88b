"""The enforcement clock applies every stored verdict once, whatever failed before a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from database.engine import make_engine
from policy.document import load_policy
from policy.state import ChunkScored, FlaggedInput
from policy.store import EnforcementStore
from serving.enforcement_clock import EnforcementClock, verdict_event
from serving.feedback import FeedbackStore, feedback_table

T0 = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
BLOCK = FlaggedInput(0, "block", ("off_platform",))


def test_a_verdict_whose_enforcement_failed_below_an_applied_one_is_applied_after_a_restart(tmp_path: Path) -> None:
    # The first catch-up once started past the highest applied verdict: an earlier one whose
    # enforcement had failed (the database busy) was never applied.
    url = f"sqlite:///{tmp_path / 'shopguard.db'}"
    store = EnforcementStore(make_engine(url, immediate=True), load_policy(), lambda: T0,
                             read_engine=make_engine(url))
    for stream, host in (("s1", "c1"), ("s2", "c2")):
        store.record_chunk(ChunkScored(T0, stream, f"{stream}-0", 2, (BLOCK,), host, "m1", 0), f"sha-{stream}")
    engine = make_engine(url)
    rows = [{"at": T0, "entity_type": "stream", "entity_id": stream, "request_id": f"{stream}-0", "segment_index": 0,
             "model": "false-marketing:v1", "label": "ok", "reviewer": "rev", "note": ""} for stream in ("s1", "s2")]
    with engine.begin() as conn:
        conn.execute(insert(feedback_table), rows)
    stored = FeedbackStore(engine).rows()
    store.record_verdict(verdict_event(stored[1]))  # only the later one was applied before the restart
    assert store.creator_state("c1")["credit"] == 8 and store.creator_state("c2")["credit"] == 10
    EnforcementClock(store, FeedbackStore(engine), start=False).tick()
    assert store.creator_state("c1")["credit"] == 10
    assert store.applied_feedback_ids() == {stored[0]["id"], stored[1]["id"]}
