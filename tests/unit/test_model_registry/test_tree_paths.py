import lightgbm as lgb
import numpy as np

from kinds.tree_paths import PathAttribution


def _booster(seed: int = 0) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 6))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take the default branch
    logit = 2.5 * np.nan_to_num(x[:, 0]) - 1.5 * np.nan_to_num(x[:, 3]) + 0.3 * np.nan_to_num(x[:, 5])
    y = (rng.random(3000) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "verbose": -1, "seed": seed}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=60), x


def test_path_contributions_add_up_to_the_raw_score() -> None:
    booster, x = _booster()
    contributions = PathAttribution(booster).contributions(booster, x[:500])
    assert contributions.shape == (500, 7)
    np.testing.assert_allclose(contributions.sum(axis=1), booster.predict(x[:500], raw_score=True), atol=1e-9)


def test_path_contributions_name_the_same_driving_feature_as_treeshap() -> None:
    booster, x = _booster(1)
    rows = x[:1000]
    path = PathAttribution(booster).contributions(booster, rows)[:, :-1]
    shap = booster.predict(rows, pred_contrib=True)[:, :-1]
    same_top = (np.abs(path).argmax(axis=1) == np.abs(shap).argmax(axis=1)).mean()
    assert same_top > 0.85
    assert np.corrcoef(path[:, 0], shap[:, 0])[0, 1] > 0.95


def test_a_booster_with_single_leaf_trees_is_explained_by_its_bias() -> None:
    x = np.zeros((50, 2))
    y = np.array([0, 1] * 25)
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 100}, lgb.Dataset(x, y),
                        num_boost_round=3)
    contributions = PathAttribution(booster).contributions(booster, x)
    assert (contributions[:, :-1] == 0).all()
    np.testing.assert_allclose(contributions[:, -1], booster.predict(x, raw_score=True))
