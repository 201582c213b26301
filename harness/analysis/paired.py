"""Two runs on the same problems: the difference in accuracy with its interval, and the p-value of that
same interval.

The problem is the unit: each run's samples of a problem are averaged first (or read between two
budgets, at matched spend), so a problem scores in [0, 1] in each run, and the two scores of one problem
are paired. Pairing is what makes a small benchmark informative: the problems that both runs get right
(or both wrong) say nothing about the difference, and an unpaired test (lm-eval's z-test, HELM's
standard deviations) pays for them in width.

- `difference_interval`: Newcombe's hybrid score interval for a paired difference (Newcombe 1998,
  method 11: each run's continuity-corrected Wilson interval, combined through the correlation of the
  per-problem scores). For one sample per problem it is Newcombe's interval exactly; with averaged
  scores the same combination applies, with the scores' Pearson correlation. Measured coverage:
  benchmarks/coverage_compare.py, docs/statistics.md.
- `interval_p`: the p-value of "no difference" is that interval inverted, 1 minus the highest
  confidence at which it still leaves out 0, so a row's p-value and interval cannot disagree. Why not
  a separate test: a sign-flip permutation test printed p = 0.0027 beside an interval of -17.1 to
  +12.6 points, and the simulation showed the test was the wrong one: at matched spend the per-problem
  differences are skewed (many small ones one way, a few large ones the other), and it raised false
  alarms in up to 8% of runs with no difference, where the interval still covered 0.97 or more.

Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .stats import CONFIDENCE, score_interval

TEST = "Newcombe interval inverted"


@dataclass(frozen=True)
class PairedDifference:
    """B minus A on the problems both runs answered."""

    problems: int
    a: float  # run A's accuracy on these problems
    b: float
    delta: float  # b - a
    lo: float
    hi: float
    p_value: float  # the interval's own (interval_p): below 1 - confidence exactly when it leaves out 0
    test: str
    higher: tuple[int, int]  # problems where A scores higher, where B scores higher (any amount)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The per-problem scores' correlation with Newcombe's continuity correction (method 11: for 0/1 scores
    phi* = max(ad - bc - n/2, 0) / sqrt(product of the margins)), written for scores in [0, 1]: the
    covariance less 1/(2n), over the product of the standard deviations, never below 0. Why corrected:
    with the plain phi the interval covered 0.90 at 12 problems (benchmarks/coverage_compare.py)."""
    n = a.size
    if n < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    covariance = float(np.mean((a - a.mean()) * (b - b.mean())))
    return max(covariance - 1 / (2 * n), 0.0) / float(np.std(a) * np.std(b))


def difference_interval(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Newcombe's hybrid score interval for mean(b) - mean(a) on paired per-problem scores in [0, 1]
    (continuity-corrected Wilson limits of each run, combined with the scores' correlation); NaN for
    fewer than two problems."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2:
        return math.nan, math.nan
    return _interval_at(a, b)(confidence)


def _interval_at(a: np.ndarray, b: np.ndarray) -> Callable[[float], tuple[float, float]]:
    """The interval of `a`, `b` as a function of the confidence level: what does not depend on the level
    (means, sums, correlation) computed once, since interval_p asks for some thirty levels."""
    n, pa, pb = a.size, float(a.mean()), float(b.mean())
    totals, phi = np.array([a.sum(), b.sum()]), correlation(a, b)

    def at(confidence: float) -> tuple[float, float]:
        (la, lb), (ua, ub) = (map(float, limits) for limits in score_interval(totals, n, confidence))
        # B - A: its lower end comes from B's lower limit and A's upper, and the reverse
        below = math.sqrt(max((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2, 0.0))
        above = math.sqrt(max((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2, 0.0))
        return max(pb - pa - below, -1.0), min(pb - pa + above, 1.0)

    return at


def difference_intervals(before: np.ndarray, after: np.ndarray, confidence: float = CONFIDENCE
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (problems, columns) tables, the interval of mean(after) - mean(before) on the problems
    that have both (difference_interval); NaN for fewer than two."""
    pairs = []
    for j in range(before.shape[1]):
        both = ~np.isnan(before[:, j]) & ~np.isnan(after[:, j])
        pairs.append(difference_interval(before[both, j], after[both, j], confidence))
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def interval_p(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE, steps: int = 30) -> float:
    """The p-value the interval implies: 1 - c for the highest confidence c whose interval of
    mean(b) - mean(a) leaves out 0 (bisection over c). The bracket starts on the reported `confidence`
    level's side, so p < 1 - confidence exactly when that interval leaves out 0. 1 when the means are
    equal or there are fewer than two problems."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    delta = float(b.mean() - a.mean()) if a.size else math.nan
    if a.size < 2 or not abs(delta) > 1e-12:
        return 1.0

    interval = _interval_at(a, b)

    def excludes_zero(level: float) -> bool:
        lo, hi = interval(level)
        return lo > 0 or hi < 0

    excluded, included = (confidence, 1 - 1e-15) if excludes_zero(confidence) else (0.0, confidence)
    if excludes_zero(included):  # 0 is outside the interval at every level we can compute
        return 1 - included
    for _ in range(steps):
        middle = (excluded + included) / 2
        excluded, included = (middle, included) if excludes_zero(middle) else (excluded, middle)
    return 1 - included


def compare_scores(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> PairedDifference:
    """B against A on paired per-problem scores: the difference, its interval, the interval's p-value,
    and on how many problems each run scores higher."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired scores: one score per problem in each run, the same problems in the same order")
    lo, hi = difference_interval(a, b, confidence)
    a_higher, b_higher = int(np.sum(a > b + 1e-12)), int(np.sum(b > a + 1e-12))
    return PairedDifference(int(a.size), float(a.mean()) if a.size else math.nan,
                            float(b.mean()) if b.size else math.nan, float(b.mean() - a.mean()) if a.size else math.nan,
                            lo, hi, interval_p(a, b, confidence), TEST, (a_higher, b_higher))
