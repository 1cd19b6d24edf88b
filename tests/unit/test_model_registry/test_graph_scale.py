"""The out-of-core (DuckDB) merchant graph features equal the in-memory ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kinds.merchant_risk.features import (
    MERCHANT_FEATURE_SPEC,
    MerchantGraph,
    build_merchant_features,
)
from kinds.merchant_risk.generator import MerchantGenerationConfig, generate_merchants
from kinds.merchant_risk.graph_scale import graph_features_duckdb


def test_duckdb_graph_features_equal_the_in_memory_ones(tmp_path) -> None:
    merchants, links = generate_merchants(MerchantGenerationConfig(n=3000, seed=4))
    rng = np.random.default_rng(0)
    known = rng.random(len(merchants)) < 0.6  # training labels known for some merchants only
    merchants = merchants.assign(known_label=np.where(known, merchants["is_suspicious"], np.nan))
    extra = pd.DataFrame({"src": [merchants["merchant_id"].iloc[0], merchants["merchant_id"].iloc[1], "nobody"],
                          "dst": [merchants["merchant_id"].iloc[0], merchants["merchant_id"].iloc[2], "M-x"],
                          "link_type": ["shared_device", "made_up_type", "shared_device"]})
    links = pd.concat([links, links.head(50), extra], ignore_index=True)  # duplicates, a self-link, unknowns
    merchants.to_parquet(tmp_path / "merchants.parquet", index=False)
    links.to_parquet(tmp_path / "links.parquet", index=False)

    ids, matrix = graph_features_duckdb(tmp_path / "merchants.parquet", tmp_path / "links.parquet",
                                        MERCHANT_FEATURE_SPEC, label_column="known_label", memory_limit="256MB",
                                        temp_directory=str(tmp_path / "spill"))
    features = list(MERCHANT_FEATURE_SPEC.own_features)
    graph = MerchantGraph.build(merchants["merchant_id"].to_numpy(), merchants[features].to_numpy(np.float64),
                                list(links.astype(str).itertuples(index=False, name=None)),
                                MERCHANT_FEATURE_SPEC.link_types,
                                {m: int(v) for m, v in zip(merchants["merchant_id"], merchants["known_label"],
                                                           strict=True) if v == v})
    expected = build_merchant_features(graph, np.arange(len(merchants)), MERCHANT_FEATURE_SPEC)
    assert ids.tolist() == merchants["merchant_id"].tolist()
    assert matrix.shape == expected.shape == (len(merchants), len(MERCHANT_FEATURE_SPEC.feature_names))
    np.testing.assert_allclose(matrix, expected, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert np.nansum(matrix[:, features.__len__()]) > 0  # links were counted at all
