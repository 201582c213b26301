"""Pure statistics for scaling curves: a point's accuracy interval (a score interval over problems), the
bootstrap over problems that the selections (frontier, crossover) re-run, the controllable range and the
figure's regions. (maj@k and pass@k of one pool: `majority.py`; the law: `law.py`.)

No I/O: everything takes lists/arrays and returns numbers, so the property tests can hammer it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ..budget_axis import Budget, as_budget, budget_rank

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


# --- accuracy intervals: a score interval over problems ----------------------------------------------
#
# Why not the bootstrap for a point's accuracy: with 12-30 problems that mostly score 0 or 1, the
# percentile bootstrap covers 0.82-0.90 (a point where every problem scored 0 gets a zero-width
# interval). A problem's score lies in [0, 1], so its variance is at most p(1 - p): the binomial is the
# worst case, and an interval that covers for the binomial covers for averaged scores too. Measured
# (benchmarks/coverage_points.py, exact binomial and seeded simulation, docs/statistics.md): Wilson's
# score interval with continuity correction (Newcombe 1998, method 4) covers at least 0.954 at 12 and 30
# problems for every true accuracy; plain Wilson dips to 0.84-0.90, Agresti-Coull to 0.92, Jeffreys to
# 0.89, Beta(x+1, n-x+1) to 0.79 near 0.


def score_interval(total: np.ndarray | float, n: np.ndarray | float, confidence: float = CONFIDENCE
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval with continuity correction for a mean of n scores in [0, 1] summing to
    `total` (fractional totals are fine: a problem's score is its average over samples or subsets).
    NaN where n < 2: one problem leaves nothing to vary, and an interval would rest on the model alone."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n = np.asarray(n, dtype=float)
    size = np.maximum(n, 1.0)
    p = np.clip(np.asarray(total, dtype=float) / size, 0.0, 1.0)
    z2 = z * z
    lower_root = np.sqrt(np.maximum(z2 - 2 - 1 / size + 4 * p * (size * (1 - p) + 1), 0.0))
    upper_root = np.sqrt(np.maximum(z2 + 2 - 1 / size + 4 * p * (size * (1 - p) - 1), 0.0))
    lo = (2 * size * p + z2 - 1 - z * lower_root) / (2 * (size + z2))
    hi = (2 * size * p + z2 + 1 + z * upper_root) / (2 * (size + z2))
    lo = np.where(p <= 0, 0.0, np.clip(np.minimum(lo, p), 0.0, 1.0))
    hi = np.where(p >= 1, 1.0, np.clip(np.maximum(hi, p), 0.0, 1.0))
    none = n < 2
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


def accuracy_intervals(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """The 95% interval of every point's accuracy: values (problems, points) in [0, 1], NaN where a problem
    has no value there; the problem is the unit (score_interval over the problems each point rests on)."""
    present = ~np.isnan(values)
    return score_interval(np.where(present, values, 0.0).sum(axis=0), present.sum(axis=0), confidence)


# --- uncertainty: bootstrap over problems ------------------------------------------------------------

def bootstrap_indices(problems: int, seed: int, samples: int = BOOTSTRAP_SAMPLES) -> np.ndarray:
    """Resampled problem indices, shape (samples, problems), one seeded draw shared by every point so
    that differences and slopes between points are bootstrapped consistently."""
    if problems < 1:
        raise ValueError("the bootstrap needs at least one problem")
    return np.random.default_rng([seed, problems]).integers(0, problems, size=(samples, problems))


def bootstrap_means(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Mean over resampled problems for every point: values (problems, points), NaN where a problem has
    no value (pool smaller than k) -> (bootstrap samples, points). Computed as draw counts per problem
    times values (one matrix product), never materialising the resampled values."""
    samples, problems = indices.shape
    counts = np.zeros((samples, values.shape[0]))
    np.add.at(counts, (np.repeat(np.arange(samples), problems), indices.ravel()), 1.0)
    present = ~np.isnan(values)
    sums = counts @ np.where(present, values, 0.0)
    weights = counts @ present.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weights > 0, sums / np.maximum(weights, 1.0), np.nan)


