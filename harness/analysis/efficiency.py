"""How many tokens each run needs to reach an accuracy, and the ratio between two runs on the same problems.

Each run's single-answer curve (one sample per problem at every budget, tokens it really used) is made
non-decreasing in order of tokens (one may always stop at a cheaper budget that did better) and read by
straight lines in log2(tokens) between measured budgets. The tokens a run needs for a target accuracy are
where that curve first reaches it. Three answers are possible, and only the first is a number:

- reached between two measured budgets, or exactly at one: the crossing's tokens;
- reached already at the cheapest budget: *at most* those tokens (nothing cheaper was measured);
- never reached: *more than* the largest spend (nothing dearer was measured).

So the ratio B / A is a number only when both are crossings; otherwise it is a bound (">= 2^lo"), never a
number the data don't reach. Its interval is a paired bootstrap over problems (the same resampled problems
for both runs, each run's curve and crossing found again in every replicate); a replicate in which a run
never reaches the target counts as "beyond every spend", so the interval is open where the data leave
the ratio unbounded. Measured coverage: benchmarks/coverage_compare.py, docs/statistics.md.

Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stats import BOOTSTRAP_SAMPLES, CONFIDENCE, bootstrap_indices, bootstrap_means

EXACT, AT_MOST, MORE_THAN = "crossing", "at most", "more than"


@dataclass(frozen=True)
class Reach:
    """Where a curve first reaches the target, in log2(tokens), and what kind of answer that is."""

    log2_tokens: float
    kind: str  # EXACT, AT_MOST (reached at the cheapest budget) or MORE_THAN (never reached)


def reach(log2_tokens: np.ndarray, accuracy: np.ndarray, target: float) -> Reach:
    """Where the non-decreasing curve (points in any order) first reaches `target`."""
    x, y = np.asarray(log2_tokens, dtype=float), np.asarray(accuracy, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[ok], kind="stable")
    x, y = x[ok][order], np.maximum.accumulate(y[ok][order])
    if x.size == 0:
        return Reach(math.nan, MORE_THAN)
    hit = np.flatnonzero(y >= target - 1e-12)
    if hit.size == 0:
        return Reach(float(x[-1]), MORE_THAN)
    i = int(hit[0])
    if i == 0:
        return Reach(float(x[0]), AT_MOST)
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return Reach(float(x0 + (target - y0) / (y1 - y0) * (x1 - x0)) if y1 > y0 else float(x1), EXACT)


def log2_ratio_range(a: Reach, b: Reach) -> tuple[float, float]:
    """The range of log2(tokens B needs / tokens A needs) the two answers allow (+-inf: unbounded)."""
    def bounds(r: Reach) -> tuple[float, float]:
        if r.kind == EXACT:
            return r.log2_tokens, r.log2_tokens
        if r.kind == AT_MOST:
            return -math.inf, r.log2_tokens
        return r.log2_tokens, math.inf

    (a_lo, a_hi), (b_lo, b_hi) = bounds(a), bounds(b)
    return b_lo - a_hi, b_hi - a_lo


def _replicate_reach(x: np.ndarray, y: np.ndarray, target: float) -> np.ndarray:
    """Per bootstrap replicate (rows of x and y: budgets in columns): where the curve first reaches the
    target; +inf where it never does, -inf where it already does at the cheapest budget (the tokens it
    needs are then unknown below that): a ratio built from either is unbounded on that side."""
    out = np.empty(x.shape[0])
    for r in range(x.shape[0]):
        found = reach(x[r], y[r], target)
        out[r] = {MORE_THAN: math.inf, AT_MOST: -math.inf}.get(found.kind, found.log2_tokens)
    return out


@dataclass(frozen=True)
class Efficiency:
    target: float
    a: Reach
    b: Reach
    log2_ratio_lo: float  # the range the point estimates allow (equal when both are crossings)
    log2_ratio_hi: float
    interval_lo: float  # paired bootstrap, log2; -inf / +inf where open
    interval_hi: float


def compare_efficiency(scores_a: np.ndarray, tokens_a: np.ndarray, scores_b: np.ndarray, tokens_b: np.ndarray,
                       target: float | None = None, seed: int = 0, confidence: float = CONFIDENCE,
                       replicates: int = BOOTSTRAP_SAMPLES) -> Efficiency:
    """Tokens each run needs to reach `target` (default: the lower of the two runs' best single-answer
    accuracy) and the ratio B / A, from per-problem scores and tokens (problems, budgets) of each run on
    the same problems in the same order."""
    x_a, y_a = np.log2(tokens_a.mean(axis=0)), scores_a.mean(axis=0)
    x_b, y_b = np.log2(tokens_b.mean(axis=0)), scores_b.mean(axis=0)
    if target is None:
        target = float(min(np.nanmax(y_a), np.nanmax(y_b)))
    a, b = reach(x_a, y_a, target), reach(x_b, y_b, target)
    lo, hi = log2_ratio_range(a, b)
    indices = bootstrap_indices(scores_a.shape[0], seed, replicates)
    boot_a = _replicate_reach(np.log2(bootstrap_means(tokens_a, indices)), bootstrap_means(scores_a, indices), target)
    boot_b = _replicate_reach(np.log2(bootstrap_means(tokens_b, indices)), bootstrap_means(scores_b, indices), target)
    with np.errstate(invalid="ignore"):
        diff = boot_b - boot_a  # inf - inf (neither reaches it): no ratio in that replicate, left out
    diff = diff[~np.isnan(diff)]
    alpha = (1 - confidence) / 2
    if diff.size and scores_a.shape[0] >= 2:
        q_lo, q_hi = (float(v) for v in np.quantile(diff, [alpha, 1 - alpha], method="inverted_cdf"))
    else:
        q_lo, q_hi = -math.inf, math.inf
    # a bound in the estimate is a bound of the interval too: never narrower than what the data allow
    return Efficiency(float(target), a, b, lo, hi, min(q_lo, lo), max(q_hi, hi))
