"""Which rows trained a version: each bundle records a hash of every training row, so the
promotion gate and ``evaluate`` can tell training rows in any file, by row, not by file.

A row's identity is its **key**: for the text kinds the text itself, NFKC-normalized with
white space collapsed (a listing's title, a segment's text); for merchant-risk the merchant
id as the service compares it (``features.ids.merchant_key``). The merchant is the unit: a
re-export of a training merchant with refreshed aggregates is still that merchant, whose label
the model learned (and which entered its neighbours' graph features), so a hash of its feature
values would miss it, as it would miss a copy whose floats were rounded on the way through a
spreadsheet; the id survives both, and a subset of a training file keeps its ids.

Keys are hashed with BLAKE2b to 8 bytes (stable across processes, unlike ``hash()``) and
stored as a sorted array of distinct ``uint64`` in ``training_rows.npy`` (NumPy's own format,
read with ``allow_pickle=False``). The file is an ordinary bundle file: listed in the manifest
with its sha256 and verified at every load. Bundles written before it existed have none.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import ShopGuardError
from common.words import counted
from features.ids import merchant_key

TRAINING_ROWS_FILE = "training_rows.npy"
TEXT_IDENTITY = "NFKC-normalized text, white space collapsed; BLAKE2b-64"
MERCHANT_IDENTITY = "merchant id (NFKC, format characters removed, trimmed, case-folded); BLAKE2b-64"


def text_key(text: str) -> str:
    """A text as row identity: NFKC-normalized, runs of white space made one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).split())


def text_keys(texts: Iterable[Any]) -> list[str]:
    """``text_key`` of every text."""
    return [text_key(t) for t in texts]


def merchant_keys(ids: Iterable[Any]) -> list[str]:
    """Merchant ids as row identity (the service's comparison form)."""
    return [merchant_key(str(i)) for i in ids]


def row_hashes(keys: Iterable[str]) -> np.ndarray:
    """One 64-bit BLAKE2b hash per key, in order (``uint64``)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(k.encode("utf-8"), digest_size=8).digest(), "big")
                        for k in keys), dtype=np.uint64)


def training_row_set(keys: Iterable[str]) -> np.ndarray:
    """The sorted, distinct hashes of a run's training rows: what a bundle stores."""
    return np.unique(row_hashes(keys))


@dataclass(frozen=True)
class TrainingRows:
    """A run's training rows as a bundle records them: sorted distinct hashes, how many rows
    they came from and what identity was hashed."""

    hashes: np.ndarray
    rows: int
    identity: str

    @classmethod
    def of(cls, keys: list[str], identity: str) -> TrainingRows:
        """The record of the rows with these keys (every row the run read: all its splits)."""
        return cls(training_row_set(keys), len(keys), identity)

    def write(self, folder: Path) -> Path:
        """Write the hashes into a bundle's staging folder."""
        path = folder / TRAINING_ROWS_FILE
        np.save(path, self.hashes, allow_pickle=False)
        return path

    def details(self) -> dict[str, Any]:
        """What the manifest's run facts say about them."""
        return {"file": TRAINING_ROWS_FILE, "identity": self.identity, "rows": self.rows,
                "distinct": int(len(self.hashes))}


def read_training_rows(bundle_dir: Path, files: Iterable[str]) -> np.ndarray | None:
    """A verified bundle's training-row hashes, or None when it records none (written before
    ShopGuard recorded them). ``files``: the names its manifest lists."""
    if TRAINING_ROWS_FILE not in set(files):
        return None
    hashes = np.load(bundle_dir / TRAINING_ROWS_FILE, allow_pickle=False)
    if hashes.dtype != np.uint64 or hashes.ndim != 1:
        raise ShopGuardError(f"{bundle_dir / TRAINING_ROWS_FILE}: expected a 1-D uint64 array, found "
                             f"{hashes.dtype} {hashes.shape}; re-register the model from its training run.")
    return hashes


def file_keys(path: Path, column: str, to_keys: Callable[[Iterable[Any]], list[str]]) -> list[str]:
    """Each row's key in a file, read from its ``column``."""
    from training.data.loaders import DataValidationError, read_table

    frame = read_table(path)
    if column not in frame.columns:
        raise DataValidationError(f"{path.name}: missing column {column!r}.", field=column)
    return to_keys(frame[column].tolist())


def rows_in(hashes: np.ndarray, training: np.ndarray) -> np.ndarray:
    """True for each of ``hashes`` that is in the sorted ``training`` set."""
    if not len(training):
        return np.zeros(len(hashes), dtype=bool)
    at = np.minimum(np.searchsorted(training, hashes), len(training) - 1)
    return training[at] == hashes


@dataclass(frozen=True)
class TrainingOverlap:
    """How much of a file trained one version: ``overlapping`` of its ``rows`` by row
    (None when the version records no row hashes), and whether the file is byte for byte
    one of its training files (sha256, the only check older versions allow)."""

    tag: str
    rows: int
    overlapping: int | None
    whole_file: bool

    @property
    def overlaps(self) -> bool:
        """Whether the file holds training rows of the version (by row, else by whole file)."""
        return bool(self.overlapping) if self.overlapping is not None else self.whole_file

    def describe(self) -> str:
        """``N of M rows`` (or the whole-file finding of an older version)."""
        if self.overlapping is not None:
            return f"{self.overlapping:,} of {counted(self.rows, 'row')}"
        return "the whole file (same sha256 as a training file)" if self.whole_file else "none found by whole file"

    def older_note(self) -> str | None:
        """What could not be checked for a version without row hashes, else None."""
        if self.overlapping is not None:
            return None
        return (f"{self.tag} records no training-row hashes (registered before ShopGuard recorded them): only "
                "whole-file identity (sha256 of its training files) was checked for it, so rows copied out of "
                "its training files go unnoticed; retrain it to record them.")
