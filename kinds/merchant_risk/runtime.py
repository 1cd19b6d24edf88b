"""The ``merchant-risk`` runtime: LightGBM over own + linked-merchant features.

The bundle keeps the reference graph of training time (each merchant's own features, the
training labels known then, and the links), so a merchant scored later is compared with
the merchants it is linked to, whether or not the request lists those links again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel

from common.decisions import DEFAULT_THRESHOLD_KEY, Thresholds, decide
from features.ids import merchant_key
from features.reasons import Reason, top_reasons
from kinds.merchant_risk.features import (
    MerchantFeatureSpec,
    MerchantGraph,
    build_merchant_features,
    describe_merchant_feature,
    merchant_reason_codes,
)
from kinds.runtime import Explain, Records, RuntimeBase, Scores, as_rows, explain_cut
from registry.store import LoadedBundle

MODEL_FILE_PATTERN = "model_{}.lgb.txt"
SPEC_FILE = "merchant_spec.json"
REFERENCE_FILE = "reference_merchants.parquet"
LINKS_FILE = "reference_links.parquet"


class MerchantRiskModel(RuntimeBase):
    """Scores merchants from their behaviour and their links."""

    def __init__(self, boosters: Sequence[lgb.Booster], spec: MerchantFeatureSpec,
                 feature_medians: Sequence[float], thresholds: Thresholds, reference: MerchantGraph,
                 tag: str = "merchant-risk:unsaved") -> None:
        if not boosters:
            raise ValueError("a merchant-risk model needs at least one booster")
        self.boosters = list(boosters)
        self.spec = spec
        self.feature_medians = np.asarray(feature_medians, dtype=np.float64)
        self.thresholds = thresholds
        self.reference = reference
        self.tag = tag
        self.threads = 0  # LightGBM's num_threads (0: OpenMP's default)
        # Keyed by the normalized id (``merchant_key``): ``m0-1``, ``"M0-1 "`` and ``Ｍ0-1`` find ``M0-1``.
        keys = list(merchant_keys(reference.ids))
        self._index = {key: i for i, key in enumerate(keys)}
        self._neighbours: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for a, b, t in zip(reference.src, reference.dst, reference.link_type, strict=True):
            type_name = spec.link_types[t]
            self._neighbours[keys[a]].append((keys[b], type_name))
            self._neighbours[keys[b]].append((keys[a], type_name))

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write each member as LightGBM text, the spec as JSON and the reference graph as
        Parquet."""
        for index, booster in enumerate(self.boosters):
            booster.save_model(str(folder / MODEL_FILE_PATTERN.format(index)))
        spec_json = {"name": self.spec.name, "own_features": list(self.spec.own_features),
                     "link_types": list(self.spec.link_types), "graph": self.spec.graph,
                     "aggregates": list(self.spec.aggregates), "members": len(self.boosters),
                     "feature_medians": [None if np.isnan(v) else float(v) for v in self.feature_medians]}
        (folder / SPEC_FILE).write_text(json.dumps(spec_json, indent=2), encoding="utf-8")
        reference, links = self.reference_tables()
        reference.rename(columns={"known": "known_label"}).to_parquet(folder / REFERENCE_FILE, index=False)
        links.to_parquet(folder / LINKS_FILE, index=False)

    @classmethod
    def from_bundle(cls, bundle: LoadedBundle, *, device: str = "cpu", threads: int = 0) -> MerchantRiskModel:
        """Load from a verified bundle (LightGBM runs on CPU whatever ``device`` says, on
        ``threads`` threads; 0: OpenMP's default)."""
        folder = bundle.path
        spec_json = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        spec = MerchantFeatureSpec(spec_json["name"], tuple(spec_json["own_features"]),
                                   tuple(spec_json["link_types"]), spec_json["graph"],
                                   tuple(spec_json["aggregates"]))
        reference = pd.read_parquet(folder / REFERENCE_FILE)
        links = pd.read_parquet(folder / LINKS_FILE)
        known = {m: int(v) for m, v in zip(reference["merchant_id"], reference["known_label"], strict=True)
                 if v == v}
        graph = MerchantGraph.build(reference["merchant_id"].to_numpy(),
                                    reference[list(spec.own_features)].to_numpy(np.float64),
                                    list(links.itertuples(index=False, name=None)), spec.link_types, known)
        medians = [np.nan if v is None else v for v in spec_json["feature_medians"]]
        boosters = [lgb.Booster(model_file=str(folder / MODEL_FILE_PATTERN.format(i)))
                    for i in range(spec_json["members"])]
        model = cls(boosters, spec, medians, bundle.manifest.thresholds[DEFAULT_THRESHOLD_KEY], graph, bundle.tag)
        model.threads = threads
        return model

    # -- scoring ---------------------------------------------------------------------------
    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Probability of ``suspicious``: the sigmoid of the members' mean log-odds."""
        raw = np.mean([b.predict(matrix, raw_score=True, num_threads=self.threads) for b in self.boosters], axis=0)
        return 1.0 / (1.0 + np.exp(-np.asarray(raw, dtype=np.float64)))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions averaged over members (last column: bias)."""
        return np.mean([np.asarray(b.predict(matrix, pred_contrib=True, num_threads=self.threads))
                        for b in self.boosters], axis=0)

    def local_graph(self, merchants: Sequence[Mapping[str, Any]]) -> tuple[MerchantGraph, np.ndarray]:
        """A graph of the scored merchants and their neighbours (request links plus the
        reference links), with reference values and known labels for the neighbours. Its
        merchants are named by their normalized ids (``merchant_key``), as merchants are
        compared everywhere; answers keep the ids callers sent."""
        scored_ids = [merchant_key(str(m["merchant_id"])) for m in merchants]
        values: dict[str, np.ndarray] = {}
        links: list[tuple[str, str, str]] = []
        for merchant_id, merchant in zip(scored_ids, merchants, strict=True):
            values[merchant_id] = np.array([np.nan if merchant.get(f) is None else float(merchant[f])
                                            for f in self.spec.own_features])
            links += [(merchant_id, other, t) for other, t in self._neighbours.get(merchant_id, [])]
            links += [(merchant_id, merchant_key(str(link["merchant_id"])), str(link["link_type"]))
                      for link in merchant.get("links") or []]
        for _, other, _ in links:
            if other not in values:
                position = self._index.get(other)
                values[other] = (self.reference.values[position] if position is not None
                                 else np.full(len(self.spec.own_features), np.nan))
        ids = list(values)
        known = {}
        for merchant_id in ids:
            position = self._index.get(merchant_id)
            if position is not None and not np.isnan(self.reference.known_labels[position]):
                known[merchant_id] = int(self.reference.known_labels[position])
        graph = MerchantGraph.build(ids, np.vstack([values[m] for m in ids]), links,
                                    self.spec.link_types, known)
        position_of = {m: i for i, m in enumerate(ids)}
        rows = np.array([position_of[m] for m in scored_ids], dtype=np.int64)
        return graph, rows

    def score(self, records: Records, explain: Explain = "flagged") -> Scores:
        """Score merchants (API records, dicts of own features + optional ``links``, or a
        table with those columns). Reasons (ring evidence; TreeSHAP over the ensemble, the
        costly part) for review and block results by default."""
        graph, rows = self.local_graph(as_rows(records))
        return self.score_matrix(build_merchant_features(graph, rows, self.spec), explain)

    def score_matrix(self, matrix: np.ndarray, explain: Explain = "flagged") -> Scores:
        """Score merchants whose features (``spec.feature_names`` order) are already built,
        such as by ``graph_scale`` for a whole catalogue."""
        explain_from = explain_cut(explain, self.thresholds)
        scores = self.predict_matrix(matrix)
        reasons: list[list[Reason]] = [[] for _ in range(len(matrix))]
        explained = np.flatnonzero(scores >= explain_from) if explain_from is not None else np.array([], dtype=int)
        if len(explained):
            contributions = self.contributions(matrix[explained])
            codes = merchant_reason_codes(self.spec)
            for row, i in enumerate(explained):
                reasons[i] = top_reasons(self.spec.feature_names, matrix[i], contributions[row, :-1], [],
                                         self.feature_medians, reason_codes=codes,
                                         describe=describe_merchant_feature)
        return Scores(scores, [decide(float(s), self.thresholds) for s in scores], reasons)

    def reference_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The reference graph as tables: merchants (id, own features, ``known`` label) and
        links (src, dst, link_type)."""
        merchants = pd.DataFrame(self.reference.values, columns=list(self.spec.own_features))
        merchants.insert(0, "merchant_id", self.reference.ids)
        merchants["known"] = self.reference.known_labels
        links = pd.DataFrame({
            "src": self.reference.ids[self.reference.src], "dst": self.reference.ids[self.reference.dst],
            "link_type": [self.spec.link_types[t] for t in self.reference.link_type]})
        return merchants, links

    def missing_api_fields(self, record: type[BaseModel]) -> list[str]:
        """The own features of this version's feature set that ``record`` lacks (a model
        trained on a generic table's columns)."""
        return [f for f in self.spec.own_features if f not in record.model_fields]

    def score_catalogue(self, records: Sequence[BaseModel], links: pd.DataFrame | None = None) -> Scores:
        """A whole file's merchants with the graph features computed out of core by DuckDB
        (``graph_scale.py``) instead of per request: every merchant of the file is a neighbour
        with its values from the file, other merchants come from the reference graph (known
        labels too), links are the file's, the records' own and the reference's. For a file
        that fits one request this is exactly what ``score`` answers."""
        from kinds.merchant_risk.graph_scale import graph_features_duckdb

        if not self.spec.graph or "max" in self.spec.aggregates:  # nothing to gain, or not computed out of core
            return RuntimeBase.score_catalogue(self, with_links(records, links))
        if not records:
            return Scores(np.zeros(0), [], [])
        keys = [merchant_key(r.merchant_id) for r in records]  # merchants named as ``score`` names them
        nodes = pd.DataFrame({"merchant_id": keys,
                              **{f: [getattr(r, f) for r in records] for f in self.spec.own_features}})
        nodes = nodes.drop_duplicates("merchant_id", keep="last")  # as a request's values: the last wins
        reference, reference_links = self.reference_tables()
        reference["merchant_id"] = merchant_keys(reference["merchant_id"])
        reference = reference.drop_duplicates("merchant_id", keep="last")
        nodes["known"] = nodes["merchant_id"].map(dict(zip(reference["merchant_id"], reference["known"], strict=True)))
        others = reference[~reference["merchant_id"].isin(set(nodes["merchant_id"]))]
        link_sources = [keyed_links(reference_links)]
        if links is not None:
            link_sources.append(keyed_links(links))
        own_links = [(key, merchant_key(link.merchant_id), str(link.link_type))
                     for key, r in zip(keys, records, strict=True) for link in r.links or []]
        if own_links:
            link_sources.append(pd.DataFrame(own_links, columns=["src", "dst", "link_type"]))
        ids, matrix = graph_features_duckdb(pd.concat([nodes, others], ignore_index=True), link_sources, self.spec,
                                            label_column="known", endpoints_as_merchants=True)
        position = {merchant_id: i for i, merchant_id in enumerate(ids[:len(nodes)])}
        return self.score_matrix(matrix[[position[key] for key in keys]])


