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

MERCHANT_BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "account_age_days", "orders_30d", "gmv_30d", "refund_rate", "return_rate", "complaint_rate",
    "negative_review_rate", "late_shipment_rate", "no_ship_rate", "presale_share",
    "cs_response_minutes", "sales_spike_ratio", "review_burstiness", "category_spread",
)
MERCHANT_LINK_TYPES: tuple[str, ...] = (
    "shared_device", "shared_payout_account", "shared_return_address", "shared_owner_id",
)
GENERIC_LINK_TYPE = "link"


@dataclass(frozen=True)
class MerchantFeatureSpec:
    """Which own features a merchant model uses, which link types it counts and whether it
    adds neighbour aggregates. The ordered feature names follow from these."""

    name: str
    own_features: tuple[str, ...]
    link_types: tuple[str, ...]
    graph: bool = True

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Own features, then per-link-type counts, degree, neighbour mean / max / sum of each
        own feature, and flagged-neighbour counts."""
        if not self.graph:
            return self.own_features
        names = list(self.own_features)
        names += [f"links_{t}" for t in self.link_types] + ["degree"]
        names += [f"nbr_mean_{f}" for f in self.own_features]
        names += [f"nbr_max_{f}" for f in self.own_features]
        names += [f"nbr_sum_{f}" for f in self.own_features]
        names += [f"flagged_{t}" for t in self.link_types]
        names += ["flagged_neighbours", "flagged_share", "known_neighbours"]
        return tuple(names)


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
        id_array = np.asarray([str(i) for i in ids])
        position = {m: i for i, m in enumerate(id_array)}
        type_index = {t: i for i, t in enumerate(link_types)}
        src, dst, kind = [], [], []
        for a, b, t in links:
            ia, ib, it = position.get(str(a)), position.get(str(b)), type_index.get(str(t))
            if ia is None or ib is None or it is None or ia == ib:
                continue
            src.append(ia)
            dst.append(ib)
            kind.append(it)
        labels = np.full(len(id_array), np.nan)
        for merchant, label in (known or {}).items():
            if merchant in position:
                labels[position[merchant]] = float(label)
        return cls(id_array, np.asarray(values, dtype=np.float64), np.asarray(src, dtype=np.int64),
                   np.asarray(dst, dtype=np.int64), np.asarray(kind, dtype=np.int64), labels)

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
    adjacency = graph.adjacency()
    sub = adjacency[rows]
    degree = np.asarray(sub.sum(axis=1)).ravel()
    filled = np.nan_to_num(graph.values, nan=0.0)
    counts = np.asarray(sub @ (~np.isnan(graph.values)).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        nbr_sum = np.asarray(sub @ filled)
        nbr_mean = np.where(counts > 0, nbr_sum / np.maximum(counts, 1), np.nan)
    nbr_max = _neighbour_max(sub.tocsr(), graph.values)
    known = ~np.isnan(graph.known_labels)
    flagged_vector = np.where(known, np.nan_to_num(graph.known_labels), 0.0)
    per_type_links, per_type_flagged = [], []
    for type_id in range(len(spec.link_types)):
        typed = graph.adjacency(type_id)[rows]
        per_type_links.append(np.asarray(typed.sum(axis=1)).ravel())
        per_type_flagged.append(typed @ flagged_vector)
    flagged = sub @ flagged_vector
    known_count = sub @ known.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(known_count > 0, flagged / np.maximum(known_count, 1), np.nan)
    return np.column_stack([
        own, *per_type_links, degree, nbr_mean, nbr_max, nbr_sum, *per_type_flagged,
        flagged, share, known_count,
    ])


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
