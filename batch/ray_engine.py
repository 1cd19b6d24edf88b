"""The Ray Data engine of ``shopguard batch score``: the model is loaded once per actor
(``map_batches`` with a callable class); the answer code is the service's."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from batch.jobs import (
    BatchReport,
    already_done,
    group_key,
    job_marker,
    one_cause,
    read_table,
    repeated_id_rejects,
    repeated_ids,
    score_frame,
    write_outputs,
)
from kinds import model_kind

ROW = "_row"  # the row number in its input file, carried through Ray to name rejects
GROUP = "_group"  # a row's call (streams: its stream id as the service compares ids), Ray's group key


class RayScorer:
    """One actor: loads the pinned version once, then scores batches."""

    def __init__(self, kind_name: str, tag: str, holds: dict[str, Any], links: dict[str, list[dict[str, str]]],
                 rules: dict[str, Any] | None = None) -> None:
        from common.settings import load_settings
        from policy.calls import MerchantHold
        from policy.document import CallRules
        from registry.store import ModelRegistry

        settings = load_settings()
        self.kind = model_kind(kind_name)
        self.model = self.kind.runtime_class().from_bundle(ModelRegistry(settings).load(tag), device=settings.device)
        standing = {m: MerchantHold(**d) for m, d in holds.items()}
        self.holds = lambda ids: {m: standing[m] for m in ids if m in standing}
        self.links = links
        self.rules = CallRules.model_validate(rules) if rules else None

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        rows = batch[ROW].tolist()
        frame = batch.drop(columns=[ROW, GROUP], errors="ignore").reset_index(drop=True)
        frame = frame.astype(object).where(frame.notna(), None)
        results, rejects = score_frame(self.kind, self.model, frame, self.holds, self.links, rules=self.rules)
        rejects = rejects.assign(row=[rows[r] for r in rejects["row"]]) if len(rejects) else rejects
        out = results.assign(kind="result", row=-1, field=None, message=None)
        bad = rejects.assign(kind="reject", **{c: None for c in self.kind.answers.batch_columns})
        return pd.concat([out, bad[out.columns]], ignore_index=True).astype({"row": "int64"})


def run_ray(kind_name: str, tag: str, files: list[Path], output: Path, holds: dict[str, Any],
            links: dict[str, list[dict[str, str]]], workers: int, batch_size: int, address: str | None,
            progress: Callable[[str], None], rules: dict[str, Any] | None = None, job: str = "") -> BatchReport:
    """Score every input file on Ray (a local cluster unless ``address`` names one)."""
    import ray

    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    kind = model_kind(kind_name)
    report = BatchReport(model=tag)
    started = time.perf_counter()
    try:
        for source in files:
            report.files += 1
            if already_done(output, source, job_marker(tag, job)):
                report.skipped_files += 1
                progress(f"{source.name}: already done, skipped")
                continue
            frame = read_table(source, record=kind.record)
            file_rows = len(frame)  # before repeated ids are taken out
            frame[ROW] = range(file_rows)
            group = kind.answers.group_column
            early = pd.DataFrame(columns=["row", "field", "message"])
            if group is None:  # an id given twice is found in the whole file, not in one batch
                repeated = repeated_ids(kind, frame)
                early = pd.DataFrame(repeated_id_rejects(kind, repeated), columns=["row", "field", "message", "errors"])
                frame = frame.drop(index=list(repeated))
            if group is not None and group in frame.columns:  # one call per group (streams), as the service keys it
                frame[GROUP] = [group_key(kind, value) or "" for value in frame[group]]
                dataset = ray.data.from_pandas(frame).groupby(GROUP).map_groups(
                    RayScorer, fn_constructor_args=(kind_name, tag, holds, links, rules), concurrency=workers,
                    batch_format="pandas")
            else:
                dataset = ray.data.from_pandas(frame).map_batches(
                    RayScorer, fn_constructor_args=(kind_name, tag, holds, links, rules), concurrency=workers,
                    batch_size=batch_size, batch_format="pandas")
            scored = dataset.to_pandas()
            results = scored[scored["kind"] == "result"][kind.answers.batch_columns].reset_index(drop=True)
            rejects = pd.concat([scored[scored["kind"] == "reject"][["row", "field", "message"]],
                                 early[["row", "field", "message"]]]).sort_values("row")
            rejects = rejects.assign(errors=1).reset_index(drop=True)
            report.outputs.append(str(write_outputs(output, source, job_marker(tag, job), results, rejects)))
            report.rows += file_rows
            report.scored += len(results)
            report.rejected += len(rejects)
            progress(f"{source.name}: {len(results):,} scored, {len(rejects):,} rejected (ray, {workers} actor(s))"
                     f"{one_cause(rejects, file_rows)}")
    finally:
        ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report