def t_over_z(problems: np.ndarray, confidence: float = CONFIDENCE) -> np.ndarray:
    """Student-t quantile with P - 1 degrees of freedom over the normal one (Cornish-Fisher series,
    within 1e-3 for P >= 6); 1 where P < 2. Why: a percentile interval is a normal interval at heart."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    nu = np.maximum(np.asarray(problems, dtype=float) - 1.0, 1.0)
    t = (z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
         + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * nu**3))
    return np.where(np.asarray(problems) > 1, t / z, 1.0)


def intervals(
    estimate: np.ndarray, replicates: np.ndarray, problems: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval per column, widened around the estimate by sqrt(P / (P - 1)) and by
    the Student-t over normal quantile for P problems: the interval of a selection re-made in every
    replicate (the frontier's height at a spend), and the spread the seed-scheme comparison measures.
    A point's own accuracy gets a score interval instead (accuracy_intervals): for one point with 0/1
    scores this bootstrap covers 0.83 at 12 problems (benchmarks/coverage_points.py).

    Why widened: the bootstrap variance of a mean of P problems is (P - 1)/P times the unbiased one,
    and its spread is estimated from only P problems. NaN where a point rests on one problem: no
    interval over problems exists.
    """
    alpha = (1.0 - confidence) / 2
    lo_q = np.nanquantile(replicates, alpha, axis=0)
    hi_q = np.nanquantile(replicates, 1 - alpha, axis=0)
    p = np.asarray(problems, dtype=float)
    inflate = np.sqrt(np.where(p > 1, p / np.maximum(p - 1, 1), 1.0)) * t_over_z(p, confidence)
    lo = np.clip(estimate - inflate * (estimate - lo_q), 0.0, 1.0)
    hi = np.clip(estimate + inflate * (hi_q - estimate), 0.0, 1.0)
    none = p < 2  # one problem: the bootstrap has nothing to resample, a zero-width bar would be a lie
    return np.where(none, np.nan, np.minimum(lo, estimate)), np.where(none, np.nan, np.maximum(hi, estimate))


# --- bootstrap intervals of selections: the frontier, the crossover --------------------------------

def _quantiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Equal-tailed interval of bootstrap values; NaN when no replicate has one."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return float(lo), float(hi)


def widened(estimate: float, replicates: np.ndarray, problems: int, confidence: float = CONFIDENCE
            ) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates widened around the estimate as `intervals` widens the
    frontier's heights (sqrt(P / (P - 1)) times Student-t over normal): the crossover's gain, token
    intervals. NaN for fewer than two problems: no interval over problems exists."""
    lo, hi = _quantiles(replicates, confidence)
    if problems < 2 or not math.isfinite(estimate) or not math.isfinite(lo):
        return float("nan"), float("nan")
    inflate = math.sqrt(problems / (problems - 1)) * float(t_over_z(np.array([problems]), confidence)[0])
    return min(estimate - inflate * (estimate - lo), estimate), max(estimate + inflate * (hi - estimate), estimate)


NO_INTERVAL_ONE_PROBLEM = "one problem: an interval over problems does not exist"


# --- calibration and the figure's regions ------------------------------------------------------------

def controllable_range(
    requested: Sequence[Budget], mean_tokens: Sequence[float], min_growth: float = 1.15
) -> tuple[Budget, Budget]:
    """The longest run of consecutive budgets over which tokens actually used keep growing.

    A step counts as obeyed when mean tokens grow by at least `min_growth` (15%) from one budget to the
    next. The seed found o1-mini obeying between 2^4 and 2^11 by eye; this finds it from the data.
    """
    if len(requested) != len(mean_tokens) or not requested:
        raise ValueError("requested and mean_tokens must be non-empty and of equal length")
    best = (0, 0)
    start = 0
    for i in range(1, len(requested)):
        if mean_tokens[i] >= mean_tokens[i - 1] * min_growth and mean_tokens[i - 1] > 0:
            if i - start > best[1] - best[0]:
                best = (start, i)
        else:
            start = i
    return requested[best[0]], requested[best[1]]


def takeover_budget(requested: Sequence[Budget], controllable_to: Budget, vote_budget: Budget) -> Budget:
    """Where majority vote takes over from asking for more tokens: the largest budget the model still
    obeys (top of the controllable range), and never past the budget the votes were drawn at.
    `requested` is ordered least to most (token counts, or effort levels)."""
    limit = min(budget_rank(controllable_to), budget_rank(vote_budget))
    inside = [b for b in requested if budget_rank(b) <= limit]
    return inside[-1] if inside else requested[0]


@dataclass(frozen=True)
class Regions:
    """Shading of the main figure, in log2(tokens): [start, vote_start) budget control,
    [vote_start, saturation) majority vote, [saturation, end] no gains (empty unless saturated)."""

    start: float
    vote_start: float
    saturation: float
    end: float
    takeover_budget: Budget
    saturated: bool


def regions(
    frontier_x: Sequence[float], saturation_x: float, saturated: bool, takeover_x: float, takeover: Budget,
) -> Regions:
    """Where the data puts the regions: budget control up to the single-sample point at the takeover
    budget, majority vote from there to the law's saturation point, no gains beyond it."""
    xs = list(frontier_x)
    saturation = max(saturation_x, takeover_x)
    return Regions(start=min(xs), vote_start=takeover_x, saturation=saturation, end=max(xs),
                   takeover_budget=as_budget(takeover), saturated=saturated and saturation < max(xs))