def merchant_keys(ids: pd.Series | np.ndarray) -> np.ndarray:
    """``merchant_key`` of each id, each distinct id normalized once (edge lists repeat them)."""
    codes, distinct = pd.factorize(np.asarray(ids).astype(str))
    return np.asarray([merchant_key(v) for v in distinct], dtype=object)[codes]


def keyed_links(frame: pd.DataFrame) -> pd.DataFrame:
    """An edge list (src, dst, link_type) with its merchants named by their normalized ids."""
    return frame.assign(src=merchant_keys(frame["src"]), dst=merchant_keys(frame["dst"]))


def links_by_merchant(frame: pd.DataFrame | None) -> dict[str, list[dict[str, str]]]:
    """Each merchant's links from an edge list table (src, dst, link_type), both directions,
    keyed by the normalized merchant id (``merchant_key``: ``M1``, ``m1`` and ``"M1 "`` are one)."""
    if frame is None:
        return {}
    links: dict[str, list[dict[str, str]]] = {}
    for src, dst, link_type in frame.itertuples(index=False):
        links.setdefault(merchant_key(str(src)), []).append({"merchant_id": dst, "link_type": link_type})
        links.setdefault(merchant_key(str(dst)), []).append({"merchant_id": src, "link_type": link_type})
    return links


def with_links(records: Sequence[BaseModel], links: pd.DataFrame | None) -> list[BaseModel]:
    """Records whose ``links`` are missing given their links from the edge list."""
    by_merchant = links_by_merchant(links)
    if not by_merchant:
        return list(records)
    keys = [merchant_key(str(getattr(r, "merchant_id", ""))) for r in records]
    return [r if getattr(r, "links", None) is not None or key not in by_merchant
            else type(r).model_validate({**r.model_dump(), "links": by_merchant[key]})
            for r, key in zip(records, keys, strict=True)]
