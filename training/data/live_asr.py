"""Real livestream speech (``../shared/data/live_asr``): sentences, rooms and labels.

The clips are speech-recognition text of real live rooms (April 2025). A clip's paragraph is
cut into sentences at 。？！ (the same cut as the data's README). Labels come from two places,
each given by two independent annotators and kept only where they agree:

- ``labelled.jsonl.gz`` in the shared data (2,551 sentences, 2,441 agreed);
- this project's own annotation rounds (``annotations/live_asr_labels.jsonl.gz``): sentences of
  the same clips that the shared file did not label, labelled by two annotators working
  independently from ``annotations/GUIDE.md``. The file holds the sha256 of each sentence and
  the labels, never the text: the text is read from the clips where they lie.

The **room** is the unit of generalisation: held-out figures group rows by room, never by
random rows of a room that trained the model.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from features.marketing import MARKETING_CATEGORIES

CLIPS_FILE = "live_asr/clips.jsonl.gz"
LABELLED_FILE = "live_asr/labelled.jsonl.gz"
PROJECT_LABELS = Path(__file__).resolve().parent / "annotations" / "live_asr_labels.jsonl.gz"
GROUP_COLUMN = "room"
_SENTENCE_END = re.compile(r"(?<=[。？！])")


def split_sentences(paragraph: str) -> list[str]:
    """A clip's paragraph as sentences, cut after 。？！ (stripped, empty ones dropped)."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def sentence_key(text: str) -> str:
    """The sha256 by which the project's annotation file names a sentence."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@lru_cache(maxsize=2)
def clip_sentences(root: Path) -> pd.DataFrame:
    """Every unique sentence of the clips, first occurrence kept: ``text``, ``room``,
    ``platform``, ``clip``."""
    rows, seen = [], set()
    for clip in _read_jsonl(root / CLIPS_FILE):
        for sentence in split_sentences(clip["text"]):
            if sentence not in seen:
                seen.add(sentence)
                rows.append({"text": sentence, "room": clip["room"], "platform": clip["platform"],
                             "clip": clip["clip"]})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LabelRound:
    """One annotation round: where it comes from and how many sentences both annotators agreed on."""

    name: str
    sentences: int
    agreed: int
    violating: int


def _shared_labels(root: Path) -> pd.DataFrame:
    rows = [r for r in _read_jsonl(root / LABELLED_FILE) if r.get("agreed")]
    frame = pd.DataFrame(rows)[["text", "labels", "room", "platform", "clip"]]
    frame["label_source"] = "shared labelled.jsonl"
    return frame


def _project_labels(root: Path, path: Path = PROJECT_LABELS) -> pd.DataFrame:
    """The project's agreed labels joined to the clip sentences by sha256 (a sentence whose
    text is not in the clips any more is left out)."""
    if not path.is_file():
        return pd.DataFrame(columns=["text", "labels", "room", "platform", "clip", "label_source"])
    labels = {r["sha256"]: r for r in _read_jsonl(path) if r.get("agreed")}
    sentences = clip_sentences(root)
    keys = sentences["text"].map(sentence_key)
    frame = sentences[keys.isin(labels)].copy()
    frame["labels"] = [list(labels[k]["labels"]) for k in keys[keys.isin(labels)]]
    frame["label_source"] = [f"project round {labels[k]['round']}" for k in keys[keys.isin(labels)]]
    return frame


def labelled_sentences(root: Path, project_labels: Path | None = PROJECT_LABELS) -> pd.DataFrame:
    """Agreed labelled sentences: ``text``, ``labels`` (categories joined by ``|``, empty =
    clean), ``room``, ``platform``, ``clip`` and ``label_source``. A sentence labelled in both
    sources keeps the shared label."""
    shared = _shared_labels(root)
    parts = [shared]
    if project_labels is not None:
        project = _project_labels(root, project_labels)
        parts.append(project[~project["text"].isin(set(shared["text"]))])
    frame = pd.concat(parts, ignore_index=True)
    frame["labels"] = frame["labels"].map(_joined)
    return frame.drop_duplicates("text").reset_index(drop=True)


def _joined(labels: list[str]) -> str:
    unknown = [c for c in labels if c not in MARKETING_CATEGORIES]
    if unknown:
        raise ValueError(f"unknown category {unknown[0]!r} in the live_asr labels")
    return "|".join(c for c in MARKETING_CATEGORIES if c in labels)


def unlabelled_sentences(root: Path) -> list[str]:
    """The clip sentences (labelled or not), for pretraining on real spoken language."""
    return clip_sentences(root)["text"].tolist()


def source_files(root: Path) -> dict[str, Path]:
    """The live_asr files, by a short name (for lineage)."""
    return {name: root / relative for name, relative in (("live_asr_clips", CLIPS_FILE),
                                                          ("live_asr_labelled", LABELLED_FILE))
            if (root / relative).is_file()}
