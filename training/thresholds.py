"""Choose decision thresholds on validation scores (DESIGN.md: precision and recall targets)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import norm
from sklearn.metrics import precision_recall_curve

from common.decisions import Thresholds
from training.classification_metrics import precision_recall

UNREACHABLE = 1.01  # a threshold above any probability: the decision is never taken
# Fewest flagged rows a block threshold's precision is measured on (a handful means nothing).
MIN_BLOCK_SUPPORT = 20


class ThresholdChoice(BaseModel):
    """Chosen thresholds and what they achieved on the validation data."""

    model_config = ConfigDict(extra="forbid")

    thresholds: Thresholds
    precision_target: float
    recall_target: float
    block_precision: float | None
    block_recall: float | None
    review_precision: float | None
    review_recall: float | None
    block_reachable: bool
    objective: str
    review_budget: float | None = None
    review_raised_by_budget: bool = False
    review_budget_confidence: float | None = None  # one-sided confidence the budget was kept at
    # the review threshold the recall target alone chose, before the budget raised it
    review_at_recall_target: float | None = None
    # review is one threshold shared by several categories (chosen on their segment decision)
    review_shared: bool = False


def _at(y: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    precision, recall, _ = precision_recall(y == 1, scores >= threshold)
    return precision, recall


def budget_cut(ordinary_scores: np.ndarray, budget: float, confidence: float | None = None) -> float:
    """The lowest threshold that flags at most ``budget`` of ``ordinary_scores`` (the scores
    of ordinary, clean traffic). With ``confidence`` (one-sided, e.g. 0.95) the share it flags
    carries its sampling margin: the Wilson upper bound of that share stays within ``budget``,
    so that the traffic these scores were drawn from stays within the budget at that
    confidence, not only this sample of it."""
    ordered = np.sort(np.asarray(ordinary_scores, dtype=np.float64))[::-1]
    n = len(ordered)
    allowed = int(np.floor(budget * n))
    if confidence is not None and allowed < n:
        counts = np.arange(allowed + 1, dtype=np.float64)
        upper = wilson_interval(counts / n, np.full_like(counts, n), float(norm.ppf(confidence)))[1]
        within = np.flatnonzero(upper <= budget)
        allowed = int(within[-1]) if within.size else 0
    if allowed >= n:
        return 0.0
    return float(np.nextafter(ordered[allowed], np.inf))


def choose_thresholds(
    y_true: np.ndarray,
    scores: np.ndarray,
    precision_target: float = 0.95,
    recall_target: float = 0.90,
    min_block_support: int = MIN_BLOCK_SUPPORT,
    review_budget: float | None = None,
    ordinary: np.ndarray | None = None,
    budget_confidence: float | None = None,
) -> ThresholdChoice:
    """Block: the lowest score whose precision (of everything at or above it) reaches
    ``precision_target``, among cuts that flag at least ``min_block_support`` validation
    rows (a precision measured on a handful of rows means nothing). Review: the highest
    score whose recall reaches ``recall_target``, raised where needed so that at most
    ``review_budget`` of ordinary traffic (``ordinary`` rows, by default the negatives) is
    flagged (with ``budget_confidence``: the Wilson upper bound of that share at this one-sided
    confidence, so that the budget holds beyond the validation sample; see ``budget_cut``), and
    capped at the block threshold (block is raised to review if the budget pushes review
    above it)."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    if y.min() == y.max():
        raise ValueError("threshold choice needs both classes in the validation data")
    precision, recall, cuts = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # align with cuts
    flagged_counts = len(s) - np.searchsorted(np.sort(s), cuts, side="left")
    reaching = np.flatnonzero((precision >= precision_target) & (flagged_counts >= min_block_support))
    block_reachable = reaching.size > 0
    block = float(cuts[reaching[0]]) if block_reachable else UNREACHABLE
    recall_ok = np.flatnonzero(recall >= recall_target)
    review = float(cuts[recall_ok[-1]]) if recall_ok.size else float(cuts[0])
    review = min(review, block)
    unbudgeted = review
    raised = False
    if review_budget is not None:
        cut = budget_cut(s[ordinary if ordinary is not None else y == 0], review_budget, budget_confidence)
        raised = cut > review
        review = max(review, cut)
        block = max(block, review)
    thresholds = Thresholds(block=block, review=review)
    block_p, block_r = _at(y, s, block)
    review_p, review_r = _at(y, s, review)
    return ThresholdChoice(
        thresholds=thresholds, precision_target=precision_target, recall_target=recall_target,
        block_precision=block_p, block_recall=block_r, review_precision=review_p,
        review_recall=review_r, block_reachable=block_reachable,
        objective=(
            f"block = lowest validation score with precision >= {precision_target:.2f} "
            f"over at least {min_block_support} flagged rows; "
            f"review = highest validation score with recall >= {recall_target:.2f} (capped at block)"
            + ("" if review_budget is None else
               f", raised so that at most {review_budget:.1%} of ordinary traffic goes to review"
               if budget_confidence is None else
               f", raised so that at most {review_budget:.1%} of ordinary traffic goes to review at "
               f"{budget_confidence:.0%} confidence (the Wilson upper bound of the share of ordinary validation "
               "rows at review is within the budget)")
        ),
        review_budget=review_budget, review_raised_by_budget=raised, review_at_recall_target=unbudgeted,
        review_budget_confidence=None if review_budget is None else budget_confidence,
    )


