"""A user's table file (Parquet, CSV, JSON lines) read with errors a user can act on: one
line naming the file, and for JSON lines the line (``FILE:LINE: ...``) as compilers do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

import pandas as pd

from common.errors import InvalidInputError


def read_jsonl(path: Path, keep_types: bool = False) -> pd.DataFrame:
    """A JSON-lines file as a table; a line that is not a JSON object is refused as
    ``FILE:LINE: what is wrong``. ``keep_types``: each value as JSON typed it (``"27.4"`` stays
    text, for a check to refuse), not converted to the column's inferred type."""
    try:
        if keep_types:
            return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
        return pd.read_json(path, lines=True)
    except ValueError as exc:
        raise InvalidInputError(broken_line(path) or f"{path}: not JSON lines: {first_line(exc)}",
                                field=str(path)) from None


def broken_line(path: Path) -> str | None:
    """``FILE:LINE: problem`` for the first line of a JSON-lines file that is not a JSON
    object (blank lines are allowed); None when every line is one."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
            if not isinstance(value, dict):
                return f"{path}:{number}: a line must be a JSON object, not {type(value).__name__}"
    return None


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".parquet": pd.read_parquet, ".csv": pd.read_csv, ".jsonl": read_jsonl,
}


def read_table(path: Path, option: str) -> pd.DataFrame:
    """The table in ``path`` by its suffix (``READERS``); a missing, unsupported or unreadable
    file is one ``InvalidInputError`` naming the file and the ``option`` that named it."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InvalidInputError(f"{option} {path}: not a .parquet, .csv or .jsonl file.", field=option)
    if not path.is_file():
        raise InvalidInputError(f"{option} {path}: no such file.", field=option)
    try:
        return reader(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{option} {path}: cannot be read: {first_line(exc)}", field=option) from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def number_type(annotation: Any) -> type | None:
    """``int`` or ``float`` when a record field's annotation holds that number (optional or
    not); None for any other field: how a table's cell is read for that field."""
    options = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) else [annotation]
    return options[0] if len(options) == 1 and options[0] in (int, float) else None
