"""Merchant features: own behaviour plus aggregates over linked merchants (fraud rings).

One function, ``build_merchant_features``, computes them for training and serving. Labels
enter only through ``MerchantGraph.known_labels`` (training labels of other merchants); a
merchant's own label never reaches its own features, by construction: self-links are
dropped and the flagged counts exclude the merchant itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from kinds.merchant_risk.record import MERCHANT_LINK_TYPES

MERCHANT_BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "account_age_days", "orders_30d", "gmv_30d", "refund_rate", "return_rate", "complaint_rate",
    "negative_review_rate", "late_shipment_rate", "no_ship_rate", "presale_share",
    "cs_response_minutes", "sales_spike_ratio", "review_burstiness", "category_spread",
)
GENERIC_LINK_TYPE = "link"


GRAPH_AGGREGATES: tuple[str, ...] = ("counts", "mean", "max", "sum", "contrast", "flagged")
DEFAULT_GRAPH_AGGREGATES: tuple[str, ...] = ("counts", "mean", "sum", "contrast", "flagged")


@dataclass(frozen=True)
class MerchantFeatureSpec:
    """Which own features a merchant model uses, which link types it counts and which
    neighbour aggregates it adds (none when ``graph`` is off). The ordered feature names
    follow from these.

    Aggregates: ``counts`` (links per type, degree), ``mean`` / ``max`` / ``sum`` of each own
    feature over linked merchants, ``contrast`` (own value minus the neighbour mean) and
    ``flagged`` (linked merchants flagged in the training labels, per type and in share)."""

    name: str
    own_features: tuple[str, ...]
    link_types: tuple[str, ...]
    graph: bool = True
    aggregates: tuple[str, ...] = DEFAULT_GRAPH_AGGREGATES

    def __post_init__(self) -> None:
        unknown = set(self.aggregates) - set(GRAPH_AGGREGATES)
        if unknown:
            raise ValueError(f"unknown graph aggregates {sorted(unknown)}; use {GRAPH_AGGREGATES}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Own features, then each enabled aggregate's columns in ``GRAPH_AGGREGATES`` order."""
        if not self.graph:
            return self.own_features
        names = list(self.own_features)
        for aggregate in GRAPH_AGGREGATES:
            if aggregate in self.aggregates:
                names += _aggregate_names(aggregate, self)
        return tuple(names)


def _aggregate_names(aggregate: str, spec: MerchantFeatureSpec) -> list[str]:
    if aggregate == "counts":
        return [f"links_{t}" for t in spec.link_types] + ["degree"]
    if aggregate in ("mean", "max", "sum"):
        return [f"nbr_{aggregate}_{f}" for f in spec.own_features]
    if aggregate == "contrast":
        return [f"vs_nbr_{f}" for f in spec.own_features]
    return [f"flagged_{t}" for t in spec.link_types] + ["flagged_neighbours", "flagged_share",
                                                          "known_neighbours"]


MERCHANT_FEATURE_SPEC = MerchantFeatureSpec(
    name="merchant_risk_v1", own_features=MERCHANT_BEHAVIOUR_FEATURES, link_types=MERCHANT_LINK_TYPES,
)


@dataclass
class MerchantGraph:
    """Every merchant that can appear as a neighbour, with its own feature values, the links
    between merchants and the labels known at training time (NaN = unknown)."""

    ids: np.ndarray
    values: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    link_type: np.ndarray
    known_labels: np.ndarray

    @classmethod
    def build(cls, ids: Sequence[str], values: np.ndarray, links: Sequence[tuple[str, str, str]],
              link_types: Sequence[str], known: dict[str, int] | None = None) -> MerchantGraph:
        """Index merchants and links; links to unknown merchants or of unknown types are
        dropped, self-links too."""
        import pandas as pd

        id_array = np.asarray([str(i) for i in ids])
        index = pd.Index(id_array)
        if len(links):
            src_ids, dst_ids, types = (np.asarray([str(v) for v in column]) for column in zip(*links, strict=True))
        else:
            src_ids = dst_ids = types = np.asarray([], dtype=str)
        src = index.get_indexer(src_ids)
        dst = index.get_indexer(dst_ids)
        kind = pd.Index(list(link_types)).get_indexer(types)
        keep = (src >= 0) & (dst >= 0) & (kind >= 0) & (src != dst)
        labels = np.full(len(id_array), np.nan)
        if known:
            positions = index.get_indexer(list(known))
            values_known = np.asarray(list(known.values()), dtype=np.float64)
            labels[positions[positions >= 0]] = values_known[positions >= 0]
        return cls(id_array, np.asarray(values, dtype=np.float64), src[keep].astype(np.int64),
                   dst[keep].astype(np.int64), kind[keep].astype(np.int64), labels)

    def adjacency(self, type_id: int | None = None) -> sparse.csr_matrix:
        """Symmetric 0/1 adjacency (one link type, or all), no self-loops."""
        mask = np.ones(len(self.src), bool) if type_id is None else self.link_type == type_id
        n = len(self.ids)
        rows = np.concatenate([self.src[mask], self.dst[mask]])
        cols = np.concatenate([self.dst[mask], self.src[mask]])
        matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        matrix.data[:] = 1.0  # duplicate links count once
        matrix.setdiag(0)
        matrix.eliminate_zeros()
        return matrix


