"""Catalogue-wide batch scoring: ``shopguard batch score``.

Reads Parquet, CSV or JSONL files in the API's record shape (listings; merchants, with an
optional links file; stream segments with ``stream_id``), scores them with the same runtime
and the same answer code the service uses (``serving/answers.py``), and writes one Parquet
file of results per input file, plus a rejects file naming each bad row and field.

- The model reference is resolved once; the whole job uses that version.
- ``--engine local`` scores in this process; ``--engine ray`` runs ``ray.data`` with the
  model loaded once per actor (``map_batches`` with a callable class), on the cluster at
  ``--ray-address`` or on a local one started for the job.
- A re-run with the same output folder skips inputs already done (a marker per input
  records its size and modification time).
- Bad rows never abort the job and are never dropped silently: they go to
  ``<input>.rejects.parquet`` with the row number, field and message.
"""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from features.errors import ShopGuardError
from model_registry.kinds import FALSE_MARKETING, MERCHANT_RISK, ModelKind
from serving.answers import (
    BlockedLookup,
    listing_results,
    merchant_results,
    no_blocks,
    stream_answer,
)

READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".parquet": pd.read_parquet, ".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True),
}
DONE_FOLDER = "_done"
RESULT_COLUMNS = ["id", "decision", "score", "reasons", "model", "labels", "spans", "segment_decisions"]


@dataclass
class BatchReport:
    """What a job did."""

    model: str
    files: int = 0
    skipped_files: int = 0
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (rows per second included)."""
        return {**self.__dict__, "rows_per_s": self.scored / self.seconds if self.seconds else None}


def input_files(pattern: str) -> list[Path]:
    """The files a path or glob names, sorted; an error when none is a supported table."""
    paths = [Path(p) for p in sorted(glob.glob(pattern))] or ([Path(pattern)] if Path(pattern).is_file() else [])
    paths = [p for p in paths if p.is_file() and p.suffix in READERS and not p.name.endswith(".rejects.parquet")]
    if not paths:
        raise ShopGuardError(f"--input {pattern!r} names no .parquet, .csv or .jsonl file.")
    return paths


def read_table(path: Path) -> pd.DataFrame:
    """A table with missing values as None."""
    frame = READERS[path.suffix](path)
    return frame.astype(object).where(frame.notna(), None)


def _clean(value: Any) -> Any:
    """A table cell as the API would receive it (numpy scalars to Python, whole floats of
    integer columns to int)."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if hasattr(value, "tolist"):
        value = value.tolist()
    return value


def validate_rows(kind: ModelKind, frame: pd.DataFrame, extra: tuple[str, ...] = ()
                  ) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    """(row number, record) for valid rows, and a reject (row, field, message) for each bad one."""
    fields = set(kind.record.model_fields)
    valid, rejects = [], []
    for number, row in enumerate(frame.to_dict(orient="records")):
        data = {k: _integral(kind, k, _clean(v)) for k, v in row.items() if k in fields and v is not None}
        unknown = [k for k in row if k not in fields and k not in extra]
        try:
            if unknown:
                raise ValueError(f"unknown column {unknown[0]!r}")
            valid.append((number, kind.record.model_validate(data)))
        except ValidationError as exc:
            error = exc.errors()[0]
            rejects.append({"row": number, "field": ".".join(str(p) for p in error["loc"]) or "-",
                            "message": error["msg"], "errors": len(exc.errors())})
        except ValueError as exc:
            rejects.append({"row": number, "field": unknown[0], "message": str(exc), "errors": 1})
    return valid, rejects


def _integral(kind: ModelKind, name: str, value: Any) -> Any:
    """CSV and Parquet store integer columns with gaps as floats: 3.0 -> 3 where the API wants an int."""
    annotation = str(kind.record.model_fields[name].annotation)
    if isinstance(value, float) and value.is_integer() and "int" in annotation and "float" not in annotation:
        return int(value)
    return value


def _reasons(reasons: list[Any]) -> str:
    return json.dumps([r.model_dump() for r in reasons], ensure_ascii=False)


