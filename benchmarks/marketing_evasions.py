"""false-marketing on evaded claims: the production model with evasion resolution off and on
(``features/evasion.py``). Prints JSON.

Held-out real rooms: the real labelled sentences (``shopguard data live-asr`` writes them) are
dealt into 4 room folds exactly as training does (``training.grouped.group_folds``, seed 0);
fold 0 is measured, and the resolver's guards were written looking at the other folds only.
The demo's served model trained on every room (its card's held-out figures come from four
fold runs that are not kept), so the model has seen these rooms: the figures on the original
sentences are optimistic, and the gap between original and evaded sentences is what an unseen
host's evasion costs.

Evasions are generated (seeded) from each violating sentence: a sensitive word in it (a span a
lexicon rule matches, else a word of the resolver's vocabulary, else any two Han characters:
the share of each is reported) is rewritten one way:

- ``homophone``: one character replaced by a common character (GB2312 level 1) of the same
  toneless pinyin;
- ``filler``: a filler inserted between two characters (*, ., space, an emoji, x, 某);
- ``look_alike``: the word in traditional characters, or one character written as a shape
  look-alike from this script's own table;
- ``mask``: one character replaced by 某, *, x or □;
- ``pinyin``: one character written in Latin pinyin.

Flagged = the segment's decision is review or block. Throughput: ``analyze`` of batches of 32
real sentences on CPU without model spans (explain none), best of 3 passes, off and on.

    .venv/bin/python benchmarks/marketing_evasions.py [--real data/live_asr.jsonl] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from features.marketing import match_lexicon
from features.text import normalize_text
from kinds.false_marketing.runtime import FalseMarketingModel
from registry.store import ModelRegistry
from training.data.evasions import KINDS, generate
from training.grouped import group_folds


def flagged(model: FalseMarketingModel, texts: list[str]) -> np.ndarray:
    analyses = []
    for i in range(0, len(texts), 256):
        analyses.extend(model.analyze(texts[i:i + 256], spans_from_model=False))
    return np.array([a.decision != "allow" for a in analyses])


def throughput(model: FalseMarketingModel, texts: list[str]) -> float:
    model.analyze(texts[:32], spans_from_model=False)
    best = 0.0
    for _ in range(3):
        begin = time.perf_counter()
        for i in range(0, len(texts), 32):
            model.analyze(texts[i:i + 32], spans_from_model=False)
        best = max(best, len(texts) / (time.perf_counter() - begin))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, default=Path("data/live_asr.jsonl"))
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=int, default=0, help="at most this many clean sentences (0: all)")
    parser.add_argument("--throughput-rows", type=int, default=1024)
    args = parser.parse_args()
    if not args.real.exists():
        raise SystemExit(f"{args.real} is missing: write it with `shopguard data live-asr` from ../shared/data")
    rows = [json.loads(line) for line in args.real.read_text(encoding="utf-8").splitlines() if line.strip()]
    rooms = np.array([r["room"] for r in rows])
    held = group_folds(rooms, 4, 0)[args.fold]
    violating = [rows[i]["text"] for i in held if rows[i]["labels"]]
    clean = [rows[i]["text"] for i in held if not rows[i]["labels"]]
    if args.limit:
        clean = clean[:args.limit]
    evasions = [vars(e) for e in generate(violating, args.seed)]

    model = FalseMarketingModel.from_bundle(ModelRegistry().load("false-marketing:production"))
    result: dict[str, Any] = {
        "model": model.tag,
        "held_out": {"fold": args.fold, "of": 4, "rooms": int(len(set(rooms[held]))),
                     "violating": len(violating), "clean": len(clean), "evasions": len(evasions),
                     "note": "room fold of training's split; the served demo model trained on every room"},
        "evasion_targets": {s: sum(e["source"] == s for e in evasions) for s in ("lexicon", "vocabulary", "other")},
    }
    for setting in (False, True):
        model.resolve_evasions = setting
        caught = flagged(model, [e["text"] for e in evasions])
        original = flagged(model, violating)
        clean_flags = flagged(model, clean)
        by = {}
        for key, values in (("kind", KINDS), ("source", ("lexicon", "vocabulary", "other"))):
            by[key] = {v: round(float(np.mean([c for c, e in zip(caught, evasions, strict=True) if e[key] == v])), 4)
                       for v in values if any(e[key] == v for e in evasions)}
        originals_caught = original[[e["row"] for e in evasions]]
        result["resolver_on" if setting else "resolver_off"] = {
            "recall_evasions": round(float(caught.mean()), 4),
            "recall_evasions_whose_original_is_caught": round(float(caught[originals_caught].mean()), 4),
            "recall_evasions_by_kind": by["kind"],
            "recall_evasions_by_target": by["source"],
            "recall_original_violating": round(float(original.mean()), 4),
            "clean_flagged": round(float(clean_flags.mean()), 4),
            "clean_texts_changed_by_resolver": (
                int(sum(_resolved(t) != normalize_text(t).text for t in clean)) if setting else 0),
        }
    result["lexicon_rules_only"] = lexicon_only(violating, clean, evasions)
    train = [i for i in range(len(rows)) if i not in set(held.tolist())]
    result["unseen_rooms_proxy_tfidf"] = tfidf_proxy([rows[i]["text"] for i in train],
                                                     np.array([bool(rows[i]["labels"]) for i in train]),
                                                     violating, clean, evasions)
    sample = (clean + violating)[:args.throughput_rows]
    plain = [normalize_text(t).text for t in sample]
    from features.evasion import resolve_plain

    resolve_plain(plain[0])
    begin = time.perf_counter()
    for text in plain:
        resolve_plain(text)
    result["resolver_us_per_segment"] = round((time.perf_counter() - begin) / len(plain) * 1e6, 1)
    speeds = {}
    for setting in (False, True, False, True):  # interleaved, best of each
        model.resolve_evasions = setting
        key = "on" if setting else "off"
        speeds[key] = max(speeds.get(key, 0.0), throughput(model, sample))
    result["segments_per_second_cpu"] = {k: round(v, 1) for k, v in speeds.items()}
    result["throughput_cost"] = round(1 - speeds["on"] / speeds["off"], 4)
    print(json.dumps(result, ensure_ascii=False, indent=2))


def _rates(flag: Any, violating: list[str], clean: list[str], evasions: list[dict[str, Any]]) -> dict[str, Any]:
    caught = np.array([flag(e["text"]) for e in evasions])
    return {"recall_evasions": round(float(caught.mean()), 4),
            "recall_evasions_by_kind": {k: round(float(np.mean([c for c, e in zip(caught, evasions, strict=True)
                                                                 if e["kind"] == k])), 4) for k in KINDS},
            "recall_original_violating": round(float(np.mean([flag(t) for t in violating])), 4),
            "clean_flagged": round(float(np.mean([flag(t) for t in clean])), 4)}


def lexicon_only(violating: list[str], clean: list[str], evasions: list[dict[str, Any]]) -> dict[str, Any]:
    """The lexicon rules alone (no training involved), on the evasions of lexicon targets."""
    from features.evasion import resolve_text

    targets = [e for e in evasions if e["source"] == "lexicon"]
    rows = sorted({e["row"] for e in targets})
    return {"evasions": len(targets),
            "off": _rates(lambda t: bool(match_lexicon(t)), [violating[r] for r in rows], clean, targets),
            "on": _rates(lambda t: bool(match_lexicon(resolve_text(t))), [violating[r] for r in rows], clean,
                         targets)}


def tfidf_proxy(train_texts: list[str], train_labels: np.ndarray, violating: list[str], clean: list[str],
                evasions: list[dict[str, Any]]) -> dict[str, Any]:
    """A model that never saw the held-out rooms: character 1-3-gram TF-IDF + logistic
    regression fitted on the other folds' real sentences, threshold at 5% of their clean
    sentences flagged (in-sample), normalized text in, resolver off vs on."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from features.evasion import resolve_text

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform([normalize_text(t).text for t in train_texts])
    model = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced").fit(features, train_labels)
    threshold = float(np.quantile(model.predict_proba(features[~train_labels])[:, 1], 0.95))
    out = {"threshold_at_5pct_train_clean": round(threshold, 4)}
    for key, prepare in (("off", lambda t: normalize_text(t).text), ("on", lambda t: resolve_text(t).text)):
        def flag(text: str, prepare: Any = prepare) -> bool:
            return bool(model.predict_proba(vectorizer.transform([prepare(text)]))[0, 1] >= threshold)
        out[key] = _rates(flag, violating, clean, evasions)
    return out


def _resolved(text: str) -> str:
    from features.evasion import resolve_text

    return resolve_text(text).text


if __name__ == "__main__":
    main()
