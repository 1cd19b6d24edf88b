"""``shopguard batch score --engine ray`` on a generated catalogue with 1 and 2 workers:
rows/s, the scaling ratio and peak memory. Prints JSON.

Needs a production listing-quality model in ``SHOPGUARD_HOME`` (``make train-demo``).
The default is 1,000,000 listings (about 7 minutes per run on 2 cores); ``--rows`` less.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from kinds.listing_quality.generator import (
    ListingGenerationConfig,
    generate_listings,
    to_api_records,
)

ROOT = Path(__file__).resolve().parent.parent


def catalogue(rows: int, folder: Path, files: int = 10) -> str:
    """``rows`` listings in ``files`` Parquet files (a generated base repeated with new ids)."""
    base = pd.DataFrame(to_api_records(generate_listings(ListingGenerationConfig(n=min(rows, 20_000), seed=5))))
    per_file = -(-rows // files)
    for index in range(files):
        part = base.sample(per_file, replace=True, random_state=index).reset_index(drop=True)
        part["listing_id"] = [f"B{index}-{i}" for i in range(len(part))]
        part.to_parquet(folder / f"listings-{index:03d}.parquet", index=False)
    return str(folder / "listings-*.parquet")


def peak_rss_mb(process: subprocess.Popen[bytes], stop: threading.Event, peak: list[float]) -> None:
    """Sample the RSS of the job and all its children (Ray workers included) until stopped."""
    while not stop.is_set():
        try:
            procs = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs) / 2**20)
            peak[1] = max(peak[1], max(p.memory_info().rss for p in procs) / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.5)


def run(pattern: str, output: Path, workers: int) -> dict[str, float]:
    """One ``batch score`` job; its own report plus wall time and peak memory."""
    command = [str(Path(sys.executable).parent / "shopguard"), "batch", "score", "listing-quality", "--input",
               pattern, "--output", str(output), "--engine", "ray", "--workers", str(workers)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stop, peak = threading.Event(), [0.0, 0.0]
    sampler = threading.Thread(target=peak_rss_mb, args=(process, stop, peak))
    sampler.start()
    stdout, _ = process.communicate()
    stop.set()
    sampler.join()
    report = json.loads(stdout[stdout.index(b"{"):])
    wall = time.perf_counter() - started
    return {"workers": workers, "rows": report["scored"], "rows_per_s": report["scored"] / wall,
            "wall_seconds": wall, "peak_rss_mb_all_processes": peak[0], "peak_rss_mb_one_process": peak[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopguard-batch-") as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        pattern = catalogue(args.rows, folder / "in")
        runs = [run(pattern, folder / f"out-{workers}", workers) for workers in (1, 2)]
    print(json.dumps({"benchmark": "batch_scaling", "engine": "ray", "cpu_count": psutil.cpu_count(), "runs": runs,
                      "scaling_2_over_1": runs[1]["rows_per_s"] / runs[0]["rows_per_s"]}, indent=2))


if __name__ == "__main__":
    main()
