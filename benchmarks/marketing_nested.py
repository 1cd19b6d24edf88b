"""Are the card's held-out-room figures what the whole training procedure gives on rooms it
never saw? Nested room folds: the labelled rooms are split into ``--outer`` groups; for each,
``shopguard train false-marketing`` runs on the other rooms (its own cross-fitting, thresholds,
review budget and served model, exactly as ``make train-demo``), and ``shopguard evaluate``
decides the held-back rooms with that served model. The pooled outer figures are then set
beside the card's cross-fitted ones on the same rooms (``heldout_segments.parquet`` of a
training run on all rooms, ``--segments``).

Each outer fold is one full training (about 4 minutes on 2 cores with a cached base encoder).
Writes its files under ``--work`` and prints one JSON line per outer fold and one pooled.

    SHOPGUARD_HOME=.shopguard .venv/bin/python benchmarks/marketing_nested.py \\
        --data data/transcripts.parquet --real data/live_asr.jsonl \\
        --base-model .shopguard/base_models/<base> --segments <heldout_segments.parquet> --work /tmp/nested
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SHOPGUARD = [sys.executable, "-m", "shopguard.cli"]


def outer_folds(real: pd.DataFrame, folds: int, seed: int) -> pd.Series:
    """Each row's outer fold: whole rooms, dealt out in a seeded random order."""
    rooms = np.random.default_rng(seed).permutation(sorted(real["room"].unique()))
    return real["room"].map({room: i % folds for i, room in enumerate(rooms)})


def counts(violating: np.ndarray, flagged: np.ndarray, blocked: np.ndarray) -> dict[str, int]:
    """What pooled figures are made of."""
    return {"violating": int(violating.sum()), "flagged": int(flagged.sum()), "caught": int((flagged & violating).sum()),
            "clean": int((~violating).sum()), "clean_flagged": int((flagged & ~violating).sum()),
            "blocked": int(blocked.sum()), "blocked_right": int((blocked & violating).sum())}


def figures(c: dict[str, int]) -> dict[str, float]:
    """F1, recall, clean flagged and blocks right from ``counts``."""
    return {"f1": round(2 * c["caught"] / max(1, c["violating"] + c["flagged"]), 4),
            "recall": round(c["caught"] / max(1, c["violating"]), 4),
            "clean_flagged": round(c["clean_flagged"] / max(1, c["clean"]), 4),
            "blocks_right": round(c["blocked_right"] / max(1, c["blocked"]), 4)}


def outer_counts(args: argparse.Namespace, fold: int, train: Path, test: Path) -> dict[str, int]:
    """Train on ``train``'s rooms, then the served decisions of ``test``'s rows, counted from
    ``evaluate --out``'s checks."""
    command = [*SHOPGUARD, "train", "false-marketing", "--data", str(args.data), "--real", str(train),
               "--base-model", str(args.base_model)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    out = args.work / f"outer{fold}_decisions.json"
    subprocess.run([*SHOPGUARD, "evaluate", "false-marketing:candidate", "--data", str(test), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    checks = {c["key"]: c for c in json.loads(out.read_text(encoding="utf-8"))["decisions"]["checks"]}
    caught, flagged, clean, blocks = (checks[k] for k in ("violations_caught", "flag_precision", "clean_flagged",
                                                          "block_precision"))
    return {"violating": caught["rows"], "flagged": flagged["rows"], "caught": caught["count"],
            "clean": clean["rows"], "clean_flagged": clean["count"], "blocked": blocks["rows"],
            "blocked_right": blocks["count"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="generated segments (transcripts.parquet)")
    parser.add_argument("--real", type=Path, required=True, help="labelled real sentences with a room column")
    parser.add_argument("--base-model", type=Path, required=True, help="the cached base encoder")
    parser.add_argument("--segments", type=Path, required=True, help="heldout_segments.parquet of a run on all rooms")
    parser.add_argument("--work", type=Path, required=True, help="folder for the split files and answers")
    parser.add_argument("--outer", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    real = pd.read_json(args.real, lines=True)
    real["outer"] = outer_folds(real, args.outer, args.seed)
    crossfit = pd.read_parquet(args.segments)
    pooled_outer: dict[str, int] = {}
    pooled_inner: dict[str, int] = {}
    for fold in range(args.outer):
        train, test = args.work / f"outer{fold}_train.jsonl", args.work / f"outer{fold}_test.jsonl"
        for path, part in ((train, real[real["outer"] != fold]), (test, real[real["outer"] == fold])):
            part.drop(columns="outer").to_json(path, orient="records", lines=True, force_ascii=False)
        outer = outer_counts(args, fold, train, test)
        inner_rows = crossfit[crossfit["room"].isin(set(real.loc[real["outer"] == fold, "room"]))]
        inner_violating = inner_rows["labels"].ne("").to_numpy()
        inner = counts(inner_violating, inner_rows["decision"].ne("allow").to_numpy(),
                       inner_rows["decision"].eq("block").to_numpy())
        for pooled, part in ((pooled_outer, outer), (pooled_inner, inner)):
            for key, value in part.items():
                pooled[key] = pooled.get(key, 0) + value
        print(json.dumps({"benchmark": "marketing_nested", "outer_fold": fold, "rooms": int(inner_rows["room"].nunique()),
                          "rows": outer["violating"] + outer["clean"], "outer": figures(outer),
                          "cross_fitted_same_rooms": figures(inner)}), flush=True)
    print(json.dumps({"benchmark": "marketing_nested", "pooled": True, "outer": figures(pooled_outer),
                      "cross_fitted_same_rooms": figures(pooled_inner)}), flush=True)


if __name__ == "__main__":
    main()
