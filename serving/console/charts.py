"""The console's pictures, drawn with matplotlib (as the model cards are) into PNG bytes:
decisions per day by outcome for each version of a model (a promotion shows as a change of
colour family), the share of reviews confirmed per category, and reviewers' agreement with
the model (counted per item: ``review_stats``)."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

OUTCOME_COLOURS = {"block": "#b2182b", "review": "#e08214", "allow": "#4d9221"}
VERSION_HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def _blank(width: float = 7.5, height: float = 3.0):  # -> Figure
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=90)


def _figure(width: float = 7.5, height: float = 3.0):  # -> (Figure, Axes)
    figure = _blank(width, height)
    return figure, figure.add_subplot()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _empty(message: str) -> bytes:
    figure, axes = _figure(height=1.2)
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center", color="#444")
    return _png(figure)


def daily_outcomes_png(model_name: str, rows: list[tuple[str, str, str, int]]) -> bytes:
    """Stacked bars: decisions per day, by outcome (colour) and model version (hatching)."""
    if not rows:
        return _empty(f"{model_name}: no decisions in this period")
    days = sorted({day for day, *_ in rows})
    versions = sorted({model for _, model, *_ in rows})
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(days))
    for day, model, outcome, n in rows:
        counts[(model, outcome)][days.index(day)] += n
    figure, axes = _figure()
    bottom = [0] * len(days)
    for v, version in enumerate(versions):
        for outcome, colour in OUTCOME_COLOURS.items():
            values = counts.get((version, outcome))
            if values is None:
                continue
            axes.bar(range(len(days)), values, bottom=bottom, color=colour, edgecolor="white",
                     hatch=VERSION_HATCHES[v % len(VERSION_HATCHES)], label=f"{outcome} · {version.split(':')[-1]}")
            bottom = [b + x for b, x in zip(bottom, values, strict=True)]
    axes.set_xticks(range(len(days)), [d[5:] for d in days], rotation=45, fontsize=7)
    axes.set_ylabel("decisions")
    axes.set_title(f"{model_name}: decisions per day (UTC) by outcome and version", fontsize=9)
    axes.legend(fontsize=6, ncols=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(figure)


def share_png(title: str, values: dict[str, tuple[int, int]], empty: str) -> bytes:
    """Horizontal bars of ``part / whole`` per key, labelled with the counts."""
    if not values:
        return _empty(empty)
    keys = list(values)
    shares = [part / whole if whole else 0.0 for whole, part in values.values()]
    figure, axes = _figure(height=max(1.6, 0.28 * len(keys) + 0.9))
    axes.barh(range(len(keys)), shares, color="#2166ac")
    axes.set_yticks(range(len(keys)), keys, fontsize=7)
    axes.set_xlim(0, 1.15)
    axes.invert_yaxis()
    for y, ((whole, part), share) in enumerate(zip(values.values(), shares, strict=True)):
        axes.text(share + 0.01, y, f"{share:.0%} ({part}/{whole})", va="center", fontsize=7)
    axes.set_title(title, fontsize=9)
    return _png(figure)


def _share_panel(axes, keys: list[str], pairs: list[tuple[int, int]], title: str, colour: str) -> None:
    """One panel of horizontal bars ``part / whole`` per key; a key with no items says so."""
    shares = [part / whole if whole else 0.0 for whole, part in pairs]
    axes.barh(range(len(keys)), shares, color=colour)
    axes.set_yticks(range(len(keys)), keys, fontsize=7)
    axes.set_xlim(0, 1.3)
    axes.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"], fontsize=7)
    axes.invert_yaxis()
    for y, ((whole, part), share) in enumerate(zip(pairs, shares, strict=True)):
        label = f"{share:.0%} ({part}/{whole})" if whole else "no items"
        axes.text(share + 0.01, y, label, va="center", fontsize=7)
    axes.set_title(title, fontsize=8)


def agreement_png(values: dict[str, Any]) -> bytes:
    """Two panels per reviewer (``review_stats.Agreement`` values, one verdict per item): the
    agreement on items the model blocked or allowed, and, apart, the share of items the
    model sent to review that the reviewer confirmed as a violation."""
    if not values:
        return _empty("no verdicts yet")
    keys = list(values)
    figure = _blank(width=9.0, height=max(1.8, 0.3 * len(keys) + 1.1))
    left, right = figure.subplots(1, 2, sharey=True)
    _share_panel(left, keys, [(v.decided, v.agreed) for v in values.values()],
                 "model blocked or allowed: reviewer agreed", "#2166ac")
    _share_panel(right, keys, [(v.reviews, v.confirmed) for v in values.values()],
                 "sent to review: confirmed violation share", "#e08214")
    figure.suptitle("per reviewer, one verdict per item (the reviewer's latest)", fontsize=9)
    return _png(figure)
