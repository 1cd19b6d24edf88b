import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from common.errors import ShopGuardError
from training.grouped import cluster_interval, group_folds, heldout_checks
from training.real_checks import auc_check


def test_folds_hold_whole_groups_out_and_cover_every_row_once() -> None:
    rng = np.random.default_rng(0)
    groups = rng.choice([f"room-{i}" for i in range(23)], size=2000, p=rng.dirichlet(np.ones(23)))
    folds = group_folds(groups, 5, seed=3)
    assert len(folds) == 5
    rows = np.concatenate(folds)
    assert sorted(rows.tolist()) == list(range(len(groups)))  # every row in exactly one fold
    seen = [set(groups[f]) for f in folds]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])  # no group split
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= max(np.unique(groups, return_counts=True)[1])  # greedy balance


def test_folds_are_seeded_and_refuse_too_few_groups() -> None:
    groups = np.array([f"g{i % 7}" for i in range(70)])
    assert [f.tolist() for f in group_folds(groups, 3, 1)] == [f.tolist() for f in group_folds(groups, 3, 1)]
    with pytest.raises(ShopGuardError, match="at least 8 groups"):
        group_folds(groups, 8)


def test_cluster_interval_resamples_groups_and_widens_with_group_effects() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 50).astype(str)
    same = rng.random(1000) < 0.3  # rows independent of their group
    by_group = np.repeat(rng.random(20) < 0.3, 50)  # everything decided by the group

    def share(values: np.ndarray):
        return lambda rows: float(values[rows].mean())

    low_same, high_same = cluster_interval(groups, share(same), 300)
    low_group, high_group = cluster_interval(groups, share(by_group), 300)
    assert low_same < same.mean() < high_same
    assert (high_group - low_group) > 2 * (high_same - low_same)


def test_heldout_checks_report_the_served_decisions() -> None:
    positive = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    flagged = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.4, 0.05])
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    labels = np.zeros((8, 2))
    labels[[0, 1], 0] = 1
    labels[2, 1] = 1
    flags = np.zeros((8, 2), dtype=bool)
    flags[0, 0] = True
    blocked = np.array([1, 0, 0, 1, 0, 0, 0, 0], dtype=bool)
    checks = heldout_checks(positive, flagged, scores, groups, labels, flags, ["x", "y"], "note", n_boot=50,
                            blocked=blocked).by_key()
    assert checks["binary_f1"].value == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert checks["clean_flagged"].value == pytest.approx(1 / 5) and checks["clean_flagged"].rows == 5
    assert checks["violations_caught"].value == pytest.approx(2 / 3)
    assert checks["flag_precision"].value == pytest.approx(2 / 3)
    assert checks["block_precision"].value == pytest.approx(1 / 2) and checks["block_precision"].met is False
    nothing_blocked = heldout_checks(positive, flagged, scores, groups, labels, flags, ["x", "y"], "note", n_boot=10,
                                     blocked=np.zeros(8, dtype=bool)).by_key()
    assert "block_precision" not in nothing_blocked
    assert checks["roc_auc"].value == pytest.approx(roc_auc_score(positive, scores))
    assert checks["recall_x"].value == pytest.approx(1 / 2) and checks["recall_y"].value == 0.0
    assert checks["clean_flagged"].met is False  # 20% against the 5% target


def test_too_few_groups_or_positives_give_no_interval_and_no_met_target() -> None:
    positive = np.array([1, 0, 1, 0], dtype=bool)  # 4 perfectly decided rows in 2 rooms
    scores = np.array([0.9, 0.1, 0.8, 0.2])
    labels = positive[:, None].astype(float)
    small = heldout_checks(positive, positive, scores, np.array(["a", "a", "b", "b"]), labels, labels > 0, ["x"],
                           "note", n_boot=100).by_key()
    for key in ("binary_f1", "roc_auc"):
        assert small[key].value == 1.0 and small[key].low is None and small[key].verdict == "not shown"
    assert cluster_interval(np.array(["a", "b"] * 20), lambda rows: float(len(rows)), 50) == (None, None)
    many = np.repeat([True, False], 30)  # 60 rows in 12 rooms, 30 violating: enough evidence
    rooms = np.array([f"room-{i % 12}" for i in range(60)])
    large = heldout_checks(many, many, many.astype(float), rooms, many[:, None].astype(float), many[:, None], ["x"],
                           "note", n_boot=100).by_key()
    assert large["binary_f1"].verdict == "yes" and large["roc_auc"].verdict == "yes"


def test_a_row_bootstrapped_auc_needs_enough_of_each_class() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.linspace(1, 0, 12)
    few = auc_check("auc", "few positives", labels, scores, target=0.85)
    assert few.value == 1.0 and few.low is None and few.verdict == "not shown"
    enough = auc_check("auc", "enough", np.repeat([1, 0], 20), np.linspace(1, 0, 40), target=0.85)
    assert enough.verdict == "yes"
