"""The README's API examples against a served home: each ``curl`` request is sent and its
answer compared with the answer the README prints beside it. Prints JSON (examples, the
differences of each); exits 1 when any differs.

    shopguard serve --port 3000 &    # the demo home
    python -m benchmarks.readme_examples --url http://localhost:3000 --token-file .shopguard/demo.token

Each run sends the examples under ids of its own (``M1`` as ``M1~3fa2c1``, mapped back before
comparing): the service remembers what ids did (a merchant's violation points, a room's
chunks), and the README shows a first call. Compared: every key the README shows (``"...": "..."`` entries and strings starting with
``...`` stand for what it leaves out), numbers within ``--tolerance``; request ids, model
versions and the enforcement state of the live room and host (which depends on the calls
before) are not compared. ``--shape-only`` checks only that each key the README shows is
answered (for models other than the demo's: the test suite's).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

README = Path(__file__).resolve().parent.parent / "README.md"
OWN_IDS = ("listing_id", "merchant_id", "stream_id", "creator_id")  # a record's own ids (not its links)
NOT_COMPARED = frozenset({"request_id", "room", "creator", "feedback_id"})
# A bash block (never reaching into another block) right followed by a json block.
BLOCK = re.compile(r"```bash\n(?P<bash>(?:(?!```).)*?)```\s*\n```json\n(?P<json>.*?)```", re.S)
CURL = re.compile(r"curl -s localhost:3000(?P<path>/\S+) .*?-d '(?P<body>.*?)'", re.S)


@dataclass(frozen=True)
class Example:
    """One request of the README and the answer it prints."""

    line: int
    path: str
    body: dict[str, Any]
    answer: dict[str, Any]


def readme_examples(text: str) -> list[Example]:
    """Every ``bash`` block with a ``curl`` POST followed by a ``json`` answer block."""
    found = []
    for block in BLOCK.finditer(text):
        curl = CURL.search(block["bash"])
        if curl is None:
            continue
        line = text.count("\n", 0, block.start()) + 1
        found.append(Example(line, curl["path"], json.loads(curl["body"]), json.loads(block["json"])))
    return found


def differences(shown: Any, answered: Any, where: str = "", *, tolerance: float = 0.002,
                shape_only: bool = False) -> list[str]:
    """Where ``answered`` differs from what the README ``shown`` (paths and both values)."""
    if isinstance(shown, dict):
        if not isinstance(answered, dict):
            return [f"{where}: the README shows an object, the service answered {type(answered).__name__}"]
        found = []
        for key, value in shown.items():
            if key == "..." or key in NOT_COMPARED:
                continue
            if key not in answered:
                found.append(f"{where}.{key}: in the README, not in the answer")
            else:
                found += differences(value, answered[key], f"{where}.{key}", tolerance=tolerance,
                                     shape_only=shape_only)
        return found
    if isinstance(shown, list):
        if any(isinstance(v, str) and v.startswith("...") for v in shown) or shape_only and not shown:
            return []
        if not isinstance(answered, list) or (len(answered) != len(shown) and not shape_only):
            return [f"{where}: the README shows {len(shown)} items, the service answered "
                    f"{len(answered) if isinstance(answered, list) else type(answered).__name__}"]
        return [d for i, (s, a) in enumerate(zip(shown, answered, strict=False))
                for d in differences(s, a, f"{where}[{i}]", tolerance=tolerance, shape_only=shape_only)]
    if shape_only:
        return []
    return _value_difference(shown, answered, where, tolerance)


def _value_difference(shown: Any, answered: Any, where: str, tolerance: float) -> list[str]:
    if where.endswith(".model") and isinstance(shown, str) and isinstance(answered, str):
        same = shown.split(":")[0] == answered.split(":")[0]  # the name; the version is the day's
    elif isinstance(shown, float) and isinstance(answered, int | float) and not isinstance(answered, bool):
        same = abs(shown - answered) <= tolerance
    else:
        same = shown == answered
    return [] if same else [f"{where}: README {shown!r}, answered {answered!r}"]


def with_fresh_ids(body: dict[str, Any], suffix: str) -> dict[str, Any]:
    """``body`` with the call's and its records' own ids suffixed (links keep theirs)."""
    def fresh(record: dict[str, Any]) -> dict[str, Any]:
        return {k: f"{v}{suffix}" if k in OWN_IDS and isinstance(v, str) else v for k, v in record.items()}

    return {k: [fresh(r) if isinstance(r, dict) and k != "segments" else r for r in v] if isinstance(v, list)
            else v for k, v in fresh(body).items()}


def check(url: str, token: str, *, tolerance: float, shape_only: bool, text: str | None = None
          ) -> list[dict[str, Any]]:
    """Each example's request sent to ``url``: its status and differences."""
    results = []
    headers = {"Authorization": f"Bearer {token}"}
    for example in readme_examples(text if text is not None else README.read_text(encoding="utf-8")):
        suffix = f"~{uuid.uuid4().hex[:6]}"
        response = httpx.post(f"{url}{example.path}", json=with_fresh_ids(example.body, suffix), headers=headers,
                              timeout=60)
        if response.status_code != 200:
            found = [f"status {response.status_code}: {response.text[:300]}"]
        else:
            answered = json.loads(response.text.replace(suffix, ""))
            found = differences(example.answer, answered, tolerance=tolerance, shape_only=shape_only)
        results.append({"readme_line": example.line, "path": example.path, "differences": found})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:3000")
    parser.add_argument("--token-file", type=Path, default=Path(".shopguard/demo.token"))
    parser.add_argument("--tolerance", type=float, default=0.002, help="largest difference between numbers")
    parser.add_argument("--shape-only", action="store_true", help="compare keys only, not values")
    args = parser.parse_args()
    results = check(args.url, args.token_file.read_text().strip(), tolerance=args.tolerance,
                    shape_only=args.shape_only)
    print(json.dumps({"examples": len(results), "differing": sum(bool(r["differences"]) for r in results),
                      "results": results}, ensure_ascii=False, indent=2))
    sys.exit(1 if any(r["differences"] for r in results) else 0)


if __name__ == "__main__":
    main()
