"""The one runtime interface every model kind implements, and the one ``Scores`` it returns.

A runtime is loaded from a verified bundle (``from_bundle``), writes its model files into a
folder (``save``) and scores records (``score``): a sequence of the kind's API records
(pydantic models or plain dicts with the same fields) or a table with those columns. The
service, batch jobs, ``compare``, ``evaluate``, the notebooks and the benchmarks all call it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel

from common.decisions import Decision, Thresholds
from features.reasons import Reason

Explain = Literal["none", "flagged", "all"]
Records = Sequence[BaseModel] | Sequence[Mapping[str, Any]] | pd.DataFrame


@dataclass
class Scores:
    """One result per record, in order: the model's score, its decision (policy step 1, plus
    the lexicon rules for text), its reasons, and for multi-label text models the full
    per-segment analysis (category scores, labels, spans)."""

    scores: np.ndarray
    decisions: list[Decision]
    reasons: list[list[Reason]]
    segments: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def rows(self, start: int, stop: int) -> Scores:
        """The results of records ``start`` to ``stop`` (a batch job answers in chunks)."""
        return Scores(self.scores[start:stop], self.decisions[start:stop], self.reasons[start:stop],
                      None if self.segments is None else self.segments[start:stop])

    @staticmethod
    def joined(parts: Sequence[Scores]) -> Scores:
        """Several results in one, in order."""
        segments = None if any(p.segments is None for p in parts) else [s for p in parts for s in p.segments or []]
        return Scores(np.concatenate([p.scores for p in parts]) if parts else np.zeros(0),
                      [d for p in parts for d in p.decisions], [r for p in parts for r in p.reasons], segments)


class ModelRuntime(Protocol):
    """What every runtime offers (``RuntimeBase`` gives the last four their plain meaning)."""

    tag: str

    @classmethod
    def from_bundle(cls, bundle: Any, *, device: str = "cpu", threads: int = 0) -> Self:
        """Load from a verified bundle (``ModelRegistry.load``); ``threads``: the compute
        threads its library may use (0: the library's default, every core)."""

    def save(self, folder: Path) -> None:
        """Write the model files into ``folder`` (the bundle's staging folder)."""

    def score(self, records: Records, explain: Explain = "flagged") -> Scores:
        """Score records; reasons for review / block results (``flagged``), all or none."""

    def score_groups(self, groups: Sequence[Records], explain: Explain = "flagged") -> list[Scores]:
        """``[self.score(g, explain) for g in groups]``, possibly in shared inference batches
        (the service's micro-batcher hands it the records of concurrent calls)."""

    def score_catalogue(self, records: Sequence[BaseModel], links: pd.DataFrame | None = None) -> Scores:
        """Score a whole file's records at once (a batch job), with ``links`` (src, dst,
        link_type) between them where the kind has links; the same scores as ``score``."""

    def missing_api_fields(self, record: type[BaseModel]) -> list[str]:
        """Inputs this version needs that the API's ``record`` does not carry (a model trained
        on another table's columns cannot be served)."""


class RuntimeBase:
    """The plain meaning of the optional parts of ``ModelRuntime``: groups scored one by one,
    a catalogue scored in chunks of the API's size, every input on the API's record."""

    CATALOGUE_CHUNK = 1000

    def score(self, records: Records, explain: Explain = "flagged") -> Scores:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_groups(self, groups: Sequence[Records], explain: Explain = "flagged") -> list[Scores]:
        """Each group scored alone."""
        return [self.score(group, explain) for group in groups]

    def score_catalogue(self, records: Sequence[BaseModel], links: pd.DataFrame | None = None) -> Scores:
        """The records scored in chunks of ``CATALOGUE_CHUNK`` (``links``: unused here)."""
        size = self.CATALOGUE_CHUNK
        return Scores.joined([self.score(records[i:i + size]) for i in range(0, len(records), size)])

    def missing_api_fields(self, record: type[BaseModel]) -> list[str]:
        """None: the runtime reads the record's fields only."""
        return []


class WorkCancelled(Exception):
    """The work was cancelled (its caller's time budget ran out): raised at a checkpoint."""


_CANCEL_SCOPE = threading.local()


@contextmanager
def cancel_scope(cancelled: Callable[[], bool]) -> Iterator[None]:
    """Within the block, ``check_cancelled()`` on this thread raises ``WorkCancelled`` once
    ``cancelled()`` is true (the service sets it around a batch of callers' work)."""
    previous = getattr(_CANCEL_SCOPE, "cancelled", None)
    _CANCEL_SCOPE.cancelled = cancelled
    try:
        yield
    finally:
        _CANCEL_SCOPE.cancelled = previous


def check_cancelled() -> None:
    """A checkpoint for long work (a runtime calls it between inference batches): raises
    ``WorkCancelled`` when the current ``cancel_scope`` says the work is no longer wanted; a
    no-op outside one (training, batch jobs, notebooks)."""
    cancelled = getattr(_CANCEL_SCOPE, "cancelled", None)
    if cancelled is not None and cancelled():
        raise WorkCancelled("the caller's time budget ran out")


def explain_cut(explain: Explain, thresholds: Thresholds) -> float | None:
    """The lowest score that gets reasons: the review threshold for ``flagged``."""
    return {"none": None, "flagged": thresholds.review, "all": -np.inf}[explain]


def as_rows(records: Records) -> list[dict[str, Any]]:
    """Records as dicts (a table's missing values as None)."""
    if isinstance(records, pd.DataFrame):
        frame = records.astype(object).where(records.notna(), None)
        return frame.to_dict(orient="records")
    return [r.model_dump() if isinstance(r, BaseModel) else dict(r) for r in records]


def as_columns(records: Records, fields: Sequence[str]) -> dict[str, list[Any]]:
    """Records as columns of ``fields`` (absent fields are None)."""
    if isinstance(records, pd.DataFrame):
        return {f: (records[f].astype(object).where(records[f].notna(), None).tolist() if f in records.columns
                    else [None] * len(records)) for f in fields}
    if records and isinstance(records[0], BaseModel):
        return {f: [getattr(r, f, None) for r in records] for f in fields}
    return {f: [r.get(f) for r in records] for f in fields}  # type: ignore[union-attr]
