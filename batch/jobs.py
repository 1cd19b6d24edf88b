"""Catalogue-wide batch scoring: ``shopguard batch score``.

Reads Parquet, CSV or JSONL files in the API's record shape (listings; merchants, with an
optional links file; stream segments with ``stream_id``), scores them with the same runtime
and the same answer code the service uses (each kind's ``answers``, ``kinds/``),
and writes one Parquet
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

import functools
import glob
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from common.errors import InvalidInputError, ShopGuardError
from common.tables import READERS, broken_line, first_line, number_type
from common.tables import read_table as read_user_table
from features.ids import merchant_key
from kinds import ModelKind
from kinds.answers import LINK_COLUMNS, HoldLookup, no_holds
from kinds.runtime import ModelRuntime
from policy.document import CallRules

DONE_FOLDER = "_done"


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
    paths = [p for p in paths if p.is_file() and p.suffix.lower() in READERS and not p.name.endswith(".rejects.parquet")]
    if not paths:
        raise ShopGuardError(f"--input {pattern!r} names no .parquet, .csv or .jsonl file.")
    by_output: dict[str, Path] = {}
    for path in paths:
        if (other := by_output.setdefault(path.stem, path)) != path:
            raise ShopGuardError(f"--input: {other} and {path} would both write {path.stem}.parquet; rename one "
                                 "or score them into different --output folders.")
    return paths


def read_table(path: Path, option: str = "--input", record: type[BaseModel] | None = None) -> pd.DataFrame:
    """A table with missing values as None, each cell as the file holds it, as the API would
    receive it: JSON lines keep their JSON types (``"59"`` stays text, ``true`` a boolean:
    strict validation refuses both for a price, as the service does); CSV cells are text (an
    id keeps its leading zeros, ``NA`` is a value, an empty cell is missing), read as a number
    only where ``record`` (a kind's record) wants one. An unreadable file is one error naming it."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl" and path.is_file():
        frame = _json_lines(path, option)
    elif suffix == ".csv" and path.is_file():
        frame = _csv_text(path, option, record)
    else:
        frame = read_user_table(path, option)
    frame = frame.astype(object)
    frame = frame.where(frame.notna(), None)
    return _whole_numbers(frame, record) if record is not None and suffix == ".parquet" else frame


def _json_lines(path: Path, option: str) -> pd.DataFrame:
    """JSON lines as Python values, without pandas' type inference (a key a line leaves out
    is missing in that row only)."""
    rows: list[Any] | None
    try:
        with path.open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{option} {path}: cannot be read: {first_line(exc)}", field=option) from None
    except json.JSONDecodeError:
        rows = None
    if rows is None or not all(isinstance(row, dict) for row in rows):  # FILE:LINE: what is wrong
        raise InvalidInputError(broken_line(path) or f"{option} {path}: not JSON lines", field=option)
    return pd.DataFrame(rows, dtype=object)


def _csv_text(path: Path, option: str, record: type[BaseModel] | None) -> pd.DataFrame:
    """A CSV file's cells as text (no NA markers), empty cells missing, numbers where
    ``record`` wants them (``_csv_cell``)."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{option} {path}: cannot be read: {first_line(exc)}", field=option) from None
    frame = frame.mask(frame.eq(""))
    for name in frame.columns if record is not None else []:
        if name in record.model_fields:
            frame[name] = pd.Series([None if pd.isna(v) else _csv_cell(record, name, v) for v in frame[name]],
                                    index=frame.index, dtype=object)  # ints stay ints beside a gap
    return frame


_CSV_INT = re.compile(r"[+-]?[0-9]+")
_CSV_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _csv_cell(record: type[BaseModel], name: str, text: str) -> Any:
    """A CSV cell as the number the record wants there when it is one written in ASCII
    (``59``, ``-1.5e3``); else the text itself, which strict validation refuses naming the field."""
    wanted = number_type(record.model_fields[name].annotation)
    if wanted is int and _CSV_INT.fullmatch(text):
        return int(text)
    if wanted is int and _CSV_FLOAT.fullmatch(text) and float(text).is_integer():  # pandas writes 3.0 beside a gap
        return int(float(text))
    if wanted is float and _CSV_FLOAT.fullmatch(text):
        return float(text)
    return text


def _clean(value: Any) -> Any:
    """A table cell as the API would receive it: numpy scalars to Python, Parquet's list cells
    (numpy arrays) to lists, their items and struct fields alike."""
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _given(value: Any) -> bool:
    """Whether a cell holds a value (None and NaN are a missing one)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def validate_rows(kind: ModelKind, frame: pd.DataFrame, extra: tuple[str, ...] = ()
                  ) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    """(row number, record) for valid rows, and a reject (row, field, message) for each bad one."""
    fields = set(kind.record.model_fields)
    required = {name for name, info in kind.record.model_fields.items() if info.is_required()}
    valid, rejects = [], []
    for number, row in enumerate(frame.to_dict(orient="records")):
        # a missing cell of a required field is sent as null: the API takes null where the field may be null
        data = {k: _clean(v) if _given(v) else None for k, v in row.items() if k in fields and (_given(v) or k in required)}
        # A column the record does not have, where this row holds a value (a JSON line's key
        # is a column of every row, missing where the line leaves it out).
        unknown = [k for k, v in row.items() if k not in fields and k not in extra and _given(v)]
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


def repeated_ids(kind: ModelKind, frame: pd.DataFrame) -> dict[int, list[int]]:
    """Each row whose id (compared as the service compares ids: ``id_key``) another row of the
    file gives too, with all the rows giving it."""
    if kind.id_field not in frame.columns:
        return {}
    rows: dict[str, list[int]] = {}
    for number, value in enumerate(frame[kind.id_field]):
        if isinstance(value, str):
            rows.setdefault(kind.answers.id_key(value), []).append(number)
    return {n: numbers for numbers in rows.values() if len(numbers) > 1 for n in numbers}


def repeated_id_rejects(kind: ModelKind, repeated: dict[int, list[int]]) -> list[dict[str, Any]]:
    """A reject for each row of an id given twice (``repeated_ids``)."""
    return [{"row": n, "field": kind.id_field, "message": f"{kind.id_field} is given at rows {numbers}: each "
             f"{kind.id_field[:-3]} once per file", "errors": 1} for n, numbers in sorted(repeated.items())]


def _once_each(kind: ModelKind, frame: pd.DataFrame, valid: list[tuple[int, Any]], rejects: list[dict[str, Any]]
               ) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    """The valid rows whose id no other row of ``frame`` gives, and a reject for each valid row
    of an id given twice: the service refuses such a call (400 naming every index), and one
    entity scored from two rows is neither's answer."""
    repeated = repeated_ids(kind, frame)
    if not repeated:
        return valid, rejects
    numbers = {n for n, _ in valid}
    rejects = rejects + repeated_id_rejects(kind, {n: rows for n, rows in repeated.items() if n in numbers})
    return [(n, r) for n, r in valid if n not in repeated], sorted(rejects, key=lambda r: r["row"])


def _whole_numbers(frame: pd.DataFrame, record: type[BaseModel]) -> pd.DataFrame:
    """Parquet stores an integer column with gaps as floats: 3.0 -> 3 where the record wants an int."""
    for name in frame.columns:
        if name in record.model_fields and number_type(record.model_fields[name].annotation) is int:
            frame[name] = pd.Series([int(v) if isinstance(v, float) and v.is_integer() else v for v in frame[name]],
                                    index=frame.index, dtype=object)
    return frame


def _attach_links(frame: pd.DataFrame, key: str, field: str, links: dict[str, list[dict[str, str]]]
                  ) -> pd.DataFrame:
    """Each row's links (the kind's ``links_field``) from the edge list where the row has none,
    by ``key`` (``links`` is keyed by the normalized merchant id: ``links_by_merchant``)."""
    if key not in frame.columns:
        return frame
    frame = frame.copy()
    given = frame[field] if field in frame.columns else [None] * len(frame)
    frame[field] = [links.get(merchant_key(str(k)), []) if v is None else v
                    for k, v in zip(frame[key], given, strict=True)]
    return frame


def _frames(kind: ModelKind, rows: list[dict[str, Any]], rejects: list[dict[str, Any]]
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame(rows, columns=kind.answers.batch_columns),
            pd.DataFrame(rejects, columns=["row", "field", "message", "errors"]))


def score_frame(kind: ModelKind, model: ModelRuntime, frame: pd.DataFrame, holds: HoldLookup = no_holds,
                links: dict[str, list[dict[str, str]]] | None = None, chunk: int = 1000,
                rules: CallRules | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and rejects of one table, each chunk of ``chunk`` records answered as one API
    call would be (``links``: each entity's links, for records that carry links): the unit of
    work of the Ray engine."""
    if kind.answers.group_column is not None:
        return _score_groups(kind, model, frame, holds, rules)
    if links and kind.answers.links_field is not None:
        frame = _attach_links(frame, kind.id_field, kind.answers.links_field, links)
    valid, rejects = _once_each(kind, frame, *validate_rows(kind, frame))
    records = [record for _, record in valid]
    rows = []
    for start in range(0, len(records), chunk):
        rows += kind.answers.answer(model, records[start:start + chunk], {}, holds, rules=rules).batch_rows
    return _frames(kind, rows, rejects)


def score_file(kind: ModelKind, model: ModelRuntime, frame: pd.DataFrame, holds: HoldLookup = no_holds,
               links: pd.DataFrame | None = None, chunk: int = 1000, rules: CallRules | None = None
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and rejects of a whole file, scored catalogue-wide (``score_catalogue``: the
    merchants' graph features out of core, with ``links`` between them), then answered in
    chunks of ``chunk`` records as API calls would be: the unit of work of the local engine."""
    if kind.answers.group_column is not None:
        return _score_groups(kind, model, frame, holds, rules)
    valid, rejects = _once_each(kind, frame, *validate_rows(kind, frame))
    records = [record for _, record in valid]
    scored = model.score_catalogue(records, links) if records else None
    rows = []
    for start in range(0, len(records), chunk):
        part = scored.rows(start, start + chunk) if scored is not None else None
        rows += kind.answers.answer(model, records[start:start + chunk], {}, holds, part, rules).batch_rows
    return _frames(kind, rows, rejects)


def _score_groups(kind: ModelKind, model: ModelRuntime, frame: pd.DataFrame, holds: HoldLookup,
                  rules: CallRules | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records grouped into calls by the kind's ``group_column`` (streams by ``stream_id``,
    compared as the service compares them: ``id_key``), each call's records in the order of
    the kind's ``order_column`` (a segment's ``segment_index``) where the file has one, else
    in file order; a group with a bad record, or one giving a place twice, is rejected whole
    (its decision would be partial otherwise)."""
    group = kind.answers.group_column
    assert group is not None
    if group not in frame.columns:
        rejects = [{"row": i, "field": group, "message": f"missing column {group}", "errors": 1}
                   for i in range(len(frame))]
        return _frames(kind, [], rejects)
    extra = (*kind.answers.request_fields, *kind.answers.file_columns)
    valid, rejects = validate_rows(kind, frame, extra)
    valid, rejects = _request_fields_valid(kind, frame, valid, rejects)
    keys = [group_key(kind, value) for value in frame[group]]
    rejects += [{"row": n, "field": group, "message": f"missing {group}", "errors": 1}
                for n, _ in valid if keys[n] is None]
    places, place_rejects = _places(kind, frame, [n for n, _ in valid if keys[n] is not None], keys)
    rejects += place_rejects
    bad_groups = {keys[r["row"]] for r in rejects}
    member, whole = kind.answers.grouped_as
    calls: dict[str, list[tuple[int, int, Any]]] = {}
    rejected_places = {r["row"] for r in place_rejects}
    for number, record in valid:
        key = keys[number]
        if key is None or number in rejected_places:
            continue
        if key in bad_groups:
            rejects.append({"row": number, "field": group, "message": f"another {member} of this {whole} was "
                            "rejected", "errors": 1})
            continue
        calls.setdefault(key, []).append((places.get(number, number), number, record))
    rows = []
    for members in calls.values():
        first = min(m[1] for m in members)  # its id and request fields as the file first gives them
        members.sort(key=lambda m: m[:2])
        request = {name: (frame[name].iloc[first] if name in frame.columns else None)
                   for name in kind.answers.request_fields} | {group: str(frame[group].iloc[first])}
        rows += kind.answers.answer(model, [m[2] for m in members], request, holds, rules=rules).batch_rows
    return _frames(kind, rows, sorted(rejects, key=lambda r: r["row"]))


def _request_fields_valid(kind: ModelKind, frame: pd.DataFrame, valid: list[tuple[int, Any]],
                          rejects: list[dict[str, Any]]) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    """The valid rows whose request fields (a stream's ``stream_id``, ``merchant_id``) the
    service's request body takes, strictly as it does (a number or a list as a stream id is a
    400 there); a reject naming the field for each other row."""
    checks = {name: check for name, check in _request_checks(kind.api.request, kind.answers.request_fields).items()
              if name in frame.columns}
    kept, refused = [], list(rejects)
    for number, record in valid:
        problem = None
        for name, check in checks.items():
            value = frame[name].iloc[number]
            if problem is None and value is not None:
                try:
                    check.validate_python(_clean(value))
                except ValidationError as exc:
                    problem = {"row": number, "field": name, "message": exc.errors()[0]["msg"], "errors": 1}
        if problem is None:
            kept.append((number, record))
        else:
            refused.append(problem)
    return kept, sorted(refused, key=lambda r: r["row"])


@functools.cache
def _request_checks(request: type[BaseModel], names: tuple[str, ...]) -> dict[str, TypeAdapter[Any]]:
    """Strict validators of a request body's fields (built once: Ray scores group by group)."""
    return {name: TypeAdapter(request.model_fields[name].annotation, config=ConfigDict(strict=True))
            for name in names if name in request.model_fields}


def group_key(kind: ModelKind, value: Any) -> str | None:
    """A row's group as the service compares it (a stream id under ``id_key``); None when missing."""
    if value is None:
        return None
    key = kind.answers.id_key(str(_clean(value)))
    return key or None


def _places(kind: ModelKind, frame: pd.DataFrame, numbers: list[int], keys: list[str | None]
            ) -> tuple[dict[int, int], list[dict[str, Any]]]:
    """Each row's place in its call (``order_column``: a whole number >= 0, once per group), and
    a reject for each row whose place is not one or is another row's of its group."""
    column = kind.answers.order_column
    if column is None or column not in frame.columns:
        return {}, []
    places: dict[int, int] = {}
    rejects: list[dict[str, Any]] = []
    taken: dict[tuple[str | None, int], int] = {}
    for number in numbers:
        value = _integral_place(_clean(frame[column].iloc[number]))
        if value is None:
            rejects.append({"row": number, "field": column, "message": f"{column} must be a whole number >= 0, "
                            f"not {frame[column].iloc[number]!r}", "errors": 1})
        elif (keys[number], value) in taken:
            rejects.append({"row": number, "field": column, "message": f"{column} {value} is given twice in this "
                            f"{kind.answers.grouped_as[1]}: each place once", "errors": 1})
        else:
            places[number], taken[(keys[number], value)] = value, number
    return places, rejects


def _integral_place(value: Any) -> int | None:
    """A place (``order_column``) as an int: an int, a whole float (Parquet's gaps) or ASCII
    digits (CSV text); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _CSV_INT.fullmatch(value):
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def read_link_table(path: Path | None) -> pd.DataFrame | None:
    """An edge list file (src, dst, link_type) as strings; None without a file."""
    if path is None:
        return None
    frame = read_table(path, "--links")
    missing = [c for c in LINK_COLUMNS if c not in frame.columns]
    if missing:
        raise ShopGuardError(f"--links {path}: missing column(s) {', '.join(missing)}; an edge list has "
                             f"{', '.join(LINK_COLUMNS)}.")
    return frame[LINK_COLUMNS].astype(str)


def read_links(kind: ModelKind, path: Path | None) -> dict[str, list[dict[str, str]]]:
    """Each entity's links from an edge list file, as the kind reads them (``links_by_entity``)."""
    return kind.answers.links_by_entity(read_link_table(path))


def marker(output: Path, source: Path) -> Path:
    """The completion marker of the output an input file writes (``<stem>.parquet``)."""
    return output / DONE_FOLDER / f"{source.stem}.json"


def already_done(output: Path, source: Path, tag: str) -> bool:
    """Whether this input was completed by a job with the same ``job_marker``."""
    path = marker(output, source)
    if not path.is_file():
        return False
    done = json.loads(path.read_text(encoding="utf-8"))
    stat = source.stat()
    return (done.get("source"), done.get("size"), done.get("mtime"), done.get("model")) == (
        str(source.resolve()), stat.st_size, stat.st_mtime, tag)  # another input may have written it since


def write_outputs(output: Path, source: Path, tag: str, results: pd.DataFrame, rejects: pd.DataFrame) -> Path:
    """Write the results and rejects of one input, then its completion marker (last, so a
    crash in between redoes the file)."""
    output.mkdir(parents=True, exist_ok=True)
    target = output / f"{source.stem}.parquet"
    results.to_parquet(target, index=False)
    rejected = output / f"{source.stem}.rejects.parquet"
    if len(rejects):
        rejects.assign(input=source.name).to_parquet(rejected, index=False)
    else:
        rejected.unlink(missing_ok=True)  # an earlier run's rejects of this input no longer stand
    stat = source.stat()
    path = marker(output, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"source": str(source.resolve()), "size": stat.st_size, "mtime": stat.st_mtime, "model": tag,
                                "rows": len(results), "rejected": len(rejects)}), encoding="utf-8")
    return target


