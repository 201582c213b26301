"""Pure statistics for scaling curves: bootstrap intervals over problems, the fitted law (slope per
doubling, saturation), the regions of the figure. (maj@k and pass@k of one pool: `majority.py`.)

No I/O: everything takes lists/arrays and returns numbers, so the property tests can hammer it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .budget_axis import Budget, as_budget, budget_rank

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


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
    """Percentile bootstrap interval per point, widened around the estimate by sqrt(P / (P - 1)) and by
    the Student-t over normal quantile for P problems.

    Why widened: the bootstrap variance of a mean of P problems is (P - 1)/P times the unbiased one,
    and its spread is estimated from only P problems; with a dozen problems plain percentiles cover
    noticeably less than they claim (tests/test_stats.py measures the coverage by simulation). NaN
    where a point rests on one problem: no interval over problems exists.
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


# --- the law: slope per doubling, saturation ---------------------------------------------------------
#
# The law is the floor-rise-plateau curve that fits the frontier best (least squares): flat up to a rise
# start, a straight line in log2(tokens) up to the saturation point, flat after it, with both breakpoints
# at frontier points. Why not "fit a line between where the points leave the floor and where they come
# within a tolerance of the best": that window was chosen from the noisy points themselves and then held
# fixed in the bootstrap, so its uncertainty never entered the slope's interval (38% coverage on
# seed-shaped curves); a noisy flat point pulled into the window biased the slope. Here the breakpoints
# are chosen by the fit, and chosen again in every bootstrap replicate (benchmarks/coverage_law.py
# measures the coverage: docs/statistics.md).


@dataclass(frozen=True)
class Hinge:
    """The best floor-rise-plateau fit of one curve: rise from point `start` to point `end`."""

    slope: float  # accuracy per doubling of tokens (fraction, not points)
    intercept: float  # of the rising segment: y = intercept + slope * x for x in [x[start], x[end]]
    start: int
    end: int


