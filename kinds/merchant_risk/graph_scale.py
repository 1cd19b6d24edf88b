"""Merchant graph features at catalogue scale, out of core with DuckDB.

``kinds/merchant_risk/features.py`` builds the same features in memory with sparse matrices (fine for
the service's request-sized graphs and for training sets of ~100k merchants). For millions of
merchants and tens of millions of links this computes them with DuckDB joins and
group-bys over Parquet files, spilling to disk under a memory limit. The result equals
``build_merchant_features`` (tested on a generated graph): links are symmetric, a duplicate
link counts once, self-links and links to unknown merchants or types are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kinds.merchant_risk.features import MerchantFeatureSpec


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


Source = str | Path | pd.DataFrame


def graph_features_duckdb(merchants: Source, links: Source | Sequence[Source],
                          spec: MerchantFeatureSpec, label_column: str | None = None,
                          memory_limit: str = "2GB", temp_directory: str | None = None,
                          threads: int | None = None, endpoints_as_merchants: bool = False
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(merchant ids, feature matrix in ``spec.feature_names`` order) for every merchant.

    ``merchants``: a Parquet path (or table) with ``merchant_id``, the own features and
    optionally ``label_column`` (0/1 known labels, null when unknown); ``links``: Parquet
    paths (or tables) with ``src``, ``dst``, ``link_type``, read as one edge list.
    ``endpoints_as_merchants``: a link to a merchant not in ``merchants`` adds it with unknown
    features (as the service's request graphs do) instead of dropping the link; the added
    merchants come after the given ones."""
    import duckdb

    if "max" in spec.aggregates:
        raise ValueError("the out-of-core path computes counts, mean, sum, contrast and flagged; not max")
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if temp_directory:
        con.execute(f"SET temp_directory = '{temp_directory}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    link_sources = list(links) if isinstance(links, list | tuple) else [links]
    sources = [("merchants_src", merchants)] + [(f"links_{i}", source) for i, source in enumerate(link_sources)]
    for name, source in sources:
        if isinstance(source, pd.DataFrame):
            con.register(name, source)
        else:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{Path(source)}')")
    con.execute("CREATE VIEW links_src AS " + " UNION ALL ".join(
        f"SELECT CAST(src AS VARCHAR) AS src, CAST(dst AS VARCHAR) AS dst, CAST(link_type AS VARCHAR) AS link_type "
        f"FROM links_{i}" for i in range(len(link_sources))))
    label = f"CAST({_quote(label_column)} AS DOUBLE)" if label_column else "CAST(NULL AS DOUBLE)"
    own = ", ".join(f"CAST({_quote(f)} AS DOUBLE) AS {_quote(f)}" for f in spec.own_features)
    con.execute(f"""CREATE TEMP TABLE given AS SELECT row_number() OVER () - 1 AS pos,
                    CAST(merchant_id AS VARCHAR) AS merchant_id, {own}, {label} AS known FROM merchants_src""")
    if endpoints_as_merchants:
        nulls = ", ".join(f"CAST(NULL AS DOUBLE) AS {_quote(f)}" for f in spec.own_features)
        con.execute(f"""CREATE TEMP TABLE m AS SELECT * FROM given UNION ALL
                        SELECT (SELECT count(*) FROM given) + row_number() OVER (ORDER BY id) - 1, id, {nulls},
                               CAST(NULL AS DOUBLE)
                        FROM (SELECT src AS id FROM links_src UNION SELECT dst FROM links_src) e
                        WHERE id NOT IN (SELECT merchant_id FROM given)""")
    else:
        con.execute("CREATE TEMP TABLE m AS SELECT * FROM given")
    types = ", ".join("'" + t.replace("'", "''") + "'" for t in spec.link_types)
    con.execute(f"""CREATE TEMP TABLE edges AS SELECT DISTINCT a.pos AS a, b.pos AS b, l.t AS t FROM (
                      SELECT CAST(src AS VARCHAR) AS x, CAST(dst AS VARCHAR) AS y, CAST(link_type AS VARCHAR) AS t
                      FROM links_src
                      UNION ALL
                      SELECT CAST(dst AS VARCHAR), CAST(src AS VARCHAR), CAST(link_type AS VARCHAR) FROM links_src) l
                    JOIN m a ON a.merchant_id = l.x JOIN m b ON b.merchant_id = l.y
                    WHERE a.pos <> b.pos AND l.t IN ({types})""")
    con.execute("CREATE TEMP TABLE nbr AS SELECT DISTINCT a, b FROM edges")
    per_type = ", ".join(f"count(*) FILTER (WHERE t = '{t}') AS {_quote('links_' + t)}, "
                         f"coalesce(sum(coalesce(mb.known, 0)) FILTER (WHERE t = '{t}'), 0) AS {_quote('flagged_' + t)}"
                         for t in spec.link_types)
    con.execute(f"""CREATE TEMP TABLE by_type AS SELECT e.a, {per_type}
                    FROM edges e JOIN m mb ON mb.pos = e.b GROUP BY e.a""")
    sums = ", ".join(f"sum(coalesce(mb.{_quote(f)}, 0)) AS {_quote('sum_' + f)}, "
                     f"count(mb.{_quote(f)}) AS {_quote('present_' + f)}" for f in spec.own_features)
    con.execute(f"""CREATE TEMP TABLE overall AS SELECT n.a, count(*) AS degree, {sums},
                    sum(coalesce(mb.known, 0)) AS flagged, count(mb.known) AS known_count
                    FROM nbr n JOIN m mb ON mb.pos = n.b GROUP BY n.a""")
    frame = con.execute("""SELECT m.*, o.*, t.* FROM m LEFT JOIN overall o ON o.a = m.pos
                           LEFT JOIN by_type t ON t.a = m.pos ORDER BY m.pos""").df()
    con.close()
    return frame["merchant_id"].to_numpy(), _assemble(frame, spec)


def _assemble(frame: pd.DataFrame, spec: MerchantFeatureSpec) -> np.ndarray:
    """The matrix in ``spec.feature_names`` order from the joined aggregates."""
    def column(name: str, fill: float = 0.0) -> np.ndarray:
        return frame[name].astype(np.float64).fillna(fill).to_numpy()

    own = frame[list(spec.own_features)].astype(np.float64).to_numpy()
    sums = np.column_stack([column("sum_" + f) for f in spec.own_features])
    present = np.column_stack([column("present_" + f) for f in spec.own_features])
    mean = np.where(present > 0, sums / np.maximum(present, 1), np.nan)
    known = column("known_count")
    flagged = column("flagged")
    blocks: dict[str, Sequence[np.ndarray]] = {
        "counts": [column("links_" + t) for t in spec.link_types] + [column("degree")],
        "mean": [mean], "sum": [sums], "contrast": [own - mean],
        "flagged": [column("flagged_" + t) for t in spec.link_types]
        + [flagged, np.where(known > 0, flagged / np.maximum(known, 1), np.nan), known],
    }
    parts = [own] + [block for name in ("counts", "mean", "sum", "contrast", "flagged") if name in spec.aggregates
                     for block in blocks[name]]
    return np.column_stack([p if p.ndim == 2 else p.reshape(-1, 1) for p in parts])