class ReviewPoint(BaseModel):
    """What one review threshold does on a labelled set."""

    model_config = ConfigDict(extra="forbid")

    threshold: float
    ordinary_share: float  # share of the ordinary (negative) rows at or above the threshold
    ordinary_share_low: float | None = None  # Wilson 95% interval of that share
    ordinary_share_high: float | None = None
    flagged: int
    precision: float | None
    recall: float


class BudgetCost(BaseModel):
    """What a review budget costs, measured on one labelled set (the held-out test split):
    the served review threshold, chosen within the budget, beside the one the recall target
    alone chose."""

    model_config = ConfigDict(extra="forbid")

    budget: float
    data: str
    rows: int
    ordinary: int
    positives: int
    at_budget: ReviewPoint
    at_recall_target: ReviewPoint

    @property
    def within_budget(self) -> bool:
        """Whether the served review threshold keeps the ordinary share within the budget."""
        return self.at_budget.ordinary_share <= self.budget

    @property
    def recall_cost(self) -> float:
        """Recall given up for the budget (recall at the recall target minus recall served)."""
        return self.at_recall_target.recall - self.at_budget.recall


def review_point(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> ReviewPoint:
    """Ordinary share, precision and recall of flagging ``scores >= threshold``."""
    from training.real_checks import wilson

    y = np.asarray(y_true).astype(int)
    flagged = np.asarray(scores, dtype=np.float64) >= threshold
    precision, recall, _ = precision_recall(y == 1, flagged)
    ordinary = int((y == 0).sum())
    flagged_ordinary = int((flagged & (y == 0)).sum())
    low, high = wilson(flagged_ordinary, ordinary)
    return ReviewPoint(threshold=threshold, ordinary_share=flagged_ordinary / max(1, ordinary),
                       ordinary_share_low=low, ordinary_share_high=high, flagged=int(flagged.sum()),
                       precision=precision, recall=recall)


def budget_cost(y_true: np.ndarray, scores: np.ndarray, choice: ThresholdChoice, data: str = "test") -> BudgetCost:
    """The review budget of ``choice`` measured on ``scores`` (labelled rows the thresholds were
    not chosen on): the ordinary share and recall at the served review threshold and at the
    threshold the recall target alone chose."""
    if choice.review_budget is None:
        raise ValueError("the thresholds were chosen without a review budget")
    y = np.asarray(y_true).astype(int)
    unbudgeted = (choice.thresholds.review if choice.review_at_recall_target is None
                  else choice.review_at_recall_target)
    return BudgetCost(budget=choice.review_budget, data=data, rows=len(y), ordinary=int((y == 0).sum()),
                      positives=int(y.sum()), at_budget=review_point(y, scores, choice.thresholds.review),
                      at_recall_target=review_point(y, scores, unbudgeted))


def wilson_interval(proportion: np.ndarray, count: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval (low, high) of proportions ``proportion`` over ``count`` rows
    each, ``z`` standard errors wide (0: the proportions themselves)."""
    p = np.asarray(proportion, dtype=np.float64)
    if z <= 0:
        return p, p
    n = np.maximum(np.asarray(count, dtype=np.float64), 1.0)
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def wilson_lower_bound(precision: np.ndarray, count: np.ndarray, z: float) -> np.ndarray:
    """The Wilson score interval's lower bound of a proportion ``precision`` over ``count``
    rows (``z`` standard errors; 0 gives ``precision`` itself)."""
    return wilson_interval(precision, count, z)[0]


def rows_to_reach(precision_target: float, z: float) -> int:
    """The fewest flagged rows whose Wilson lower bound can reach ``precision_target`` at all
    (all of them right): n / (n + z^2) >= target."""
    return int(np.ceil(z * z * precision_target / (1 - precision_target))) if z > 0 and precision_target < 1 else 1


def best_f1_thresholds(y_true: np.ndarray, scores: np.ndarray, precision_target: float = 0.95,
                       min_block_support: int = MIN_BLOCK_SUPPORT, confidence_z: float = 0.0) -> ThresholdChoice:
    """Thresholds from held-out real rows: review at the score with the best F1 (where real
    traffic is judged, recall at any price floods the queue), block at the lowest score whose
    precision reaches ``precision_target`` over at least ``min_block_support`` flagged rows.
    With ``confidence_z`` > 0 the precision that must reach the target is the Wilson lower
    bound at that many standard errors: the lowest cut whose point precision just touches the
    target is where noise alone put it, and rows the choice never saw fall below it."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    if y.min() == y.max():
        raise ValueError("threshold choice needs both classes in the held-out data")
    precision, recall, cuts = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    review = float(cuts[int(np.argmax(f1))])
    flagged_counts = len(s) - np.searchsorted(np.sort(s), cuts, side="left")
    bound = wilson_lower_bound(precision, flagged_counts, confidence_z)
    reaching = np.flatnonzero((bound >= precision_target) & (flagged_counts >= min_block_support))
    block = float(cuts[reaching[0]]) if reaching.size else UNREACHABLE
    review = min(review, block)
    block_p, block_r = _at(y, s, block)
    review_p, review_r = _at(y, s, review)
    return ThresholdChoice(
        thresholds=Thresholds(block=block, review=review), precision_target=precision_target, recall_target=0.0,
        block_precision=block_p, block_recall=block_r, review_precision=review_p, review_recall=review_r,
        block_reachable=bool(reaching.size),
        objective=("on held-out real rows: review = the score with the best F1; block = "
                   + held_out_block_objective(precision_target, min_block_support, confidence_z)))


def held_out_block_objective(precision_target: float, min_block_support: int, confidence_z: float) -> str:
    """How ``best_f1_thresholds`` chooses block, in words (for a choice's ``objective``)."""
    measured = (f"the Wilson lower bound ({confidence_z:g} standard errors) of precision, which takes at least "
                f"{rows_to_reach(precision_target, confidence_z)} flagged rows even when all are right,"
                if confidence_z > 0 else "precision")
    return f"lowest score with {measured} >= {precision_target:.2f} over at least {min_block_support} flagged rows"


def shared_review_threshold(violating: np.ndarray, scores: np.ndarray, flagged_otherwise: np.ndarray) -> float:
    """One review threshold for several categories, chosen for the decision a row gets as a
    whole: a row is flagged when ``flagged_otherwise`` (a lexicon rule, a category with its own
    threshold, a block threshold below the cut) or when its highest score in ``scores`` (rows x
    categories) reaches the cut. The cut with the best F1 of that decision against ``violating``
    (the row violates in any category); ``UNREACHABLE`` when no cut beats flagging the
    ``flagged_otherwise`` rows alone (or there are no rows). Scores must be finite.

    Per-category thresholds at each category's own best F1 count a violating row flagged in
    the wrong category as an error, and a row a rule already flags as a miss: the segment's
    decision, which is what acts and what is judged, counts neither."""
    y = np.asarray(violating, dtype=bool)
    already = np.asarray(flagged_otherwise, dtype=bool)
    if not len(y):
        return UNREACHABLE
    values = np.asarray(scores, dtype=np.float64).reshape(len(y), -1)
    if not np.isfinite(values).all():
        raise ValueError("shared_review_threshold needs finite scores (a NaN would hide the row from every cut)")
    highest = values.max(axis=1)
    positives = int(y.sum())
    base_hits, base_false = int((already & y).sum()), int((already & ~y).sum())
    never = 2 * base_hits / max(1, 2 * base_hits + base_false + positives - base_hits)
    open_rows = ~already
    order = np.argsort(-highest[open_rows], kind="stable")
    ordered, hit = highest[open_rows][order], y[open_rows][order]
    if not len(ordered):
        return UNREACHABLE
    hits = base_hits + np.cumsum(hit)
    false = base_false + np.cumsum(~hit)
    f1 = 2 * hits / np.maximum(1, 2 * hits + false + positives - hits)
    last_of_tie = np.r_[ordered[1:] != ordered[:-1], True]  # a cut flags every row of its score
    f1 = np.where(last_of_tie, f1, -1.0)
    best = int(np.argmax(f1))
    return float(ordered[best]) if f1[best] > never else UNREACHABLE


def apply_review_budget(thresholds: dict[str, Thresholds], scores: np.ndarray, categories: tuple[str, ...],
                        ordinary: np.ndarray, budget: float, groups: dict[str, np.ndarray] | None = None,
                        step: float = 0.05, max_steps: int = 2000
                        ) -> tuple[dict[str, Thresholds], dict[str, float]]:
    """Raise per-category review thresholds until at most ``budget`` of the ``ordinary`` rows
    (clean traffic) reach review in *any* category, and at most ``budget`` of each group of
    ordinary rows in ``groups`` (for example each source of real clean text).

    Greedy and targeted: while some constraint is over budget, the category that flags the
    most of that constraint's rows is raised just enough to stop flagging ``step`` of them
    (at least one). Only the categories that cause the excess move, and raising only ever
    lowers every share. Block is raised to review where review passes it. Returns the
    thresholds and the share of each constraint's rows they flag (``"all clean"``)."""
    constraints = {"all clean": ordinary, **(groups or {})}
    reviews = np.array([thresholds[c].review for c in categories], dtype=np.float64)
    decided = reviews <= 1.0

    def shares(flags: np.ndarray) -> dict[str, float]:
        return {name: float(flags[mask].any(axis=1).mean()) if mask.any() else 0.0
                for name, mask in constraints.items()}

    for _ in range(max_steps):
        flags = (scores >= reviews) & decided
        current = shares(flags)
        worst = max(current, key=current.__getitem__)
        if current[worst] <= budget:
            break
        mask = constraints[worst]
        j = int(np.argmax(flags[mask].sum(axis=0)))
        flagged = np.sort(scores[mask & flags[:, j], j])
        reviews[j] = float(np.nextafter(flagged[max(1, int(np.ceil(step * len(flagged)))) - 1], np.inf))
    out = {}
    for j, category in enumerate(categories):
        t = thresholds[category]
        out[category] = t if not decided[j] else Thresholds(block=max(t.block, reviews[j]), review=reviews[j])
    return out, shares((scores >= reviews) & decided)
