"""Files the data generators write: the table (Parquet or CSV) and its data card."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.errors import InvalidInputError


def write_table(frame: pd.DataFrame, out: Path) -> None:
    """Write Parquet or CSV by the file suffix (deterministic bytes for a given frame); any
    other suffix is refused (Parquet bytes under ``.json`` were read back as broken JSON)."""
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidInputError(f"--out {out}: write .parquet or .csv, not {out.suffix or 'a name without a suffix'}.",
                                field="--out")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False, compression="zstd")


def card_path_for(out: Path) -> Path:
    """Where the data card of a generated file is written."""
    return out.with_name(out.stem + ".card.md")
