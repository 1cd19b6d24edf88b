"""Read an analyst's labelled file (Parquet, CSV or JSONL) and check its columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from common.errors import InvalidInputError
from common.tables import first_line, number_type, read_jsonl
from features.schemas import ColumnSpec

READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".txt": "tsv",
           ".jsonl": "jsonl", ".json": "jsonl"}


class DataValidationError(InvalidInputError):
    """A training file lacks columns or has values of the wrong type."""


def read_table(path: Path) -> pd.DataFrame:
    """Read Parquet, CSV, TSV, JSON lines or a JSON array of records by file suffix (a
    ``.json`` file starting with ``[`` is an array). An empty or unreadable file is one
    clear ``DataValidationError``, not a reader's traceback; a broken JSON line is named
    ``FILE:LINE: ...``."""
    if not path.is_file():
        raise DataValidationError(f"{path} does not exist or is not a file.", field="--data")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataValidationError(
            f"{path}: unsupported file type {path.suffix!r}; use .parquet, .csv, .tsv or .jsonl.",
            field="--data",
        )
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path} is empty (0 bytes): export the labelled rows into it first.",
                                  field="--data")
    try:
        return _read(path, kind)
    except InvalidInputError as exc:
        raise DataValidationError(str(exc), field="--data") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{path} cannot be read as {kind}: {first_line(exc)}", field="--data") from None


def _read(path: Path, kind: str) -> pd.DataFrame:
    if kind == "parquet":
        return pd.read_parquet(path)
    if kind == "csv":
        return pd.read_csv(path, keep_default_na=True)
    if kind == "tsv":
        return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[""])
    if path.suffix.lower() == ".json" and _starts_with(path, "["):  # each value as JSON typed it, as JSON lines
        text = io.StringIO(path.read_text(encoding="utf-8-sig"))  # a BOM, as the other readers take it
        return pd.read_json(text, orient="records", dtype=False, convert_dates=False)
    return read_jsonl(path, keep_types=True)


def _starts_with(path: Path, character: str) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] == character.encode()


def binary_labels(values: pd.Series, name: str, source: str = "") -> pd.Series:
    """A label column as 0/1 ints (``true``/``false``, ``"1"``/``"0"`` read as such); a
    ``DataValidationError`` naming ``source`` and the column for any other value."""
    try:
        return _coerce_label(values, name)
    except DataValidationError as exc:
        raise DataValidationError(f"{source}: {exc}" if source else str(exc), field=name) from None


def _coerce_label(values: pd.Series, name: str) -> pd.Series:
    mapped = values.map(lambda v: {True: 1, False: 0, "true": 1, "false": 0, "1": 1, "0": 0}.get(
        v.lower() if isinstance(v, str) else v, v))
    numeric = pd.to_numeric(mapped, errors="coerce")
    if numeric.isna().any() or not numeric.isin([0, 1]).all():
        bad = values[numeric.isna() | ~numeric.isin([0, 1])].iloc[0]
        bad = bad.item() if hasattr(bad, "item") else bad  # 2, not np.int64(2)
        raise DataValidationError(f"column {name!r} must hold 0/1 labels; found {bad!r}.", field=name)
    return numeric.astype(int)


def row_name(path: Path | str, index: int) -> str:
    """How an error names the data row at 0-based ``index`` of the file ``path``: counted from
    1 (``row 1`` is the first data row), with the line it starts on in a CSV or TSV file, whose
    first line is the header (``row 1 (line 2)``; a quoted field may span lines)."""
    number = index + 1
    kind = READERS.get(Path(path).suffix.lower())
    line = _start_line(Path(path), index, kind) if kind in ("csv", "tsv") else None
    return f"row {number}" if line is None else f"row {number} (line {line})"


def _start_line(path: Path, index: int, kind: str) -> int | None:
    """The 1-based line on which data row ``index`` starts, read as ``_read`` reads the file
    (blank and white-space-only lines skipped); None when the file cannot be read so (a
    field past the csv module's size limit, a missing file)."""
    options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if kind == "tsv" else {}
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            reader, previous_end, row = csv.reader(handle, **options), 0, -1
            for record in reader:
                start, previous_end = previous_end + 1, reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if row == index:
                    return start
                row += 1
    except (OSError, csv.Error):
        return None
    return None


def validate_columns(frame: pd.DataFrame, specs: Sequence[ColumnSpec], source: str) -> pd.DataFrame:
    """Check a table against column specs and return it with canonical dtypes.

    Raises ``DataValidationError`` naming every missing required column, or the first
    column whose values are not of its kind. Optional columns that are absent are added as
    missing values; columns not in ``specs`` are kept untouched."""
    missing = [s.name for s in specs if s.required and s.name not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing required column(s) {', '.join(missing)}. "
            f"Expected columns: {', '.join(s.name + ('' if s.required else '?') for s in specs)} "
            "(? = optional).",
            field=missing[0],
        )
    if frame.empty:
        raise DataValidationError(f"{source} has no rows.", field="--data")
    out = frame.copy()
    for spec in specs:
        if spec.name not in out.columns:
            out[spec.name] = "" if spec.kind == "text" else np.nan
            continue
        column = out[spec.name]
        if spec.kind == "text":
            out[spec.name] = column.where(column.notna(), "").astype(str)
        elif spec.kind == "label":
            out[spec.name] = binary_labels(column, spec.name, source)
        else:
            numeric = pd.to_numeric(column, errors="coerce")
            bad = column.notna() & numeric.isna()
            # JSON keeps its types: true or "27.4" in a number's place is refused, as the API and
            # batch refuse it (a CSV's cells are all text, read as numbers)
            mistyped = (bool, str) if Path(source).suffix.lower() in (".jsonl", ".json") else (bool,)
            bad |= column.map(lambda v, types=mistyped: isinstance(v, types)).astype(bool)
            if bad.any():
                raise DataValidationError(
                    f"{source}: column {spec.name!r} must be numeric; {row_name(source, int(np.flatnonzero(bad)[0]))} "
                    f"holds {column[bad].iloc[0]!r}.",
                    field=spec.name,
                )
            out[spec.name] = numeric.astype(float)
    return out


def _numbers(column: pd.Series, name: str, source: str) -> np.ndarray:
    """A column of a number field as floats (missing: NaN); a ``DataValidationError`` naming the
    first cell that is not a number."""
    if pd.api.types.is_bool_dtype(column):
        raise DataValidationError(f"{source}: column {name!r} must hold numbers, not true/false.", field=name)
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=float)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna() & ~column.astype(str).str.strip().isin(["", "nan", "NaN"])
    bad |= column.map(lambda v: isinstance(v, bool)).astype(bool)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(f"{source}: column {name!r} must hold numbers; {row_name(source, row)} holds "
                                  f"{column.iloc[row]!r}. Fix or drop those rows.", field=name)
    return numbers.to_numpy(dtype=float)


def check_bounds(frame: pd.DataFrame, record: type[BaseModel], source: str) -> None:
    """``DataValidationError`` naming the first column of ``frame`` with a value the API's
    ``record`` refuses, and the first such row: a file must not train or judge a model on values
    the service answers 400 to (a rating of 9, a negative price, a category the API does not
    know, an empty or over-long title, a required price missing, 2.5 images). Missing values of
    optional fields are left to the model."""
    for name, field in record.model_fields.items():
        if name not in frame.columns:
            continue
        if number_type(field.annotation) is None:
            _check_text_field(frame[name], name, field, source, record)
            continue
        values = _numbers(frame[name], name, source)
        _refuse_rows(np.isnan(values) if _needs_value(field) else np.zeros(len(values), dtype=bool), name, source,
                     "must hold a number in every row (the API requires it)", values)
        if number_type(field.annotation) is int:
            _refuse_rows(~np.isnan(values) & (values != np.floor(values)), name, source, "must hold whole numbers",
                         values)
        for bound in field.metadata:
            low, high = getattr(bound, "ge", None), getattr(bound, "le", None)
            outside = (values < low) if low is not None else (values > high) if high is not None else None
            if outside is not None:
                limit = f"at least {low:g}" if low is not None else f"at most {high:g}"
                _refuse_rows(outside, name, source, f"must be {limit} (as the API requires)", values)


def _refuse_rows(bad: np.ndarray, name: str, source: str, rule: str, values: Any) -> None:
    if not bad.any():
        return
    row = int(np.flatnonzero(bad)[0])
    shown = values[row] if not isinstance(values, pd.Series) else values.iloc[row]
    shown = shown.item() if isinstance(shown, np.generic) else shown
    shown = f"{shown:g}" if isinstance(shown, float) else repr(shown)
    raise DataValidationError(f"{source}: column {name!r} {rule}; {row_name(source, row)} holds {shown}"
                              f"{f' ({int(bad.sum()):,} rows in all)' if bad.sum() > 1 else ''}. Fix or drop those rows.",
                              field=name)


def _needs_value(field: Any) -> bool:
    """Whether the API requires a value of the field: required, and ``null`` not allowed
    (a merchant's ``float | None`` field must be present in a call, and null means unknown)."""
    return field.is_required() and type(None) not in get_args(field.annotation)


def _check_text_field(column: pd.Series, name: str, field: Any, source: str, record: type[BaseModel]) -> None:
    """A category the API does not know, a text field empty where required, or a text the
    API's own validation of the field refuses (over its length, no letter or digit ...)."""
    allowed = get_args(field.annotation) if get_origin(field.annotation) is Literal else None
    given = column.notna() & (column.astype(str).str.strip() != "")
    if allowed:
        wrong = ~given if _needs_value(field) else np.zeros(len(column), dtype=bool)
        _refuse_rows((wrong | (given & ~column.isin(allowed))).to_numpy(), name, source,
                     f"must be one of {', '.join(map(str, allowed))} (as the API requires)", column)
        return
    if field.annotation is not str:
        return
    if _needs_value(field):
        _refuse_rows((~given).to_numpy(), name, source, "must hold text in every row (the API requires it)", column)
    blank, validator = record.model_construct(), record.__pydantic_validator__
    values = column.to_numpy()
    for row in np.flatnonzero(given.to_numpy()):
        value = str(values[row])
        try:
            validator.validate_assignment(blank, name, value)
        except ValidationError as exc:
            shown = value if len(value) <= 60 else value[:60] + "..."
            raise DataValidationError(f"{source}: column {name!r}: {exc.errors()[0]['msg']} (as the API requires); "
                                      f"{row_name(source, int(row))} holds {shown!r}. Fix or drop those rows.",
                                      field=name) from None
