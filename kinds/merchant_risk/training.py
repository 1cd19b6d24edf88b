"""merchant-risk's training half: ``shopguard train merchant-risk`` and its file scorer
(merchant-risk has no ``evaluate`` checks: its card and ``models compare`` report it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import typer

from common.errors import ShopGuardError
from registry.store import LoadedBundle
from training.kind_training import KindTraining
from training.report_tables import (
    announce_candidate,
    console,
    load_config,
    metrics_table,
    note,
    progress_status,
)

if TYPE_CHECKING:
    from training.compare import ScoredFile


def train_merchant_risk(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="merchants: .parquet, .csv or .jsonl"),
    links: Path | None = typer.Option(None, "--links", exists=True, dir_okay=False,
                                      help="edge list: src, dst[, link_type]"),
    label_column: str = typer.Option("is_suspicious", "--label-column",
                                      help="the --data column of 0/1 labels (1: suspicious)"),
    id_column: str = typer.Option("merchant_id", "--id-column",
                                   help="the --data column naming each merchant (as --links names them)"),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False,
                                       help="JSON file of MerchantRiskConfig"),
    seed: int | None = typer.Option(None, min=0, max=2**32 - 1, help="override the config's seed"),
    threads: int | None = typer.Option(None, "--threads", min=0, help="LightGBM threads (0: one per core)"),
    review_budget: float | None = typer.Option(
        None, "--review-budget", help="largest share of ordinary merchants sent to review (default 0.05)"),
    register: bool = typer.Option(True, help="register the bundle and mark it candidate"),
) -> None:
    """Train merchant-risk (own + linked-merchant features) and register it as candidate."""
    from common.terminal import plain
    from kinds.merchant_risk.pipeline import (
        MerchantRiskConfig,
        MerchantRiskTrainer,
        load_merchant_table,
    )
    from registry.store import ModelRegistry

    cfg = load_config(config, MerchantRiskConfig, {"seed": seed, "review_budget": review_budget, "num_threads": threads})
    table = load_merchant_table(data, links, label_column, id_column,
                                warn=lambda line: note(f"[yellow]note:[/yellow] {plain(line)}"))
    with progress_status("training merchant-risk") as progress:
        result = MerchantRiskTrainer(cfg, ModelRegistry() if register else None, progress).fit(table)
    console.print(metrics_table("test metrics", {"all": result.test_metrics, **result.slices}))
    t = result.threshold_choice.thresholds
    console.print(f"thresholds: block >= {t.block:.4f}, review >= {t.review:.4f} (chosen on validation)")
    budget = result.review_budget
    console.print(f"review budget {budget.budget:.0%}: {budget.at_budget.ordinary_share:.1%} of ordinary test "
                  f"merchants at review, recall {budget.at_budget.recall:.3f} (the recall target alone: "
                  f"{budget.at_recall_target.ordinary_share:.1%} at review, recall "
                  f"{budget.at_recall_target.recall:.3f})")
    if register:
        announce_candidate(result.manifest.tag)



def score_merchant_file(bundle: LoadedBundle, data: Path, links: Path | None = None, explain: bool = False,
                        **_: Any) -> ScoredFile:
    """A labelled merchant file (+ links) scored by one merchant-risk version."""
    from kinds.merchant_risk.pipeline import age_bands, load_merchant_table
    from kinds.merchant_risk.runtime import MerchantRiskModel
    from training.compare import ScoredFile, reason_text

    model = MerchantRiskModel.from_bundle(bundle)
    table = load_merchant_table(data, links)
    missing = [f for f in model.spec.own_features if f not in table.spec.own_features]
    if missing:
        raise ShopGuardError(f"{data} lacks {bundle.tag}'s feature column(s) {missing[:5]}.")
    neighbours: dict[str, list[dict[str, str]]] = {}
    for src, dst, link_type in table.links:
        neighbours.setdefault(src, []).append({"merchant_id": dst, "link_type": link_type})
        neighbours.setdefault(dst, []).append({"merchant_id": src, "link_type": link_type})
    frame = pd.DataFrame(table.values, columns=list(table.spec.own_features))[list(model.spec.own_features)]
    frame.insert(0, "merchant_id", [str(m) for m in table.ids])
    frame["links"] = [neighbours.get(str(m), []) for m in table.ids]
    result = model.score(frame, explain="all" if explain else "none")
    slices = age_bands(table.account_age) if table.account_age is not None else None
    return ScoredFile(table.labels.reshape(-1, 1), np.reshape(result.scores, (-1, 1)), result.decisions,
                      ["is_suspicious"], {"is_suspicious": model.thresholds}, slices, [str(m) for m in table.ids],
                      [reason_text(r) for r in result.reasons] if explain else None)



def merchant_row_keys(data: Path, **_: Any) -> list[str]:
    """Each row's identity in a file, as training recorded it (a merchant: its id (``merchant_id``))."""
    from training.row_identity import file_keys, merchant_keys

    return file_keys(data, "merchant_id", merchant_keys)


TRAINING = KindTraining(train=train_merchant_risk, score_file=score_merchant_file, row_keys=merchant_row_keys)
