import numpy as np
import pytest

from kinds.merchant_risk.features import MerchantFeatureSpec, MerchantGraph, build_merchant_features

SPEC = MerchantFeatureSpec("toy", ("x",), ("device", "payout"),
                           aggregates=("counts", "mean", "max", "sum", "contrast", "flagged"))
LINKS = [("a", "b", "device"), ("a", "c", "payout"), ("a", "a", "device"), ("c", "d", "device"),
         ("a", "zz", "device"), ("b", "a", "device")]


def _features(known: dict[str, int], values=(1.0, 2.0, np.nan, 4.0)) -> dict[str, np.ndarray]:
    graph = MerchantGraph.build(["a", "b", "c", "d"], np.array(values).reshape(-1, 1), LINKS,
                                SPEC.link_types, known)
    matrix = build_merchant_features(graph, np.arange(4), SPEC)
    return {name: matrix[:, i] for i, name in enumerate(SPEC.feature_names)}


def test_counts_ignore_self_links_duplicates_and_unknown_merchants() -> None:
    f = _features({})
    assert f["links_device"].tolist() == [1, 1, 1, 1]  # a-b once (b-a duplicate), a-a dropped
    assert f["links_payout"].tolist() == [1, 0, 1, 0]
    assert f["degree"].tolist() == [2, 1, 2, 1]


def test_neighbour_aggregates_skip_missing_values() -> None:
    f = _features({})
    # a's neighbours: b (2.0) and c (missing)
    assert f["nbr_mean_x"][0] == 2.0
    assert f["nbr_sum_x"][0] == 2.0
    assert f["nbr_max_x"][0] == 2.0
    assert f["vs_nbr_x"][0] == pytest.approx(-1.0)
    # c's neighbours: a (1.0) and d (4.0)
    assert f["nbr_mean_x"][2] == 2.5 and f["nbr_max_x"][2] == 4.0
    assert np.isnan(f["vs_nbr_x"][2])  # c's own value is missing


def test_flagged_neighbours_are_counted_per_link_type() -> None:
    f = _features({"b": 1, "c": 1, "d": 0})
    assert f["flagged_device"][0] == 1 and f["flagged_payout"][0] == 1
    assert f["flagged_neighbours"][0] == 2 and f["flagged_share"][0] == 1.0
    assert f["flagged_share"][2] == 0.0  # c: a unknown, d known honest
    assert f["known_neighbours"][2] == 1


@pytest.mark.parametrize("merchant", ["a", "b", "c", "d"])
def test_own_label_never_reaches_own_features(merchant: str) -> None:
    others = {"a": 1, "b": 0, "c": 1, "d": 0}
    position = "abcd".index(merchant)
    as_positive = _features({**others, merchant: 1})
    as_negative = _features({**others, merchant: 0})
    unknown = _features({k: v for k, v in others.items() if k != merchant})
    for name in SPEC.feature_names:
        np.testing.assert_array_equal(as_positive[name][position], as_negative[name][position], err_msg=name)
        np.testing.assert_array_equal(as_positive[name][position], unknown[name][position], err_msg=name)


def test_without_graph_only_own_features() -> None:
    spec = MerchantFeatureSpec("toy", ("x",), ("device",), graph=False)
    graph = MerchantGraph.build(["a"], np.array([[3.0]]), [], spec.link_types)
    assert build_merchant_features(graph, np.arange(1), spec).tolist() == [[3.0]]
    assert spec.feature_names == ("x",)


def test_unknown_aggregate_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown graph aggregates"):
        MerchantFeatureSpec("toy", ("x",), ("device",), aggregates=("median",))
