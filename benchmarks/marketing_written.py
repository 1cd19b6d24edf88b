"""Minimal pairs written for this project, added to a generated transcripts file.

``benchmarks/data/written_pairs.jsonl.gz`` holds 1,000 pairs of sentences written on
2026-12-07 by three writers (project helpers working from the labelling guide's definitions
alone, without reading any data file): one host sentence that violates (efficacy claims in
ordinary words for supplements and food, or for cosmetics and home devices; guarantees,
reference prices and endorsements) and one lawful sentence about the same product with
overlapping words. Two annotators then labelled all 2,000 blind from
``training/data/annotations/GUIDE.md``; each row keeps the writer's and both annotators' labels.

This script writes ``--data`` plus the agreed rows (both annotators and the writer agree on
violating or clean; labels = the categories both annotators chose) as generated talk (source
``synthetic``, one stream id per pair; the trainer splits generated rows by segment, so the two
halves of a pair may land in different splits, which touches only the synthetic test figures).
Train on the output as usual and compare the cards; prints one JSON line with what was added.

    .venv/bin/python benchmarks/marketing_written.py --data data/transcripts.parquet \\
        --out data/transcripts_written.parquet [--sets claims]
    .venv/bin/shopguard train false-marketing --data data/transcripts_written.parquet --real data/live_asr.jsonl \\
        --base-model .shopguard/base_models/<base>
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections import Counter
from pathlib import Path

import pandas as pd

PAIRS = Path(__file__).resolve().parent / "data" / "written_pairs.jsonl.gz"
SETS = ("supplements", "cosmetics", "claims")


def read_pairs(path: Path = PAIRS) -> list[dict]:
    """Every written sentence with its set, pair, product and the three label lists, in the
    seeded order the annotators saw them (the order of the rows changes the trainer's split)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    rows.sort(key=lambda r: (SETS.index(r["set"]), r["pair"], not r["labels_writer"]))
    random.Random(7).shuffle(rows)
    return rows


def agreed(rows: list[dict]) -> list[dict]:
    """The rows whose writer and two annotators agree on violating or clean, with the
    categories both annotators chose (a violating row without a shared category is left out)."""
    kept = []
    for row in rows:
        a, b, writer = set(row["labels_a"]), set(row["labels_b"]), set(row["labels_writer"])
        if bool(a) == bool(b) == bool(writer) and (not a or a & b):
            kept.append({**row, "labels": sorted(a & b)})
    return kept


def with_written(frame: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """``frame`` (a generated transcripts file) plus ``rows`` as generated talk."""
    extra = pd.DataFrame({
        "stream_id": [f"W-{r['set']}-{r['pair']}" for r in rows], "segment_index": 0, "start_ms": 0, "end_ms": 0,
        "vertical": "written", "text": [r["text"] for r in rows], "labels": ["|".join(r["labels"]) for r in rows],
        "evasion": False, "hard_negative": [not r["labels"] for r in rows], "source": "synthetic"})
    return pd.concat([frame, extra], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a generated transcripts file (parquet)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the file with the written rows")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated sets to add, of {', '.join(SETS)}")
    args = parser.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        parser.error(f"--sets: unknown set(s) {', '.join(unknown)}; the sets are {', '.join(SETS)}")
    if not args.data.is_file():
        parser.error(f"--data: {args.data} is not a file; write one with `shopguard data generate transcripts`")
    rows = [r for r in read_pairs() if r["set"] in sets]
    kept = agreed(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with_written(pd.read_parquet(args.data), kept).to_parquet(args.out)
    labels = Counter("|".join(r["labels"]) or "clean" for r in kept)
    print(json.dumps({"sets": sets, "written": len(rows), "agreed": len(kept), "labels": dict(labels.most_common()),
                      "out": str(args.out)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