def job_marker(tag: str, job: str = "") -> str:
    """What a completion marker records of the job: the model version, and what else changes
    the answers (``job``: the policy, the merchant holds, the links; see ``batch/cli.py``)."""
    return f"{tag}; {job}" if job else tag


def one_cause(rejects: pd.DataFrame, rows: int) -> str:
    """``": every row: FIELD: MESSAGE"`` when every row of a file was rejected for one reason (a
    column the records do not have, such as a label column), so that the fix is said once."""
    if rows == 0 or len(rejects) != rows or rejects[["field", "message"]].drop_duplicates().shape[0] != 1:
        return ""
    return f"; every row: {rejects['field'].iloc[0]}: {rejects['message'].iloc[0]}"


def run_local(kind: ModelKind, model: ModelRuntime, files: list[Path], output: Path, holds: HoldLookup,
              links_file: Path | None, progress: Callable[[str], None], rules: CallRules | None = None,
              job: str = "") -> BatchReport:
    """Score every input file in this process, each file catalogue-wide (``score_file``);
    an input done by a job with the same model and ``job`` is skipped."""
    report = BatchReport(model=model.tag)
    started = time.perf_counter()
    links = read_link_table(links_file)  # once for all files
    marked = job_marker(model.tag, job)
    for source in files:
        report.files += 1
        if already_done(output, source, marked):
            report.skipped_files += 1
            progress(f"{source.name}: already done, skipped")
            continue
        frame = read_table(source, record=kind.record)
        results, rejects = score_file(kind, model, frame, holds, links, rules=rules)
        report.outputs.append(str(write_outputs(output, source, marked, results, rejects)))
        report.rows += len(frame)
        report.scored += len(results)
        report.rejected += len(rejects)
        progress(f"{source.name}: {len(results):,} scored, {len(rejects):,} rejected{one_cause(rejects, len(frame))}")
    report.seconds = time.perf_counter() - started
    return report


def iter_chunks(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """Row slices of a table."""
    for start in range(0, len(frame), rows):
        yield frame.iloc[start:start + rows]
