"""The written minimal pairs: what is kept, and how they join a generated file."""

import pandas as pd

from benchmarks.marketing_written import agreed, read_pairs, with_written


def test_only_rows_all_three_agree_on_are_kept_with_the_categories_both_annotators_chose() -> None:
    rows = [
        {"set": "claims", "pair": 1, "text": "a", "labels_writer": ["price_fraud"], "labels_a": ["price_fraud"],
         "labels_b": ["price_fraud", "absolute_claim"]},
        {"set": "claims", "pair": 1, "text": "b", "labels_writer": [], "labels_a": [], "labels_b": ["price_fraud"]},
        {"set": "claims", "pair": 2, "text": "c", "labels_writer": ["guarantee_claim"], "labels_a": [], "labels_b": []},
        {"set": "claims", "pair": 2, "text": "d", "labels_writer": ["guarantee_claim"],
         "labels_a": ["efficacy_claim"], "labels_b": ["guarantee_claim"]},
    ]
    assert [(r["text"], r["labels"]) for r in agreed(rows)] == [("a", ["price_fraud"])]


def test_the_stored_pairs_are_whole_and_a_pair_shares_one_stream_id() -> None:
    rows = read_pairs()
    pairs = pd.DataFrame(rows).groupby(["set", "pair"])["labels_writer"].apply(lambda s: sorted(map(bool, s)))
    assert len(rows) == 2000 and all(v == [False, True] for v in pairs)
    kept = agreed(rows)
    joined = with_written(pd.DataFrame({"stream_id": ["S0"], "text": ["x"], "labels": [""], "source": ["synthetic"]}),
                          kept)
    written = joined.iloc[1:]
    assert len(joined) == len(kept) + 1 and set(written["source"]) == {"synthetic"}
    assert written.groupby("stream_id").size().max() == 2
    assert (written["hard_negative"] == (written["labels"] == "")).all()
