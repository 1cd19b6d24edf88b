"""The data of a ``false-marketing`` run: labelled segment files read into ``MarketingData``
(generated rows and real rows grouped by room), the seeded stratified split of the generated
rows, and the rows one training run sees (loss weights, known categories, disguised copies of
violating real rows)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.words import counted
from features.marketing import MARKETING_CATEGORIES
from features.text import normalize_many
from kinds.false_marketing.config import FalseMarketingConfig
from training.data.evasions import evasion_rows
from training.data.loaders import DataValidationError, read_table, row_name
from training.pipeline import split_rows
from training.row_identity import text_key
from training.splits import Splits

# One training run's rows: texts, labels, loss weights, known-category masks (None: all
# known; one row per segment or one for all), real-row marks.
TrainingRowsOf = tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]


@dataclass
class MarketingData:
    """Segments and their multi-label truth (rows x ``MARKETING_CATEGORIES``)."""

    texts: list[str]
    labels: np.ndarray
    source: Path | None = None
    known_categories: np.ndarray | None = None  # 0/1 per category; None = all labelled
    evasion: np.ndarray | None = None  # True where the generator disguised a claim
    sources: np.ndarray | None = None  # where each row came from (generator's `source`)
    groups: np.ndarray | None = None  # real rows: their group (room); None for generated rows
    files: list[tuple[Path, int, bool]] = field(default_factory=list)  # (file, rows, real)

    @property
    def real(self) -> np.ndarray:
        """True for the rows of real labelled files (those with a group)."""
        if self.groups is None:
            return np.zeros(len(self.texts), dtype=bool)
        return np.array([g is not None for g in self.groups], dtype=bool)



def _parse_labels(value: Any, path: Path, row: int, column: str) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    items = list(value) if isinstance(value, list | tuple | np.ndarray) else \
        [v for v in str(value).replace(",", "|").split("|")]
    items = [str(v).strip() for v in items if str(v).strip()]
    unknown = [v for v in items if v not in MARKETING_CATEGORIES]
    if unknown:
        raise DataValidationError(
            f"{path}: column {column!r}, {row_name(path, row)}: unknown category {unknown[0]!r}; categories are "
            f"{', '.join(MARKETING_CATEGORIES)}.", field=column)
    return items


def load_marketing_file(path: Path, binary_category: str | None = None) -> MarketingData:
    """Read segments with ``text`` and multi-label ``labels`` (a list, or categories joined
    by | or ,), or with a binary ``label`` mapped to ``binary_category``."""
    frame = read_table(path)
    label_column = "label" if binary_category else "labels"
    missing = [c for c in ("text", label_column) if c not in frame.columns]
    if missing:
        hint = " (or pass a binary `label` column with --binary-category)" if not binary_category else ""
        raise DataValidationError(f"{path}: missing column(s) {', '.join(missing)}{hint}.",
                                  field=missing[0])
    texts = frame["text"]
    empty = texts.isna() | (texts.astype(str).str.strip() == "")
    if empty.any():
        raise DataValidationError(f"{path}: column 'text' is empty in {row_name(path, int(np.flatnonzero(empty)[0]))}.",
                                  field="text")
    labels = np.zeros((len(frame), len(MARKETING_CATEGORIES)), dtype=np.float32)
    if binary_category:
        if binary_category not in MARKETING_CATEGORIES:
            raise DataValidationError(f"--binary-category {binary_category!r} is not one of "
                                      f"{', '.join(MARKETING_CATEGORIES)}.", field="--binary-category")
        values = pd.to_numeric(frame["label"], errors="coerce")
        if values.isna().any() or not values.isin([0, 1]).all():
            raise DataValidationError(f"{path}: column 'label' must hold 0/1.", field="label")
        labels[:, MARKETING_CATEGORIES.index(binary_category)] = values.to_numpy()
        known = np.zeros(len(MARKETING_CATEGORIES), dtype=np.float32)
        known[MARKETING_CATEGORIES.index(binary_category)] = 1.0
        return MarketingData(texts.astype(str).tolist(), labels, path, known)
    for row, value in enumerate(frame["labels"]):
        for category in _parse_labels(value, path, row, "labels"):
            labels[row, MARKETING_CATEGORIES.index(category)] = 1.0
    evasion = frame["evasion"].fillna(False).astype(bool).to_numpy() if "evasion" in frame.columns else None
    sources = frame["source"].astype(str).to_numpy() if "source" in frame.columns else None
    return MarketingData(texts.astype(str).tolist(), labels, path, evasion=evasion, sources=sources)


def segment_strata(labels: np.ndarray, min_rows: int = 10) -> np.ndarray:
    """Each segment's stratum: 0 when clean, else 1 + its first category; clean vs not when
    a category has fewer than ``min_rows`` segments."""
    key = np.where(labels.any(axis=1), labels.argmax(axis=1) + 1, 0)
    if np.bincount(key).astype(float)[np.bincount(key) > 0].min() < min_rows:
        key = labels.any(axis=1).astype(int)
    return key


def split_segments(labels: np.ndarray, config: FalseMarketingConfig) -> Splits:
    """Seeded split stratified by each segment's first category (or 'clean')."""
    return split_rows(segment_strata(labels), config, "labels")



