"""The console's queries on a SQLite decision log of 1,000,000 rows (30 days, every model
kind, two versions of each with a promotion halfway, 12% review, 20,000 verdicts). Prints
JSON: the fill time, the database size and the median milliseconds of each page's queries
(queue, search with filters, a deep keyset page, a decision page, the charts' queries), and
the export throughput (rows per second, CSV and Parquet).

``python benchmarks/console_queries.py [--rows 1000000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from database.engine import make_engine
from kinds import MODEL_KINDS
from serving.console import queries, review_stats
from serving.console.views import decision_view
from serving.decision_export import export_decisions

ROOT = Path(__file__).resolve().parent.parent

DAYS = 30
OUTCOMES = (("allow", 0.80), ("review", 0.12), ("block", 0.08))


def _inputs(kind: Any, entity_id: str, rng: random.Random) -> str:
    if kind.multi_label:
        category = rng.choice(kind.categories)
        return json.dumps({kind.id_field: entity_id, "segments": [{"text": "这是全网最低价 家人们", "start_ms": 0,
                                                                    "end_ms": 4000}],
                           "segment_decisions": ["review"], "segment_labels": [[category]],
                           "segment_spans": [[{"start": 2, "end": 6, "text": "全网最低", "category": category,
                                               "source": "lexicon", "rule_id": "r1"}]]}, ensure_ascii=False)
    return json.dumps({kind.id_field: entity_id, "title": f"item {entity_id}", "price": rng.random() * 100})


def fill(path: Path, rows: int, verdicts: int, seed: int = 0) -> float:
    """Write ``rows`` decisions and ``verdicts`` feedback rows (raw sqlite3 executemany: the
    fastest way in); returns seconds."""
    started = time.perf_counter()
    make_engine(f"sqlite:///{path}").dispose()  # the schema, migrations (indexes) included
    rng = random.Random(seed)
    kinds = list(MODEL_KINDS.values())
    start = datetime.now(UTC) - timedelta(days=DAYS)
    step = DAYS * 86400 / rows
    outcomes, weights = zip(*OUTCOMES, strict=True)
    reviews: list[tuple[str, str, str, str]] = []
    connection = sqlite3.connect(path)
    batch = []
    for i in range(rows):
        kind = kinds[i % len(kinds)]
        at = start + timedelta(seconds=i * step)
        version = "v1" if i < rows // 2 else "v2"
        entity_id, request_id = f"{kind.entity_type[0].upper()}{i}", uuid.uuid4().hex
        decision = rng.choices(outcomes, weights)[0]
        batch.append((request_id, at.isoformat(sep=" "), kind.entity_type, entity_id, decision, rng.random(),
                      f"{kind.name}:{version}", json.dumps([{"code": "model_score", "detail": "score 0.7"}]),
                      _inputs(kind, entity_id, rng), uuid.uuid4().hex))
        if decision == "review" and rng.random() < 0.2:
            reviews.append((kind.entity_type, entity_id, request_id, f"{kind.name}:{version}"))
        if len(batch) == 50_000:
            _insert(connection, batch)
            batch = []
    _insert(connection, batch)
    feedback = [(datetime.now(UTC).isoformat(sep=" "), t, e, r, None, m, rng.choice(["ok", "inferior"]),
                 f"reviewer{rng.randrange(5)}", "") for t, e, r, m in reviews[:verdicts]]
    connection.executemany("INSERT INTO feedback (at, entity_type, entity_id, request_id, segment_index, model, "
                           "label, reviewer, note) VALUES (?,?,?,?,?,?,?,?,?)", feedback)
    connection.commit()
    connection.close()
    return time.perf_counter() - started


def _insert(connection: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
    connection.executemany("INSERT INTO decision_log (request_id, at, entity_type, entity_id, decision, score, model, "
                           "reasons, inputs, record_id) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
    connection.commit()


def timed(function: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of ``function`` over ``repeat`` runs (after one warm-up)."""
    function()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 2)


def throughput(engine: Any, file_format: str, **filters: Any) -> dict[str, float]:
    """Rows per second of a streamed export of ``filters``' decisions."""
    from sqlalchemy import func, select

    from serving.decision_queries import decision_query

    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(decision_query(**filters).subquery())).scalar_one()
    started, size = time.perf_counter(), 0
    for chunk in export_decisions(engine, file_format, **filters):
        size += len(chunk)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds), "mib": round(size / 2**20, 1)}


def measure(engine: Any, repeat: int) -> dict[str, float]:
    """Median milliseconds of each page's queries."""
    now = datetime.now(UTC)
    kind = next(iter(MODEL_KINDS.values()))
    stream = next(k for k in MODEL_KINDS.values() if k.multi_label)
    deep = queries.search_page(engine, None)
    oldest_id = 50  # the deepest keyset page: just after the first rows
    review_id = queries.queue_page(engine, "newest", None).rows[0]["id"]
    some = queries.search_page(engine, None, model=kind.name).rows[0]
    return {
        "queue_newest": timed(lambda: queries.queue_page(engine, "newest", None), repeat),
        "queue_highest_score": timed(lambda: queries.queue_page(engine, "score", None), repeat),
        "queue_filtered_type_model_week": timed(lambda: queries.queue_page(
            engine, "newest", None, entity_type=kind.entity_type, model=kind.name, since=now - timedelta(days=7)),
            repeat),
        "queue_category": timed(lambda: queries.queue_page(engine, "newest", None, category=stream.categories[0]),
                                repeat),
        "queue_deep_page": timed(lambda: queries.queue_page(engine, "newest", (0.0, review_id - 500_000)), repeat),
        "review_load_24h": timed(lambda: queries.review_load(engine, now - timedelta(days=1), now), repeat),
        "search_all": timed(lambda: queries.search_page(engine, None), repeat),
        "search_model_version_decision_range": timed(lambda: queries.search_page(
            engine, None, model=f"{kind.name}:v2", decision="block", since=now - timedelta(days=10),
            until=now - timedelta(days=3)), repeat),
        "search_deep_keyset_page": timed(lambda: queries.search_page(engine, oldest_id + 50), repeat),
        "search_entity": timed(lambda: queries.search_page(engine, None, entity=some["entity_id"]), repeat),
        "search_request_id": timed(lambda: queries.search_page(engine, None, request_id=some["request_id"]), repeat),
        "decision_page": timed(lambda: decision_view(engine, review_id), repeat),
        "chart_daily_outcomes_one_model": timed(lambda: queries.daily_outcomes(engine, kind.name, DAYS, now), 1),
        "chart_reviews_and_agreement": timed(lambda: review_stats.reviewer_agreement(queries.reviewed_decisions(engine)),
                                             1),
        "_check_rows_on_first_search_page": len(deep.rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--verdicts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopguard-console-bench-") as folder:
        path = Path(folder) / "shopguard.db"
        fill_seconds = fill(path, args.rows, args.verdicts)
        engine = make_engine(f"sqlite:///{path}")
        kind = next(iter(MODEL_KINDS.values()))
        print(json.dumps({
            "rows": args.rows, "verdicts": args.verdicts, "fill_seconds": round(fill_seconds, 1),
            "database_mib": round(os.path.getsize(path) / 2**20, 1),
            "median_ms": measure(engine, args.repeat),
            "export_csv": throughput(engine, "csv", model=kind.name),
            "export_parquet": throughput(engine, "parquet", model=kind.name),
        }, indent=2))


if __name__ == "__main__":
    main()
