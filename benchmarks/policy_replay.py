"""The shadow replay (``shopguard enforcement replay``, ``policy/replay.py``) on a long event log:
rooms that run for hours with many flagged segments, replayed in memory under one policy.
Prints JSON: events, seconds, events/s and peak memory.

A room's flagged segments were sorted and copied whole for every chunk (its ladder window read
them all): 46,240 logged events of a busy test home took 564 s to replay, 15 s since.

    .venv/bin/python benchmarks/policy_replay.py [--rooms 4] [--chunks 5000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import UTC, datetime, timedelta

from policy.document import load_policy
from policy.replay import replay
from policy.state import ChunkScored, FlaggedInput

START = datetime(2026, 12, 1, tzinfo=UTC)


def event_log(rooms: int, chunks: int, segments: int = 10) -> list[tuple[int, ChunkScored]]:
    """``chunks`` chunks of each of ``rooms`` rooms, interleaved; every chunk has one segment at
    review and, every fifth chunk, one at block."""
    events = []
    for n in range(chunks):
        for room in range(rooms):
            flagged = [FlaggedInput(1, "review", ("false_scarcity",))]
            if n % 5 == 0:
                flagged.append(FlaggedInput(3, "block", ("efficacy_claim",)))
            at = START + timedelta(seconds=4 * n, milliseconds=room)
            events.append(ChunkScored(at, f"room-{room}", f"req-{room}-{n}", segments, tuple(flagged),
                                      f"host-{room}", f"merchant-{room % 2}", n))
    return list(enumerate(events, start=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=5_000, help="chunks per room")
    args = parser.parse_args()
    events = event_log(args.rooms, args.chunks)
    begin = time.perf_counter()
    result = replay(events, load_policy())
    seconds = time.perf_counter() - begin
    print(json.dumps({"benchmark": "policy_replay", "rooms": args.rooms, "events": len(events),
                      "flagged_segments": sum(len(e.flagged) for _, e in events), "seconds": round(seconds, 2),
                      "events_per_s": round(len(events) / seconds), "actions": len(result.state.actions),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}, indent=2))


if __name__ == "__main__":
    main()
