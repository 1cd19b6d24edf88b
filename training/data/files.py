"""Files the data generators write: the table (Parquet or CSV) and its data card."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.errors import InvalidInputError


def check_table_path(out: Path, suffixes: tuple[str, ...] = (".parquet", ".csv")) -> Path:
    """``out`` when it names a table ``write_table`` writes; else an error naming ``--out``
    (checked before the work: Parquet bytes under ``.json`` were read back as broken JSON)."""
    if out.suffix.lower() not in suffixes:
        raise InvalidInputError(f"--out {out}: write {' or '.join(suffixes)}, not "
                                f"{out.suffix or 'a name without a suffix'}.", field="--out")
    return out


def write_table(frame: pd.DataFrame, out: Path) -> None:
    """Write Parquet or CSV by the file suffix (deterministic bytes for a given frame)."""
    check_table_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False, compression="zstd")


def card_path_for(out: Path) -> Path:
    """Where the data card of a generated file is written."""
    return out.with_name(out.stem + ".card.md")
