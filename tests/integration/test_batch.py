"""``shopguard batch score`` gives exactly the service's answers: the same 1,000 listings,
300 merchants and 50 streams scored over HTTP and by batch jobs (local and Ray) get the same
decisions and scores; bad rows go to a rejects file; a re-run skips finished inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.integration.server import api_post
from tests.integration.test_merchant_api import merchant_records
from training.data.listings import ListingGenerationConfig, generate_listings, to_api_records

pytestmark = pytest.mark.integration


def _batch(home, *args: str) -> dict:
    printed = run_cli("batch", "score", *args, home=home).stdout
    return json.loads(printed[printed.index("{"):])


def test_listings_over_http_and_in_batch_get_identical_answers(server, trained_home, tmp_path) -> None:
    listings = to_api_records(generate_listings(ListingGenerationConfig(n=1000, seed=21)))
    http = api_post(f"{server}/v1/listings/score", json={"listings": listings}, timeout=120).json()["results"]
    frame = pd.DataFrame(listings)
    frame.loc[len(frame)] = {**listings[0], "listing_id": "bad-price", "price": -3.0}  # one bad row
    frame.to_parquet(tmp_path / "listings.parquet", index=False)
    database = f"sqlite:///{trained_home / 'shopguard.db'}"  # the service's standing merchant blocks
    for engine in ("local", "ray"):
        out = tmp_path / f"out-{engine}"
        report = _batch(trained_home, "listing-quality", "--input", str(tmp_path / "listings.parquet"),
                        "--output", str(out), "--engine", engine, "--merchant-decisions", database)
        assert report["scored"] == 1000 and report["rejected"] == 1
        batch = pd.read_parquet(out / "listings.parquet").set_index("id")
        for result in http:
            row = batch.loc[result["listing_id"]]
            assert (row["decision"], row["score"], row["model"]) == (result["decision"], result["score"],
                                                                     result["model"])
            assert [r["code"] for r in json.loads(row["reasons"])] == [r["code"] for r in result["reasons"]]
        rejects = pd.read_parquet(out / "listings.rejects.parquet")
        assert rejects[["row", "field"]].values.tolist() == [[1000, "price"]]
    again = _batch(trained_home, "listing-quality", "--input", str(tmp_path / "*.parquet"),
                   "--output", str(tmp_path / "out-local"))
    assert again["skipped_files"] == 1 and again["scored"] == 0


def test_merchants_and_streams_over_http_and_in_batch_agree(server, trained_home, merchant_files,
                                                           transcript_file, tmp_path) -> None:
    merchants = merchant_records(merchant_files[0])[:300]
    http = api_post(f"{server}/v1/merchants/score", json={"merchants": merchants}, timeout=120).json()["results"]
    pd.DataFrame(merchants).to_parquet(tmp_path / "merchants.parquet", index=False)
    _batch(trained_home, "merchant-risk:production", "--input", str(tmp_path / "merchants.parquet"),
           "--output", str(tmp_path / "out"))
    batch = pd.read_parquet(tmp_path / "out" / "merchants.parquet").set_index("id")
    assert [(batch.loc[r["merchant_id"], "decision"], batch.loc[r["merchant_id"], "score"]) for r in http] == \
        [(r["decision"], r["score"]) for r in http]

    texts = pd.read_parquet(transcript_file)["text"].tolist()[:200]
    streams = {f"S-batch-{i}": [{"text": t, "start_ms": j * 5000, "end_ms": j * 5000 + 4000}
                                for j, t in enumerate(texts[i * 4:(i + 1) * 4])] for i in range(50)}
    answers = {s: api_post(f"{server}/v1/streams/score", json={"stream_id": s, "segments": segs}, timeout=60).json()
               for s, segs in streams.items()}
    rows = [{"stream_id": s, **seg} for s, segs in streams.items() for seg in segs]
    pd.DataFrame(rows).to_json(tmp_path / "segments.jsonl", orient="records", lines=True, force_ascii=False)
    _batch(trained_home, "false-marketing", "--input", str(tmp_path / "segments.jsonl"), "--output", str(tmp_path / "out"))
    batch = pd.read_parquet(tmp_path / "out" / "segments.parquet").set_index("id")
    for stream_id, answer in answers.items():
        row = batch.loc[stream_id]
        assert (row["decision"], row["score"]) == (answer["decision"], answer["score"])
        assert json.loads(row["segment_decisions"]) == [s["decision"] for s in answer["segments"]]
        assert json.loads(row["labels"]) == [s["labels"] for s in answer["segments"]]
