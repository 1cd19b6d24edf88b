"""The live-room ladder measured on whole held-out real broadcasts, and its defaults chosen
without reading the rooms they are judged on.

Every labelled ``live_asr`` sentence carries the decision of a false-marketing run that never
saw its room (``heldout_segments.parquet`` of a ``--real`` training run). Each room is replayed
as a broadcast through the enforcement engine (``training/room_replay.py``) under a family of
ladders (window, review weight, rungs), then:

- **cross-fitted choice**: the rooms are split in two halves by the training run's room folds;
  the ladder that does best on one half (lexicographic: fewest clean-only broadcasts acted on,
  then most rooms with dozens of violations acted on and stopped, then fewest actions resting
  on clean speech) is judged on the other half, and the other way round;
- the shipped policy's figures on all rooms.

Every ladder keeps "a host repeating a blocking claim in every chunk is stopped within six
chunks" (the stop rung needs at most 6 blocks' weight).

    SHOPGUARD_HOME=.shopguard .venv/bin/python benchmarks/room_ladder.py [--segments FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

WINDOWS = (100, 150, 200, 250)
REVIEW_WEIGHTS = (0.0, 0.1, 0.25)
RUNGS = (((2, 1), (4, 2), (6, 4)), ((2, 2), (4, 3), (6, 3)), ((2, 2), (4, 3), (6, 4)), ((3, 2), (4, 3), (6, 3)),
         ((3, 3), (5, 3), (6, 4)), ((2, 2), (4, 2), (6, 3)))


def candidates(base: Any) -> list[Any]:
    """The ladders tried: every window x review weight x rungs of the family."""
    from policy.document import PolicyDocument

    out = []
    for window, review, rungs in itertools.product(WINDOWS, REVIEW_WEIGHTS, RUNGS):
        data = base.model_dump()
        data["name"] = f"ladder-w{window}-r{review}-" + "-".join(f"{w}x{b}" for w, b in rungs)
        data["rooms"] = {**data["rooms"], "window_segments": window, "review_weight": review,
                         "rungs": [{"action": a, "weight": w, "blocks": b}
                                   for a, (w, b) in zip(("warn", "restrict", "stop"), rungs, strict=True)]}
        out.append(PolicyDocument.model_validate(data))
    return out


def figures(results: list[Any]) -> dict[str, Any]:
    """What a ladder did to a set of rooms."""
    acted = [r for r in results if r.action != "none"]
    dozens = [r for r in results if r.violating >= 24]
    fewer = [r for r in results if r.violating < 10]
    return {"rooms": len(results),
            "clean_only_acted_on": sum(r.clean_only_action != "none" for r in results),
            "dozens_rooms": len(dozens), "dozens_acted_on": sum(r.action != "none" for r in dozens),
            "dozens_stopped": sum(r.action == "stop" for r in dozens),
            "fewer_than_10_acted_on": f"{sum(r.action != 'none' for r in fewer)} of {len(fewer)}",
            "acted_on": len(acted), "resting_on_clean": sum(r.rests_on_clean for r in acted)}


def rank(f: dict[str, Any]) -> tuple:
    """Higher is better."""
    return (-f["clean_only_acted_on"], f["dozens_acted_on"] + f["dozens_stopped"], -f["resting_on_clean"])


def main() -> None:
    import pandas as pd

    from common.settings import load_settings
    from kinds.false_marketing.pipeline import heldout_segments_file
    from policy.document import load_policy
    from registry.store import ModelRegistry
    from training.data.real_text import require_shared_data
    from training.room_replay import broadcast_order, replay_room

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=Path, default=None, help="heldout_segments.parquet (default: production's)")
    parser.add_argument("--chunk-sentences", type=int, default=5)
    args = parser.parse_args()
    settings = load_settings()
    path = args.segments or heldout_segments_file(settings.home,
                                                  ModelRegistry(settings).resolve("false-marketing:production"))
    segments = pd.read_parquet(path)
    order = broadcast_order(require_shared_data())
    frame = segments.merge(order[["sha256", "order"]], on="sha256").sort_values(["room", "order"])
    rooms = {name: rows.reset_index(drop=True) for name, rows in frame.groupby("room")}
    half = {name: int(rows["fold"].iloc[0]) % 2 for name, rows in rooms.items()}
    shipped = load_policy(settings.policy)
    began = time.perf_counter()
    per_policy = {}
    for policy in candidates(shipped):
        per_policy[policy.name] = (policy, {name: replay_room(rows, policy, args.chunk_sentences)
                                            for name, rows in rooms.items()})
    crossfit = []
    for chosen_on in (0, 1):
        def on(side: int, results: dict[str, Any]) -> dict[str, Any]:
            return figures([r for name, r in results.items() if half[name] == side])

        best = max(per_policy, key=lambda n: rank(on(chosen_on, per_policy[n][1])))
        crossfit.append({"chosen_on_half": chosen_on, "ladder": per_policy[best][0].rooms.model_dump(),
                         "on_its_own_half": on(chosen_on, per_policy[best][1]),
                         "on_the_other_half": on(1 - chosen_on, per_policy[best][1])})
    shipped_results = [replay_room(rows, shipped, args.chunk_sentences) for rows in rooms.values()]
    best_all = max(per_policy, key=lambda n: rank(figures(list(per_policy[n][1].values()))))
    print(json.dumps({
        "benchmark": "room_ladder", "segments": str(path), "rooms": len(rooms), "ladders_tried": len(per_policy),
        "seconds": round(time.perf_counter() - began, 1), "crossfit": crossfit,
        "shipped": {"policy": shipped.version, "ladder": shipped.rooms.model_dump(),
                    "all_rooms": figures(shipped_results)},
        "best_on_all_rooms": {"ladder": per_policy[best_all][0].rooms.model_dump(),
                              "all_rooms": figures(list(per_policy[best_all][1].values()))},
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
