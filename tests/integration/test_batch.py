"""``shopguard batch score`` gives exactly the service's answers: the same 1,000 listings,
300 merchants and 50 streams scored over HTTP and by batch jobs (local and Ray) get the same
decisions and scores; bad rows go to a rejects file; a re-run skips finished inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kinds.listing_quality.generator import (
    ListingGenerationConfig,
    generate_listings,
    to_api_records,
)
from tests.conftest import run_cli
from tests.integration.server import api_post
from tests.integration.test_merchant_api import merchant_records

pytestmark = pytest.mark.integration


def _batch(home, *args: str) -> dict:
    printed = run_cli("batch", "score", *args, home=home).stdout
    return json.loads(printed[printed.index("{"):])


def test_listings_over_http_and_in_batch_get_identical_answers(server, trained_home, tmp_path) -> None:
    listings = to_api_records(generate_listings(ListingGenerationConfig(n=1000, seed=21)))
    # The first call's blocks cost their merchants points and may put some on a hold; the second
    # call (each listing is charged once) is answered under the holds the batch job then reads.
    api_post(f"{server}/v1/listings/score", json={"listings": listings}, timeout=120).raise_for_status()
    http = api_post(f"{server}/v1/listings/score", json={"listings": listings}, timeout=120).json()["results"]
    frame = pd.DataFrame(listings)
    frame.loc[len(frame)] = {**listings[0], "listing_id": "bad-price", "price": -3.0}  # one bad row
    frame.to_parquet(tmp_path / "listings.parquet", index=False)
    database = f"sqlite:///{trained_home / 'shopguard.db'}"  # the service's merchant holds
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
                   "--output", str(tmp_path / "out-local"), "--merchant-decisions", database)
    assert again["skipped_files"] == 1 and again["scored"] == 0
    # without the holds the answers differ: the input is done again, not kept from the other job
    unheld = _batch(trained_home, "listing-quality", "--input", str(tmp_path / "*.parquet"),
                    "--output", str(tmp_path / "out-local"))
    assert unheld["skipped_files"] == 0 and unheld["scored"] == 1000


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


def test_merchant_batch_with_a_links_file_equals_the_service_with_the_same_links(server, trained_home,
                                                                                 merchant_files, tmp_path) -> None:
    """The batch job's DuckDB graph features (kinds/merchant_risk/graph_scale.py) see new links between
    the file's merchants, to merchants only the reference graph knows, and to merchants
    nobody knows, exactly as the service sees the same links sent with the records."""
    merchants = merchant_records(merchant_files[0])[300:500]
    ids = [m["merchant_id"] for m in merchants]
    new_links = [(ids[i], ids[i + 1], "shared_device") for i in range(0, 60, 2)]  # within the file
    new_links += [(ids[i], "M-nobody-knows", "shared_payout_account") for i in range(60, 70)]
    known_elsewhere = merchant_records(merchant_files[0])[2000]["merchant_id"]
    new_links += [(ids[i], known_elsewhere, "shared_owner_id") for i in range(70, 80)]
    with_links = [{**m, "links": [{"merchant_id": dst, "link_type": t} for src, dst, t in new_links
                                  if src == m["merchant_id"]]} for m in merchants]
    # The service links both ends of a request link; send the reverse too so that a merchant
    # sees its links whichever side the file lists it on.
    for m in with_links:
        m["links"] += [{"merchant_id": src, "link_type": t} for src, dst, t in new_links if dst == m["merchant_id"]]
    http = api_post(f"{server}/v1/merchants/score", json={"merchants": with_links}, timeout=120).json()["results"]
    pd.DataFrame(merchants).to_parquet(tmp_path / "merchants.parquet", index=False)
    pd.DataFrame(new_links, columns=["src", "dst", "link_type"]).to_parquet(tmp_path / "links.parquet", index=False)
    _batch(trained_home, "merchant-risk:production", "--input", str(tmp_path / "merchants.parquet"),
           "--links", str(tmp_path / "links.parquet"), "--output", str(tmp_path / "out"))
    batch = pd.read_parquet(tmp_path / "out" / "merchants.parquet").set_index("id")
    assert [(batch.loc[r["merchant_id"], "decision"], batch.loc[r["merchant_id"], "score"],
             json.loads(batch.loc[r["merchant_id"], "reasons"])) for r in http] == \
        [(r["decision"], r["score"], r["reasons"]) for r in http]
    without = api_post(f"{server}/v1/merchants/score", json={"merchants": merchants}, timeout=120).json()["results"]
    assert sum(a["score"] != b["score"] for a, b in zip(http, without, strict=True)) >= 20  # the links mattered


def test_batch_files_are_read_as_the_service_reads_a_call(server, trained_home, tmp_path) -> None:
    """No value is coerced (a price of "59" or true is refused, as the service refuses it), a JSON
    line's extra key rejects that row only, CSV ids keep their text ("007", a merchant "NA"),
    and a stream's segments are put in ``segment_index`` order, a place given twice rejecting
    the stream, ids compared as the service compares them."""
    title = {"title": "纯棉T恤 男 短袖 夏季 透气", "category": "apparel"}
    lines = [{"listing_id": "B1", **title, "price": True}, {"listing_id": "B2", **title, "price": "59"},
             {"listing_id": "B3", **title, "price": 59, "image_count": 3},
             {"listing_id": "B4", **title, "price": 59.5, "speaker": "host"},
             {"listing_id": "B5", **title, "price": 10}, {"listing_id": "B6", **title, "price": 10},
             {"listing_id": "B5", **title, "price": 20}]  # one listing twice: the service refuses the call
    for index in (0, 1, 3):
        refused = api_post(f"{server}/v1/listings/score", json={"listings": [lines[index]]}, timeout=60)
        assert refused.status_code == 400, refused.text
    assert api_post(f"{server}/v1/listings/score", json={"listings": lines[4:]}, timeout=60).status_code == 400
    (tmp_path / "listings.jsonl").write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                                             encoding="utf-8")
    for engine in ("local", "ray"):  # Ray's batches of 2 put the two B5 rows apart: the file is checked whole
        report = _batch(trained_home, "listing-quality", "--input", str(tmp_path / "listings.jsonl"), "--output",
                        str(tmp_path / engine), "--engine", engine, "--batch-size", "2", "--workers", "1")
        assert (report["rows"], report["scored"], report["rejected"]) == (7, 2, 5), engine
        rejects = pd.read_parquet(tmp_path / engine / "listings.rejects.parquet")
        assert rejects[["row", "field"]].values.tolist() == [[0, "price"], [1, "price"], [3, "speaker"],
                                                              [4, "listing_id"], [6, "listing_id"]], engine
        assert sorted(pd.read_parquet(tmp_path / engine / "listings.parquet")["id"]) == ["B3", "B6"], engine

    (tmp_path / "titles.csv").write_text("listing_id,merchant_id,title,category,price,image_count\n"
                                         f"007,NA,{title['title']},apparel,59,\n", encoding="utf-8")
    _batch(trained_home, "listing-quality", "--input", str(tmp_path / "titles.csv"), "--output", str(tmp_path / "c"))
    http = api_post(f"{server}/v1/listings/score", json={"listings": [
        {"listing_id": "007", "merchant_id": "NA", **title, "price": 59.0}]}, timeout=60).json()["results"][0]
    row = pd.read_parquet(tmp_path / "c" / "titles.parquet").iloc[0]
    assert (row["id"], row["decision"], row["score"]) == ("007", http["decision"], http["score"])

    claim, plain = "糖友们注意了 这个吃上一个月 血糖稳稳的 药都可以停了", "这个衣服是纯棉的 大家看一下"
    segments = [{"text": plain, "start_ms": 0, "end_ms": 3000}, {"text": claim, "start_ms": 6000, "end_ms": 9000}]
    answer = api_post(f"{server}/v1/streams/score", json={"stream_id": "S-order", "segments": segments},
                      timeout=60).json()
    rows = [{"stream_id": "S-order", "segment_index": 1, **segments[1]},
            {"stream_id": " s-order", "segment_index": 0, **segments[0]},  # the same room to the service
            {"stream_id": "S-twice", "segment_index": 0, **segments[0]},
            {"stream_id": "S-twice", "segment_index": 0, **segments[1]}]
    (tmp_path / "segments.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                             encoding="utf-8")
    assert answer["segments"][1]["decision"] != "allow"  # the order matters: the claim is the second
    for engine in ("local", "ray"):
        out = tmp_path / f"s-{engine}"
        _batch(trained_home, "false-marketing", "--input", str(tmp_path / "segments.jsonl"), "--output", str(out),
               "--engine", engine, "--workers", "1")
        streams = pd.read_parquet(out / "segments.parquet")
        assert streams["id"].tolist() == ["S-order"], engine
        assert json.loads(streams["segment_decisions"][0]) == [s["decision"] for s in answer["segments"]]
        assert (streams["decision"][0], streams["score"][0]) == (answer["decision"], answer["score"])
        rejects = pd.read_parquet(out / "segments.rejects.parquet")
        assert rejects[["row", "field"]].values.tolist() == [[2, "stream_id"], [3, "segment_index"]], engine