def score_frame(kind: ModelKind, model: Any, frame: pd.DataFrame, blocked: BlockedLookup = no_blocks,
                links: dict[str, list[dict[str, str]]] | None = None, chunk: int = 1000
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and rejects of one table (the unit of work of both engines)."""
    if kind is FALSE_MARKETING:
        return _score_streams(model, frame, blocked)
    if kind is MERCHANT_RISK and links:
        frame = frame.copy()
        frame["links"] = [links.get(str(m), []) if "links" not in frame.columns or v is None else v
                          for m, v in zip(frame["merchant_id"], frame.get("links", [None] * len(frame)), strict=True)]
    valid, rejects = validate_rows(kind, frame)
    rows = []
    for start in range(0, len(valid), chunk):
        records = [record for _, record in valid[start:start + chunk]]
        results = (merchant_results(model, records) if kind is MERCHANT_RISK
                   else listing_results(model, records, blocked))
        rows += [{"id": getattr(r, kind.id_field), "decision": r.decision, "score": r.score,
                  "reasons": _reasons(r.reasons), "model": r.model, "labels": None, "spans": None,
                  "segment_decisions": None} for r in results]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), pd.DataFrame(rejects, columns=["row", "field", "message",
                                                                                       "errors"])


def _score_streams(model: Any, frame: pd.DataFrame, blocked: BlockedLookup) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segments grouped by ``stream_id`` (in file order); a stream with a bad segment is
    rejected whole (its decision would be partial otherwise)."""
    if "stream_id" not in frame.columns:
        rejects = pd.DataFrame([{"row": i, "field": "stream_id", "message": "missing column stream_id", "errors": 1}
                                for i in range(len(frame))])
        return pd.DataFrame(columns=RESULT_COLUMNS), rejects
    extra = ("stream_id", "merchant_id", "segment_index")
    valid, rejects = validate_rows(FALSE_MARKETING, frame, extra)
    bad_streams = {frame["stream_id"].iloc[r["row"]] for r in rejects}
    by_stream: dict[str, list[Any]] = {}
    merchant: dict[str, str | None] = {}
    for number, record in valid:
        stream_id = str(frame["stream_id"].iloc[number])
        if stream_id in bad_streams or frame["stream_id"].iloc[number] is None:
            continue
        by_stream.setdefault(stream_id, []).append(record)
        merchant.setdefault(stream_id, frame["merchant_id"].iloc[number] if "merchant_id" in frame.columns else None)
    rejects += [{"row": number, "field": "stream_id", "message": "another segment of this stream was rejected",
                 "errors": 1} for number, _ in valid if frame["stream_id"].iloc[number] in bad_streams]
    rows = []
    for stream_id, segments in by_stream.items():
        answer = stream_answer(model, segments, merchant[stream_id], blocked)
        rows.append({"id": stream_id, "decision": answer.decision, "score": answer.score,
                     "reasons": _reasons(answer.reasons), "model": answer.model,
                     "labels": json.dumps([s.labels for s in answer.segments], ensure_ascii=False),
                     "spans": json.dumps([[sp.model_dump() for sp in s.spans] for s in answer.segments],
                                         ensure_ascii=False),
                     "segment_decisions": json.dumps([s.decision for s in answer.segments])})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), pd.DataFrame(rejects, columns=["row", "field", "message",
                                                                                       "errors"])


def score_merchants_at_scale(model: Any, frame: pd.DataFrame, links: pd.DataFrame | None
                             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merchant results of a whole file with the graph features computed out of core by
    DuckDB (``serving/graph_scale.py``) instead of per request: every merchant of the file is
    a neighbour with its values from the file, other merchants come from the model's
    reference graph (known labels too), links are the file's, the records' own and the
    reference's. For a file that fits one request this is exactly what the service answers."""
    from serving.graph_scale import graph_features_duckdb

    spec = model.spec
    if not spec.graph or "max" in spec.aggregates:  # nothing to gain, or not computed out of core
        return score_frame(MERCHANT_RISK, model, frame, links=links_by_merchant(links))
    valid, rejects = validate_rows(MERCHANT_RISK, frame)
    records = [record for _, record in valid]
    reject_frame = pd.DataFrame(rejects, columns=["row", "field", "message", "errors"])
    if not records:
        return pd.DataFrame(columns=RESULT_COLUMNS), reject_frame
    nodes = pd.DataFrame({"merchant_id": [r.merchant_id for r in records],
                          **{f: [getattr(r, f) for r in records] for f in spec.own_features}})
    nodes = nodes.drop_duplicates("merchant_id", keep="last")  # as a request's values: the last wins
    reference, reference_links = model.reference_tables()
    nodes["known"] = nodes["merchant_id"].map(dict(zip(reference["merchant_id"], reference["known"], strict=True)))
    others = reference[~reference["merchant_id"].isin(set(nodes["merchant_id"]))]
    link_sources = [reference_links]
    if links is not None:
        link_sources.append(links)
    own_links = [(r.merchant_id, link.merchant_id, str(link.link_type)) for r in records for link in r.links or []]
    if own_links:
        link_sources.append(pd.DataFrame(own_links, columns=["src", "dst", "link_type"]))
    ids, matrix = graph_features_duckdb(pd.concat([nodes, others], ignore_index=True), link_sources, spec,
                                        label_column="known", endpoints_as_merchants=True)
    position = {merchant_id: i for i, merchant_id in enumerate(ids[:len(nodes)])}
    scored = model.score_matrix(matrix[[position[r.merchant_id] for r in records]])
    results = merchant_results(model, records, scored)
    rows = [{"id": r.merchant_id, "decision": r.decision, "score": r.score, "reasons": _reasons(r.reasons),
             "model": r.model, "labels": None, "spans": None, "segment_decisions": None} for r in results]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), reject_frame