def _hinge_pairs(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (start, end) pair of frontier points with end > start and distinct tokens, with the centred
    regressor clip(x, x[start], x[end]) of each (pairs, points)."""
    s_idx, e_idx = np.triu_indices(xs.size, 1)
    keep = xs[e_idx] > xs[s_idx]
    s_idx, e_idx = s_idx[keep], e_idx[keep]
    g = np.clip(xs[None, :], xs[s_idx, None], xs[e_idx, None])
    return s_idx, e_idx, g - g.mean(axis=1, keepdims=True)


def fit_hinges(x: Sequence[float] | np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares floor-rise-plateau fit of every row of y (points last): slope, intercept, start and
    end index per row, all at once (one matrix product per call). For fixed breakpoints the model
    y = a + b * clip(x, x_start, x_end) is linear, so the best pair is the one whose regressor explains
    the most variance. Rows with a missing value get NaN slope and index -1."""
    xs = np.asarray(x, dtype=float)
    ys = np.atleast_2d(np.asarray(y, dtype=float))
    s_idx, e_idx, gc = _hinge_pairs(xs)
    rows = ys.shape[0]
    nan = np.full(rows, np.nan)
    if s_idx.size == 0:  # one point, or every point at the same tokens: no slope exists
        return nan, nan, np.full(rows, -1), np.full(rows, -1)
    finite = np.isfinite(ys).all(axis=1)
    yc = np.where(finite[:, None], ys - ys.mean(axis=1, keepdims=True), 0.0)
    spread = (gc * gc).sum(axis=1)
    cov = yc @ gc.T  # (rows, pairs)
    best = np.argmax(cov * cov / spread, axis=1)
    slope = cov[np.arange(rows), best] / spread[best]
    g_mean = np.clip(xs[None, :], xs[s_idx[best], None], xs[e_idx[best], None]).mean(axis=1)
    intercept = ys.mean(axis=1) - slope * g_mean
    start, end = s_idx[best], e_idx[best]
    return (np.where(finite, slope, np.nan), np.where(finite, intercept, np.nan),
            np.where(finite, start, -1), np.where(finite, end, -1))


def fit_hinge(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> Hinge | None:
    """The law of one curve (what the figure draws), or None when fewer than two distinct tokens exist."""
    slope, intercept, start, end = fit_hinges(x, np.asarray(y, dtype=float)[None, :])
    if start[0] < 0:
        return None
    return Hinge(float(slope[0]), float(intercept[0]), int(start[0]), int(end[0]))


def line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of a straight line."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope = float(slopes(xs, ys))
    return slope, float(ys.mean() - slope * xs.mean())


def slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y against x, for every row of y (a point estimate or bootstrap replicates)."""
    xc = x - x.mean()
    yc = y - y.mean(axis=-1, keepdims=True)
    spread = float(xc @ xc)
    if spread == 0:  # every point at the same tokens: no slope exists
        return np.full(y.shape[:-1], np.nan)
    return (yc @ xc) / spread


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
    points' (sqrt(P / (P - 1)) times Student-t over normal), so the slope and gain are as honest as the
    points. NaN for fewer than two problems: no interval over problems exists."""
    lo, hi = _quantiles(replicates, confidence)
    if problems < 2 or not math.isfinite(estimate) or not math.isfinite(lo):
        return float("nan"), float("nan")
    inflate = math.sqrt(problems / (problems - 1)) * float(t_over_z(np.array([problems]), confidence)[0])
    return min(estimate - inflate * (estimate - lo), estimate), max(estimate + inflate * (hi - estimate), estimate)


NO_INTERVAL_ONE_PROBLEM = "one problem: an interval over problems does not exist"


@dataclass(frozen=True)
class Law:
    """Accuracy vs. log2(tokens) along the seed's path (ask for more tokens, then vote at the vote budget;
    `vote.seed_path`), called "the frontier" below; the compute-optimal frontier is `frontier.py`'s."""

    slope: float  # accuracy points (percent) per doubling of tokens over the rise [x_from, x_to]
    slope_lo: float
    slope_hi: float
    intercept: float  # points (percent): the drawn rise is intercept + slope * x on [x_from, x_to]
    x_from: float
    x_to: float
    points: int
    saturated: bool  # a point after the saturation point exists (else the curve was still rising)
    saturation_x: float  # where the fitted rise ends (x_to), with its own bootstrap interval
    saturation_lo: float
    saturation_hi: float
    gain_after_saturation: float  # accuracy of the last point minus the saturation point's
    gain_lo: float
    gain_hi: float
    reason: str | None = None  # why a value is missing (null in metrics.json), None when none is
    identified: bool = True  # False: the slope's interval is wider than accuracy in [0, 100] allows


def slope_bound(x_from: float, x_to: float) -> float:
    """The steepest slope (points per doubling) a real curve can have across the fitted rise: accuracy
    moves at most 100 points from x_from to x_to."""
    width = x_to - x_from
    return 100.0 / width if width > 0 else math.inf


def not_identified_reason(bound: float) -> str:
    return (f"too few problems to fit a law: the slope's 95% interval reaches beyond +-{bound:.1f} points per "
            "doubling, the steepest rise accuracy can take across the fitted range, so it is not printed; more "
            "problems narrow it (docs/statistics.md)")


def _no_law(xs: np.ndarray, ys: np.ndarray, reason: str) -> Law:
    nan = float("nan")
    last = len(xs) - 1
    return Law(nan, nan, nan, nan, float(xs[0]), float(xs[last]), len(xs), False, float(xs[last]), nan, nan,
               0.0, nan, nan, reason)


def fit_law(
    x: Sequence[float], estimate: Sequence[float], replicates: np.ndarray, problems: int,
    confidence: float = CONFIDENCE,
) -> Law:
    """Fit the floor-rise-plateau law to the frontier, with bootstrap intervals for slope, saturation
    point and gain after it; the breakpoints are re-chosen in every replicate.

    `x` (log2 tokens, increasing) and `estimate` (accuracy in [0, 1]) are the frontier points;
    `replicates` (bootstrap samples, points) their bootstrap means over the same resampled problems,
    so the intervals carry the correlation between points; `problems` the problems the points rest on.
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(estimate, dtype=float)
    if xs.size == 0 or np.any(np.diff(xs) < 0):
        raise ValueError("the frontier must be non-empty and sorted by tokens")
    if not np.isfinite(xs).all() or not np.isfinite(ys).all():
        missing = [i for i in range(xs.size) if not (math.isfinite(xs[i]) and math.isfinite(ys[i]))]
        raise ValueError(f"frontier points {missing} have no tokens or no accuracy: the law needs every one")
    best = fit_hinge(xs, ys)
    if best is None:
        return _no_law(xs, ys, "fewer than two distinct token counts on the frontier: no slope exists")
    b_slope, _, _, b_end = fit_hinges(xs, replicates)
    ok = b_end >= 0
    last = len(ys) - 1
    slope = 100 * best.slope
    gain = float(ys[last] - ys[best.end])
    gains = np.where(ok, replicates[:, last] - replicates[np.arange(len(b_end)), np.maximum(b_end, 0)], np.nan)
    lo, hi = widened(slope, 100 * b_slope, problems, confidence)
    g_lo, g_hi = widened(gain, gains, problems, confidence)
    s_lo, s_hi = _quantiles(np.where(ok, xs[np.maximum(b_end, 0)], np.nan), confidence)
    if problems < 2:
        s_lo = s_hi = float("nan")
    reason = NO_INTERVAL_ONE_PROBLEM if problems < 2 else None
    bound = slope_bound(float(xs[best.start]), float(xs[best.end]))
    identified = not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) <= bound
    if not identified:  # an interval no accuracy curve could have: say so rather than print it
        reason = not_identified_reason(bound)
    return Law(slope, lo, hi, 100 * best.intercept, float(xs[best.start]), float(xs[best.end]),
               best.end - best.start + 1, best.end < last, float(xs[best.end]), s_lo, s_hi, gain, g_lo, g_hi,
               reason, identified)


def after_saturation(law: Law) -> str | None:
    """The region past the saturation point, named by its evidence (the gain's 95% interval), not by
    where the fit bends: "no significant gain (95%)" when the interval holds 0, "still rising (95%)" or
    "falling (95%)" when it excludes 0; None when no point follows the saturation point."""
    if not law.saturated:
        return None
    if not (math.isfinite(law.gain_lo) and math.isfinite(law.gain_hi)):
        return "no interval (one problem)"
    if law.gain_lo > 0:
        return "still rising (95%)"
    if law.gain_hi < 0:
        return "falling (95%)"
    return "no significant gain (95%)"


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