def _neighbour_max(adjacency: sparse.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Row-wise max of neighbours' values (NaN where a merchant has no neighbour)."""
    out = np.full((adjacency.shape[0], values.shape[1]), np.nan)
    starts, ends = adjacency.indptr[:-1], adjacency.indptr[1:]
    has = ends > starts
    if not has.any():
        return out
    gathered = np.where(np.isnan(values), -np.inf, values)[adjacency.indices]
    reduced = np.maximum.reduceat(gathered, starts[has], axis=0)
    reduced[np.isinf(reduced)] = np.nan
    out[has] = reduced
    return out


def build_merchant_features(graph: MerchantGraph, rows: np.ndarray,
                            spec: MerchantFeatureSpec) -> np.ndarray:
    """Feature matrix for the merchants at positions ``rows`` of ``graph``."""
    own = graph.values[rows]
    if not spec.graph:
        return own
    sub = graph.adjacency()[rows].tocsr()
    blocks: dict[str, list[np.ndarray]] = {}
    if "counts" in spec.aggregates:
        per_type = [np.asarray(graph.adjacency(t)[rows].sum(axis=1)).ravel()
                    for t in range(len(spec.link_types))]
        blocks["counts"] = [*per_type, np.asarray(sub.sum(axis=1)).ravel()]
    filled = np.nan_to_num(graph.values, nan=0.0)
    nbr_sum = np.asarray(sub @ filled)
    present = np.asarray(sub @ (~np.isnan(graph.values)).astype(np.float64))
    nbr_mean = np.where(present > 0, nbr_sum / np.maximum(present, 1), np.nan)
    blocks["mean"] = [nbr_mean]
    blocks["sum"] = [nbr_sum]
    blocks["contrast"] = [own - nbr_mean]
    if "max" in spec.aggregates:
        blocks["max"] = [_neighbour_max(sub, graph.values)]
    if "flagged" in spec.aggregates:
        known = ~np.isnan(graph.known_labels)
        flagged_vector = np.where(known, np.nan_to_num(graph.known_labels), 0.0)
        per_type = [graph.adjacency(t)[rows] @ flagged_vector for t in range(len(spec.link_types))]
        flagged = sub @ flagged_vector
        known_count = sub @ known.astype(np.float64)
        share = np.where(known_count > 0, flagged / np.maximum(known_count, 1), np.nan)
        blocks["flagged"] = [*per_type, flagged, share, known_count]
    columns = [own] + [block for a in GRAPH_AGGREGATES if a in spec.aggregates for block in blocks[a]]
    return np.column_stack(columns)


def merchant_reason_codes(spec: MerchantFeatureSpec) -> dict[str, tuple[str, str]]:
    """Reason codes (low, high) of every merchant feature."""
    codes: dict[str, tuple[str, str]] = {f: (f"low_{f}", f"high_{f}") for f in spec.own_features}
    for link_type in spec.link_types:
        codes[f"links_{link_type}"] = (f"links_{link_type}", f"many_links_{link_type}")
        codes[f"flagged_{link_type}"] = (f"linked_to_flagged_by_{link_type}",) * 2
    codes["degree"] = ("few_links", "many_links")
    for prefix in ("nbr_mean_", "nbr_max_", "nbr_sum_"):
        for feature in spec.own_features:
            codes[prefix + feature] = (f"linked_merchants_low_{feature}", f"linked_merchants_high_{feature}")
    for feature in spec.own_features:
        codes[f"vs_nbr_{feature}"] = (f"{feature}_below_linked_merchants", f"{feature}_above_linked_merchants")
    for name in ("flagged_neighbours", "flagged_share", "known_neighbours"):
        codes[name] = ("linked_to_flagged_merchants", "linked_to_flagged_merchants")
    return codes


def describe_merchant_feature(feature: str, value: float, contribution: float) -> str | None:
    """Ring evidence in words, e.g. 'linked to 4 flagged merchants by shared_payout_account'."""
    if value != value:
        return None
    if feature.startswith("flagged_") and feature not in ("flagged_neighbours", "flagged_share"):
        return (f"linked to {int(value)} flagged merchant(s) by {feature.removeprefix('flagged_')} "
                f"(+{contribution:.2f} log-odds)")
    if feature == "flagged_neighbours":
        return f"linked to {int(value)} flagged merchant(s) in all (+{contribution:.2f} log-odds)"
    if feature == "flagged_share":
        return f"{value:.0%} of linked merchants with known labels are flagged (+{contribution:.2f} log-odds)"
    if feature.startswith("links_"):
        return f"{int(value)} {feature.removeprefix('links_')} link(s) (+{contribution:.2f} log-odds)"
    return None
