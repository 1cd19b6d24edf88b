"""Batch jobs (``batch/jobs.py``) on a real runtime: the test tree's review-spam kind, which
shared batch code scores like any kind of the table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from batch.jobs import (
    already_done,
    input_files,
    run_local,
    score_file,
    score_frame,
    validate_rows,
    write_outputs,
)
from common.decisions import Thresholds
from common.errors import ShopGuardError
from tests.fourth_kind.kind import REVIEW_SPAM
from tests.fourth_kind.runtime import ReviewSpamModel

MODEL = ReviewSpamModel({"cheap": 3.0, "promo": 3.0, "fits": -2.0}, 0.0, Thresholds(block=0.9, review=0.5),
                        "review-spam:v1")
FRAME = pd.DataFrame({"review_id": ["a", "b", "c"], "text": ["cheap promo", "fits well", ""],
                      "merchant_id": ["m0", "m1", None]})
FRAME = FRAME.astype(object).where(FRAME.notna(), None)  # as read_table gives it


def test_bad_rows_are_rejected_naming_row_and_field() -> None:
    valid, rejects = validate_rows(REVIEW_SPAM, FRAME.assign(extra=["x", 0, 1]))
    assert valid == [] and [(r["row"], r["field"]) for r in rejects] == [(0, "extra"), (1, "extra"), (2, "extra")]
    # A column only some rows fill (a key some JSON lines have): only those rows hold an unknown field.
    valid, rejects = validate_rows(REVIEW_SPAM, FRAME.assign(extra=[None, "x", None]))
    assert [n for n, _ in valid] == [0] and [(r["row"], r["field"]) for r in rejects] == [(1, "extra"), (2, "text")]
    valid, rejects = validate_rows(REVIEW_SPAM, FRAME)
    assert [(r["row"], r["field"]) for r in rejects] == [(2, "text")]


def test_both_engines_units_answer_alike_in_chunks() -> None:
    by_frame, rejects = score_frame(REVIEW_SPAM, MODEL, FRAME, chunk=1)
    by_file, _ = score_file(REVIEW_SPAM, MODEL, FRAME, chunk=2)
    assert list(by_frame.columns) == ["id", "decision", "score", "reasons", "model"]  # no stream columns
    assert by_frame.to_dict("records") == by_file.to_dict("records")
    assert list(by_frame["id"]) == ["a", "b"] and list(by_frame["decision"]) == ["block", "allow"]
    assert json.loads(by_frame["reasons"][0])[0]["code"] == "spam_word" and list(rejects["row"]) == [2]


def test_a_merchant_block_raises_the_batch_answer_too() -> None:
    def blocked(ids: set[str]) -> dict:
        from policy.calls import MODEL_HOLD, MerchantHold

        return {m: MerchantHold(m, "review_hold", MODEL_HOLD, "merchant-risk:v1 decided block", "review", None)
                for m in ids}

    results, _ = score_file(REVIEW_SPAM, MODEL, FRAME, blocked)
    assert list(results["decision"]) == ["block", "review"]  # a and b: both merchants at block


def test_a_finished_input_is_skipped_until_it_changes(tmp_path: Path) -> None:
    source = tmp_path / "reviews.parquet"
    FRAME.to_parquet(source)
    report = run_local(REVIEW_SPAM, MODEL, [source], tmp_path / "out", lambda ids: {}, None, lambda _: None)
    assert (report.scored, report.rejected) == (2, 1)
    assert pd.read_parquet(tmp_path / "out" / "reviews.rejects.parquet")["field"].tolist() == ["text"]
    assert already_done(tmp_path / "out", source, MODEL.tag) and not already_done(tmp_path / "out", source, "other")
    again = run_local(REVIEW_SPAM, MODEL, [source], tmp_path / "out", lambda ids: {}, None, lambda _: None)
    assert again.skipped_files == 1 and again.scored == 0
    FRAME.head(1).to_parquet(source)
    assert not already_done(tmp_path / "out", source, MODEL.tag)
    write_outputs(tmp_path / "out", source, MODEL.tag, *score_file(REVIEW_SPAM, MODEL, FRAME.head(1)))
    assert already_done(tmp_path / "out", source, MODEL.tag)


def test_an_input_naming_no_table_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ShopGuardError, match="names no .parquet"):
        input_files(str(tmp_path / "*"))


def test_edge_list_links_attach_to_a_merchant_under_any_form_of_its_id() -> None:
    """An edge list naming ``M1`` gives its links to a record ``m1`` / ``" M1"`` / ``Ｍ1``, in the
    local engine's frames and in the runtime's records alike (merchants compare normalized)."""
    from pydantic import BaseModel

    from batch.jobs import _attach_links
    from kinds.merchant_risk.runtime import links_by_merchant, with_links

    edges = pd.DataFrame({"src": ["M1"], "dst": ["M2"], "link_type": ["shared_device"]})
    links = links_by_merchant(edges)
    frame = _attach_links(pd.DataFrame({"merchant_id": ["m1", " M1", "Ｍ1", "M3"]}), "merchant_id", "links", links)
    assert [len(v) for v in frame["links"]] == [1, 1, 1, 0]
    assert frame["links"][0] == [{"merchant_id": "M2", "link_type": "shared_device"}]

    class Merchant(BaseModel):
        merchant_id: str
        links: list[dict[str, str]] | None = None

    attached = with_links([Merchant(merchant_id="m2"), Merchant(merchant_id="M9")], edges)
    assert attached[0].links == [{"merchant_id": "M1", "link_type": "shared_device"}] and attached[1].links is None


def test_an_id_given_twice_rejects_each_of_its_rows_as_the_service_refuses_the_call() -> None:
    frame = pd.DataFrame({"review_id": ["a", "b", "a", "c"], "text": ["cheap promo", "fits well", "fits", "ok"],
                          "merchant_id": ["m0", "m1", "m2", "m3"]}).astype(object)
    for results, rejects in (score_file(REVIEW_SPAM, MODEL, frame), score_frame(REVIEW_SPAM, MODEL, frame)):
        assert list(results["id"]) == ["b", "c"]  # compared as the kind's id_key compares ids
        assert rejects[["row", "field"]].values.tolist() == [[0, "review_id"], [2, "review_id"]]


def test_a_rerun_redoes_an_input_under_another_policy_or_holds_and_drops_stale_rejects(tmp_path: Path) -> None:
    source = tmp_path / "reviews.parquet"
    FRAME.to_parquet(source)
    out = tmp_path / "out"
    first = run_local(REVIEW_SPAM, MODEL, [source], out, lambda ids: {}, None, lambda _: None, job="policy p1")
    assert first.rejected == 1 and (out / "reviews.rejects.parquet").is_file()
    same = run_local(REVIEW_SPAM, MODEL, [source], out, lambda ids: {}, None, lambda _: None, job="policy p1")
    assert same.skipped_files == 1
    FRAME.head(2).to_parquet(source)  # the bad row fixed: its old reject must not stay beside the new results
    other = run_local(REVIEW_SPAM, MODEL, [source], out, lambda ids: {}, None, lambda _: None, job="policy p2")
    assert (other.skipped_files, other.rejected) == (0, 0) and not (out / "reviews.rejects.parquet").exists()


def test_two_inputs_that_would_write_one_output_are_refused(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "x.parquet")
    FRAME.to_csv(tmp_path / "x.CSV", index=False)
    with pytest.raises(ShopGuardError, match="would both write x.parquet"):
        input_files(str(tmp_path / "x.*"))


def test_cells_are_read_as_the_service_reads_a_call(tmp_path: Path) -> None:
    import numpy as np

    from batch.jobs import read_table
    from kinds import model_kind

    listings, merchants = model_kind("listing-quality"), model_kind("merchant-risk")
    csv = tmp_path / "l.csv"  # pandas writes an int column with a gap as 7.0: still an int for the API
    csv.write_text("listing_id,title,category,price,image_count\n007,毛毯,home,59,7.0\n008,毛毯,home,1e2,\n",
                   encoding="utf-8")
    valid, rejects = validate_rows(listings, read_table(csv, record=listings.record))
    assert rejects == [] and [(r.listing_id, r.price, r.image_count) for _, r in valid] == [("007", 59.0, 7),
                                                                                           ("008", 100.0, None)]
    # Parquet's list cells are numpy arrays (one link was read as a dict, two aborted the job), and a
    # field the API takes as null is sent as null, not left out ("Field required")
    link = {"merchant_id": "M2", "link_type": "shared_device"}
    row = {"merchant_id": "M1", "account_age_days": None, "orders_30d": 5.0, "gmv_30d": 9.0, "refund_rate": 0.1,
           "return_rate": 0.1, "complaint_rate": 0.0, "negative_review_rate": 0.1, "late_shipment_rate": 0.0,
           "no_ship_rate": 0.0, "presale_share": 0.0, "cs_response_minutes": 3.0, "sales_spike_ratio": 1.0,
           "review_burstiness": 0.1, "category_spread": 1.0}
    frame = pd.DataFrame([{**row, "links": np.array([link, link])}, {**row, "merchant_id": "M3",
                                                                     "links": np.array([link])}]).astype(object)
    valid, rejects = validate_rows(merchants, frame.where(frame.notna(), None))
    assert rejects == [] and [len(r.links) for _, r in valid] == [2, 1] and valid[0][1].account_age_days is None


def test_a_file_every_row_of_which_fails_for_one_reason_says_it_once(tmp_path: Path) -> None:
    source = tmp_path / "labelled.parquet"
    FRAME.head(2).assign(is_spam=[1, 0]).to_parquet(source)  # a label column the records do not have
    said: list[str] = []
    report = run_local(REVIEW_SPAM, MODEL, [source], tmp_path / "out", lambda ids: {}, None, said.append)
    assert report.rejected == 2 and said[-1].endswith("every row: is_spam: unknown column 'is_spam'")
    FRAME.to_parquet(source)  # one bad row of three: no such line
    run_local(REVIEW_SPAM, MODEL, [source], tmp_path / "out2", lambda ids: {}, None, said.append)
    assert "every row" not in said[-1]