def read_link_table(path: Path | None) -> pd.DataFrame | None:
    """An edge list file (src, dst, link_type) as strings; None without a file."""
    return None if path is None else read_table(path)[["src", "dst", "link_type"]].astype(str)


def read_links(path: Path | None) -> dict[str, list[dict[str, str]]]:
    """Each merchant's links from an edge list file, both directions."""
    return links_by_merchant(read_link_table(path))


def links_by_merchant(frame: pd.DataFrame | None) -> dict[str, list[dict[str, str]]]:
    """Each merchant's links from an edge list table, both directions."""
    if frame is None:
        return {}
    links: dict[str, list[dict[str, str]]] = {}
    for src, dst, link_type in frame.itertuples(index=False):
        links.setdefault(src, []).append({"merchant_id": dst, "link_type": link_type})
        links.setdefault(dst, []).append({"merchant_id": src, "link_type": link_type})
    return links


def marker(output: Path, source: Path) -> Path:
    """The completion marker of one input file."""
    return output / DONE_FOLDER / f"{source.name}.json"


def already_done(output: Path, source: Path, tag: str) -> bool:
    """Whether this input was completed by a job with the same model version."""
    path = marker(output, source)
    if not path.is_file():
        return False
    done = json.loads(path.read_text(encoding="utf-8"))
    stat = source.stat()
    return (done.get("size"), done.get("mtime"), done.get("model")) == (stat.st_size, stat.st_mtime, tag)


def write_outputs(output: Path, source: Path, tag: str, results: pd.DataFrame, rejects: pd.DataFrame) -> Path:
    """Write the results and rejects of one input, then its completion marker (last, so a
    crash in between redoes the file)."""
    output.mkdir(parents=True, exist_ok=True)
    target = output / f"{source.stem}.parquet"
    results.to_parquet(target, index=False)
    if len(rejects):
        rejects.assign(input=source.name).to_parquet(output / f"{source.stem}.rejects.parquet", index=False)
    stat = source.stat()
    path = marker(output, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"size": stat.st_size, "mtime": stat.st_mtime, "model": tag,
                                "rows": len(results), "rejected": len(rejects)}), encoding="utf-8")
    return target


def run_local(kind: ModelKind, model: Any, files: list[Path], output: Path, blocked: BlockedLookup,
              links_file: Path | None, progress: Callable[[str], None]) -> BatchReport:
    """Score every input file in this process (merchants with catalogue-wide graph features:
    ``score_merchants_at_scale``)."""
    report = BatchReport(model=model.tag)
    started = time.perf_counter()
    links = read_link_table(links_file) if kind is MERCHANT_RISK else None  # once for all files
    for source in files:
        report.files += 1
        if already_done(output, source, model.tag):
            report.skipped_files += 1
            progress(f"{source.name}: already done, skipped")
            continue
        frame = read_table(source)
        if kind is MERCHANT_RISK:
            results, rejects = score_merchants_at_scale(model, frame, links)
        else:
            results, rejects = score_frame(kind, model, frame, blocked)
        report.outputs.append(str(write_outputs(output, source, model.tag, results, rejects)))
        report.rows += len(frame)
        report.scored += len(results)
        report.rejected += len(rejects)
        progress(f"{source.name}: {len(results):,} scored, {len(rejects):,} rejected")
    report.seconds = time.perf_counter() - started
    return report


def iter_chunks(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """Row slices of a table."""
    for start in range(0, len(frame), rows):
        yield frame.iloc[start:start + rows]
