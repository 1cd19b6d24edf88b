"""Live rooms at a live rate: ``--rooms`` concurrent broadcasts (1,000 by default), each sending
a chunk of ``--segments`` segments every ``--interval`` seconds (with its ``chunk`` number and
host), against ``--workers`` service workers (2), on SQLite or PostgreSQL. Prints JSON: the
chunks per second asked and answered, per-chunk latency p50 / p99 / max, errors by status, the
server's memory and CPU, and the state written (rooms, actions, ledger entries).

Each room keeps one call in flight, as a review pipeline following a broadcast would: when the
service falls behind, the answered rate falls below the asked one and the latency shows it.
Sentences are real live-room speech (``../shared/data/live_asr``) when present, else generated.

    SHOPGUARD_HOME=.shopguard .venv/bin/python benchmarks/live_rooms.py [--database postgres]

Needs the demo models (``make train-demo``). PostgreSQL: a temporary cluster is started with
the server tools (``SHOPGUARD_PG_BIN`` or ``/usr/lib/postgresql/<v>/bin``) and the production
versions are adopted into its registry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def sentences(limit: int = 4000) -> list[str]:
    """Real live-room sentences when ``../shared/data`` is here, else generated segments."""
    from training.data.real_text import shared_data_dir

    root = shared_data_dir()
    if root is not None and (root / "live_asr").is_dir():
        from training.data.live_asr import clip_sentences

        texts = clip_sentences(root)["text"].tolist()
        random.Random(0).shuffle(texts)
        return texts[:limit]
    from kinds.false_marketing.generator import TranscriptGenerationConfig, generate_transcripts

    return generate_transcripts(TranscriptGenerationConfig(n=limit, seed=3), progress=False)["text"].tolist()


async def drive(base: str, headers: dict[str, str], texts: list[str], rooms: int, interval: float,
                segments: int, seconds: float) -> dict[str, Any]:
    """Every room sends its chunks on schedule (one in flight) for ``seconds``. The client is
    aiohttp: at hundreds of calls a second its own CPU must stay small beside the server's
    (``client_cpu_seconds`` says how much it took)."""
    import aiohttp

    latencies: list[float] = []
    statuses: Counter = Counter()
    answered_segments = 0
    start = time.monotonic() + 1.0
    stop = start + seconds
    run = random.Random().randrange(10**6)

    async def room(number: int, session: aiohttp.ClientSession) -> None:
        nonlocal answered_segments
        rng = random.Random(number)
        chunk = 0
        next_at = start + rng.uniform(0, interval)  # rooms start spread over one interval
        while next_at < stop:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            chosen = [texts[rng.randrange(len(texts))] for _ in range(segments)]
            body = {"stream_id": f"bench-room-{run}-{number}", "creator_id": f"bench-host-{run}-{number % 700}",
                    "merchant_id": f"bench-m-{number % 300}", "chunk": chunk,
                    "segments": [{"text": t, "start_ms": (chunk * segments + k) * 4000,
                                  "end_ms": (chunk * segments + k + 1) * 4000} for k, t in enumerate(chosen)]}
            sent = time.monotonic()
            try:
                async with session.post(f"{base}/v1/streams/score", json=body) as response:
                    await response.read()
                    statuses[response.status] += 1
                    if response.status == 200:
                        latencies.append((time.monotonic() - sent) * 1000)
                        answered_segments += segments
            except (TimeoutError, aiohttp.ClientError) as exc:
                statuses[type(exc).__name__] += 1
            chunk += 1
            next_at = max(next_at + interval, time.monotonic())

    connector = aiohttp.TCPConnector(limit=400)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
        began = time.monotonic()
        await asyncio.gather(*(room(n, session) for n in range(rooms)))
        elapsed = time.monotonic() - max(began, start)
    values = np.array(latencies) if latencies else np.array([float("nan")])
    return {"chunks_asked_per_s": round(rooms / interval, 1), "chunks_answered_per_s": round(len(latencies) / elapsed, 1),
            "segments_per_s": round(answered_segments / elapsed, 1), "p50_ms": round(float(np.percentile(values, 50)), 1),
            "p99_ms": round(float(np.percentile(values, 99)), 1), "max_ms": round(float(values.max()), 1),
            "answered": len(latencies), "statuses": {str(k): v for k, v in statuses.items()}}


def production_tags() -> list[str]:
    """The home's production versions."""
    from kinds import MODEL_NAMES
    from registry.store import ModelRegistry

    return [ModelRegistry().resolve(f"{name}:production") for name in MODEL_NAMES]


def adopt_into(database_url: str, tags: list[str]) -> None:
    """Register versions of the home's store in another database's registry and promote them."""
    import subprocess

    env = {**os.environ, "SHOPGUARD_DATABASE_URL": database_url}
    shopguard = str(Path(sys.executable).parent / "shopguard")
    for tag in tags:
        for command in (["models", "adopt", tag], ["models", "promote", tag]):
            subprocess.run([shopguard, *command, "--reason", "live rooms benchmark"], env=env, check=True,
                           capture_output=True)


def state_written(database_url: str) -> dict[str, int]:
    """Rows of the enforcement tables after the run."""
    from sqlalchemy import func, select

    from database.engine import make_engine
    from policy.store import actions_table, events_table, ledger_table, rooms_table

    with make_engine(database_url).connect() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                for name, table in (("rooms", rooms_table), ("events", events_table), ("actions", actions_table),
                                    ("ledger_entries", ledger_table))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between a room's chunks")
    parser.add_argument("--segments", type=int, default=2, help="segments per chunk")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()

    from benchmarks.load import AUTH_HEADERS, rss_mb, served, worker_cpu_seconds
    from common.settings import load_settings

    texts = sentences()
    env = {"SHOPGUARD_WORKERS": str(args.workers), "SHOPGUARD_MAX_IN_FLIGHT": "64"}
    result: dict[str, Any] = {"benchmark": "live_rooms", "rooms": args.rooms, "interval_s": args.interval,
                              "segments_per_chunk": args.segments, "seconds": args.seconds, "workers": args.workers,
                              "database": args.database, "cpu_count": os.cpu_count()}

    def run(database_url: str) -> None:
        from benchmarks.postgres import server_cpu_seconds

        with served(extra_env={**env, "SHOPGUARD_DATABASE_URL": database_url}) as (base, process):
            before, client, database = worker_cpu_seconds(process), time.process_time(), server_cpu_seconds()
            result.update(asyncio.run(drive(base, dict(AUTH_HEADERS), texts, args.rooms, args.interval,
                                            args.segments, args.seconds)))
            result["client_cpu_seconds"] = round(time.process_time() - client, 1)  # the load generator's share
            if args.database == "postgres":  # the server shares the machine's cores in this benchmark
                result["postgres_server_cpu_seconds"] = round(server_cpu_seconds() - database, 1)
            result["server_rss_mb"] = round(rss_mb(process), 1)
            result["cpu_seconds_per_process"] = [round(b - a, 1) for a, b in
                                                 zip(before, worker_cpu_seconds(process), strict=False)]
        result["state_written"] = state_written(database_url)

    if args.database == "postgres":
        from benchmarks.postgres import temporary_postgres

        tags = production_tags()
        with temporary_postgres() as url:
            os.environ["SHOPGUARD_DATABASE_URL"] = url  # the benchmark token and the registry live there
            adopt_into(url, tags)
            run(url)
    else:
        run(load_settings().database_url)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