def load_training_data(data: Sequence[Path], real: Sequence[Path] = (), binary_category: str | None = None,
                       group_column: str | None = None,
                       warn: Callable[[str], None] | None = None) -> MarketingData:
    """The rows of every ``data`` file (generated or any labelled text, split at random) and
    every ``real`` file (labelled real text, held out by group): a real file's rows are grouped
    by ``group_column`` (default ``room``: each row's room, source or month), or by the file's
    name when it has no such column (a column named explicitly must be there). A ``data`` row
    whose text a ``real`` file holds is left out, said through ``warn``: it would train every
    fold that holds its real copy out, and make the held-out figures those of seen rows."""
    parts = [load_marketing_file(path, binary_category) for path in data]
    real_parts = []
    for path in real:
        part = load_marketing_file(path)
        frame = read_table(path)
        if group_column is not None and group_column not in frame.columns:
            raise DataValidationError(f"{path}: no column {group_column!r} to group rows by (--group-column); "
                                      f"its columns are {', '.join(map(str, frame.columns))}", field="--group-column")
        column = group_column or "room"
        names = (frame[column].astype(str).to_numpy() if column in frame.columns
                 else np.full(len(frame), path.stem))
        part.groups = names.astype(object)
        part.sources = np.full(len(frame), f"real:{path.stem}", dtype=object) if part.sources is None \
            else np.array([f"real:{s}" for s in part.sources], dtype=object)
        real_parts.append(part)
    if real_parts:
        held_out = {text_key(t) for part in real_parts for t in part.texts}
        parts = [_without(part, held_out, path, warn) for part, path in zip(parts, data, strict=True)]
        if data and not any(len(part.texts) for part in parts):
            raise DataValidationError("every --data row is also in a --real file: --data takes the rows split at "
                                      "random (generated or other labelled text), --real the rows held out by "
                                      "group; give each file once", field="--data")
    parts += real_parts
    if not parts:
        raise DataValidationError("no training file: pass --data FILE (and --real FILE for real labelled text).",
                                  field="--data")
    return _concatenate(parts, [(p, False) for p in data] + [(p, True) for p in real])


def _without(part: MarketingData, texts: set[str], path: Path, warn: Callable[[str], None] | None
             ) -> MarketingData:
    """``part`` less its rows whose text (``text_key``) is in ``texts``, said through ``warn``."""
    keep = np.array([text_key(t) not in texts for t in part.texts], dtype=bool)
    if keep.all():
        return part
    if warn is not None:
        warn(f"{path}: {counted(int((~keep).sum()), 'row')} whose text a --real file holds left out of the "
             "randomly split rows (the real copy is held out by group and trained on as real text)")
    rows = np.flatnonzero(keep)
    return dataclasses.replace(
        part, texts=[part.texts[i] for i in rows], labels=part.labels[rows],
        evasion=part.evasion[rows] if part.evasion is not None else None,
        sources=part.sources[rows] if part.sources is not None else None,
        groups=part.groups[rows] if part.groups is not None else None)


def _concatenate(parts: list[MarketingData], files: list[tuple[Path, bool]]) -> MarketingData:
    """One ``MarketingData`` of several files (a category unknown in one file is unknown in all)."""
    if len(parts) == 1 and not files[0][1]:
        parts[0].files = [(files[0][0], len(parts[0].texts), False)]
        return parts[0]
    n = [len(p.texts) for p in parts]

    def column(name: str, default: Any) -> np.ndarray:
        return np.concatenate([getattr(p, name) if getattr(p, name) is not None else np.full(k, default, dtype=object)
                               for p, k in zip(parts, n, strict=True)])

    known = None
    if any(p.known_categories is not None for p in parts):  # per row: each file knows its own categories
        known = np.vstack([np.broadcast_to(p.known_categories if p.known_categories is not None
                                           else np.ones(len(MARKETING_CATEGORIES), dtype=np.float32),
                                           (k, len(MARKETING_CATEGORIES))) for p, k in zip(parts, n, strict=True)])
    return MarketingData(
        texts=[t for p in parts for t in p.texts], labels=np.vstack([p.labels for p in parts]),
        source=files[0][0], known_categories=known,
        evasion=column("evasion", False).astype(bool), sources=column("sources", "file"),
        groups=column("groups", None), files=[(path, k, is_real) for (path, is_real), k in zip(files, n, strict=True)])


def training_rows(config: FalseMarketingConfig, data: MarketingData, rows: np.ndarray, texts: list[str]
                  ) -> TrainingRowsOf:
    """Texts, labels, loss weights, known-category masks and real-row marks of ``rows`` (with
    the disguised copies of its violating real rows: ``with_evasions``)."""
    weights = np.where(data.real[rows], config.real_weight, config.generated_weight)
    known = data.known_categories
    if known is not None and known.ndim == 2:
        known = known[rows]
    chosen = ([texts[i] for i in rows], data.labels[rows], weights.astype(np.float32), known, data.real[rows])
    return with_evasions(config, data, rows[data.real[rows]], chosen)


def with_evasions(config: FalseMarketingConfig, data: MarketingData, real_rows: np.ndarray,
                  chosen: TrainingRowsOf) -> TrainingRowsOf:
    """``chosen`` plus ``evasion_copies`` disguised copies of each violating real row
    (``training.data.evasions``), weighted as real rows; a copy that normalization turns
    back into its original (traditional characters, punctuation fillers) is left out."""
    copies = config.evasion_copies
    if not copies or not len(real_rows):
        return chosen
    raw = [data.texts[i] for i in real_rows]
    evaded, labels = evasion_rows(raw, data.labels[real_rows], copies, config.seed)
    originals = set(normalize_many(raw))
    normalized = normalize_many(evaded)
    keep = [i for i, text in enumerate(normalized) if text and text not in originals]
    if not keep:
        return chosen
    texts, row_labels, weights, known, real = chosen
    extra_known = None if known is None or known.ndim == 1 else np.ones((len(keep), known.shape[1]), known.dtype)
    return ([*texts, *[normalized[i] for i in keep]], np.vstack([row_labels, labels[keep]]),
            np.concatenate([weights, np.full(len(keep), config.real_weight, np.float32)]),
            known if extra_known is None else np.vstack([known, extra_known]),
            np.concatenate([real, np.ones(len(keep), dtype=bool)]))
