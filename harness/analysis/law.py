"""The law: how fast accuracy rises per doubling of tokens, where it saturates, and what comes after.

The law is a probit curve in log2(tokens) fitted by least squares to the seed's path (one answer at every
budget, then the votes at the vote budget):

    accuracy(x) = floor + (plateau - floor) * Phi((x - midpoint) / scale)

Its **slope** is the average rise per doubling across the middle of the rise, from 10% to 90% of the way
from floor to plateau (`x_from` to `x_to`): 0.8 (plateau - floor) / (2 * 1.2816 * scale). On a curve that
rises in a straight line in log2(tokens) between a floor and a plateau (the seed's picture) that is the
line's slope to within a few percent; the figure draws it as the chord between those two points. The
**saturation point** is `x_to`; the **gain after saturation** is the last point's accuracy minus that of
the first measured point at or past `x_to`.

Intervals: leave-one-problem-out jackknife of every number (the curve refitted 30 times for 30 problems,
the saturation point re-chosen each time), with Student's t on P - 1 degrees of freedom. Why not the
bootstrap with breakpoints re-chosen in every replicate (the floor-rise-plateau fit this replaced): its
replicates jump between breakpoints on the grid, so on a clean seed-shaped curve at 30 problems and two
samples per budget the slope's interval reached past what any accuracy curve allows in 40% of runs and
the law went unprinted; the probit moves smoothly with the data. Measured coverage:
benchmarks/coverage_law.py, docs/statistics.md.

A slope is printed only where the data carry it (`identified`): at least MIN_PROBLEMS problems (with 12 the
printed slope's interval covered 0.87-0.89), and at least two measured points inside the rise (a rise
between two budgets, or a flat curve's fit to noise, has an unmeasured steepness). Those two rules alone
keep every printed interval at >= 0.93 coverage in the simulation; the earlier rule "the interval must
stay within +-100 / (x_to - x_from)" only withheld good fits of curves rising from 0 to 1.

Pure: arrays in, numbers out (scipy's least-squares solver and normal distribution).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import norm
from scipy.stats import t as student_t

from ..files import json_number
from .stats import CONFIDENCE, NO_INTERVAL_ONE_PROBLEM

RISE_SHARE = 0.8  # the slope is averaged over the middle 80% of the rise: from 10% to 90% of the way
RISE_EDGE = float(norm.ppf(0.5 + RISE_SHARE / 2))  # 1.2816: x_to - midpoint in units of the scale
# The rise (10% to 90%) is never narrower than the closest two budgets: between two measured points any
# steeper rise fits as well, so its steepness there is not something the data say.
MIN_POINTS_IN_RISE = 2  # a printed slope rests on measured points inside its rise, not on the floor and plateau
MIN_PROBLEMS = 16  # below this the printed slope's interval covered 0.87-0.89 at 12 problems (docs/statistics.md)
METHOD = ("probit in log2 tokens (floor + (plateau - floor) Phi((x - midpoint) / scale)), least squares on the "
          "seed path's points; slope = the average rise per doubling from 10% to 90% of the way from floor to "
          "plateau; intervals: leave-one-problem-out jackknife, Student t with P - 1 degrees of freedom")


@dataclass(frozen=True)
class Law:
    """Accuracy vs. log2(tokens) along the seed's path (ask for more tokens, then vote at the vote budget)."""

    slope: float  # accuracy points (percent) per doubling, averaged over the rise [x_from, x_to]
    slope_lo: float
    slope_hi: float
    intercept: float  # points (percent): the drawn chord is intercept + slope * x on [x_from, x_to]
    x_from: float  # where the fitted curve is 10% of the way from floor to plateau
    x_to: float  # ... and 90%: the saturation point
    points: int  # measured points inside the rise
    saturated: bool  # a measured point lies past the first point at or after the saturation point
    saturation_x: float
    saturation_lo: float
    saturation_hi: float
    gain_after_saturation: float  # last point's accuracy minus that of the first point at or past x_to
    gain_lo: float
    gain_hi: float
    floor: float = math.nan  # fitted accuracy far below the rise (fraction)
    plateau: float = math.nan  # ... and far above it
    reason: str | None = None  # why a value is missing (null in metrics.json), None when none is
    identified: bool = True  # False: the data do not carry a slope (reason says why)


@dataclass(frozen=True)
class Probit:
    floor: float
    plateau: float
    midpoint: float
    scale: float

    def at(self, x: np.ndarray | float) -> np.ndarray:
        return self.floor + (self.plateau - self.floor) * norm.cdf((np.asarray(x, dtype=float) - self.midpoint)
                                                                   / self.scale)

    @property
    def rise(self) -> tuple[float, float]:
        return self.midpoint - RISE_EDGE * self.scale, self.midpoint + RISE_EDGE * self.scale

    @property
    def slope(self) -> float:
        """Points per doubling, averaged across the middle RISE_SHARE of the rise."""
        return 100 * RISE_SHARE * (self.plateau - self.floor) / (2 * RISE_EDGE * self.scale)


def _residuals(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    floor, plateau, midpoint, log_scale = theta
    return floor + (plateau - floor) * norm.cdf((x - midpoint) / math.exp(log_scale)) - y


def fit_probit(x: np.ndarray, y: np.ndarray, start: Probit | None = None) -> Probit:
    """The least-squares probit of y on x, from several starting shapes (or one: `start`, as the jackknife
    refits do); the floor and plateau stay in [0, 1], the midpoint within one span of the points, and the
    rise (10% to 90%) spans at least the smallest step between two points."""
    span = max(float(x.max() - x.min()), 1.0)
    gaps = np.diff(np.unique(x))
    least = float(gaps.min()) / (2 * RISE_EDGE) if gaps.size else 1.0
    lower = [0.0, 0.0, float(x.min()) - span, math.log(least)]
    upper = [1.0, 1.0, float(x.max()) + span, math.log(2 * span)]
    if start is not None:
        starts = [[start.floor, start.plateau, start.midpoint, math.log(start.scale)]]
    else:
        low, high = float(np.clip(y.min(), 0, 1)), float(np.clip(y.max(), 0, 1))
        rising = float(np.dot(x - x.mean(), y - y.mean())) >= 0
        f0, c0 = (low, high) if rising else (high, low)
        middle = float(x[int(np.argmin(np.abs(y - (f0 + c0) / 2)))])
        starts = [[f0, c0, middle, math.log(s)] for s in (0.5, 1.5, span / 3)]
    best = None
    for guess in starts:
        theta0 = np.clip(guess, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
        found = least_squares(_residuals, theta0, args=(x, y), bounds=(lower, upper), method="trf",
                              x_scale="jac")
        if best is None or found.cost < best.cost - 1e-15:
            best = found
    assert best is not None
    floor, plateau, midpoint, log_scale = (float(v) for v in best.x)
    return Probit(floor, plateau, midpoint, math.exp(log_scale))


def saturation_index(x: np.ndarray, saturation_x: float) -> int:
    """The first measured point at or past the saturation point (the last point if none is)."""
    past = np.flatnonzero(x >= saturation_x - 1e-12)
    return int(past[0]) if past.size else len(x) - 1


def _numbers(x: np.ndarray, y: np.ndarray, fit: Probit) -> np.ndarray:
    """slope, saturation point, gain after saturation: what the jackknife re-computes."""
    x_to = fit.rise[1]
    return np.array([fit.slope, x_to, float(y[-1] - y[saturation_index(x, x_to)])])


def leave_one_out_means(values: np.ndarray) -> np.ndarray:
    """Row i: every point's mean over the problems other than i (NaN-aware: a problem missing at a point
    does not count there)."""
    present = ~np.isnan(values)
    sums = np.where(present, values, 0.0).sum(axis=0)
    counts = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums[None, :] - np.where(present, values, 0.0)) / (counts[None, :] - present)


def jackknife_interval(estimate: float, leave_one_out: np.ndarray, confidence: float = CONFIDENCE
                       ) -> tuple[float, float]:
    """estimate -+ t(P - 1) * jackknife standard error; NaN when some leave-one-out value is missing."""
    p = leave_one_out.size
    if p < 2 or not np.isfinite(leave_one_out).all() or not math.isfinite(estimate):
        return math.nan, math.nan
    se = math.sqrt((p - 1) / p * float(np.sum((leave_one_out - leave_one_out.mean()) ** 2)))
    half = float(student_t.ppf(0.5 + confidence / 2, p - 1)) * se
    return estimate - half, estimate + half


def slope_bound(x_from: float, x_to: float) -> float:
    """Context for a printed slope (metrics.json): the steepest slope (points per doubling) any curve can
    have across the rise, accuracy moving at most 100 points from x_from to x_to."""
    width = x_to - x_from
    return 100.0 / width if width > 0 else math.inf


RISE_BETWEEN_POINTS = ("the fitted rise holds fewer than two measured points: how steep it is was not measured "
                       "(a flat curve, or one rising between two budgets), so no slope is printed")


def rise_outside_reason(x_from: float, x_to: float, first: float, last: float) -> str:
    return (f"the fitted rise (log2 tokens {x_from:.1f} to {x_to:.1f}) lies mostly outside the measured tokens "
            f"(log2 {first:.1f} to {last:.1f}): neither its slope nor where it saturates was measured, so neither "
            "is printed")


def too_few_problems_reason(problems: int) -> str:
    return (f"too few problems to fit a law: {problems}, fewer than {MIN_PROBLEMS}; with fewer the printed slope's "
            "95% interval covered the true slope in under 93% of simulated runs (docs/statistics.md), so it is "
            "not printed")


def fit_law(x: Sequence[float], values: np.ndarray, confidence: float = CONFIDENCE) -> Law:
    """Fit the law to the seed path's points: `x` (log2 tokens, increasing) and `values` (problems, points),
    each problem's accuracy at each point (NaN where it has none); the points are the column means."""
    xs = np.asarray(x, dtype=float)
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if xs.size == 0 or np.any(np.diff(xs) < 0):
        raise ValueError("the law's points must be non-empty and sorted by tokens")
    with np.errstate(invalid="ignore"):
        ys = np.nanmean(values, axis=0) if values.size else np.full(xs.shape, np.nan)
    if not np.isfinite(xs).all() or not np.isfinite(ys).all():
        missing = [i for i in range(xs.size) if not (math.isfinite(xs[i]) and math.isfinite(ys[i]))]
        raise ValueError(f"points {missing} have no tokens or no accuracy: the law needs every one")
    if np.unique(xs).size < 2:
        nan = math.nan
        return Law(nan, nan, nan, nan, float(xs[0]), float(xs[-1]), len(xs), False, float(xs[-1]), nan, nan,
                   0.0, nan, nan, reason="fewer than two distinct token counts: no slope exists", identified=False)
    fit = fit_probit(xs, ys)
    estimate = _numbers(xs, ys, fit)
    problems = values.shape[0]
    if problems >= 2:  # below MIN_PROBLEMS the slope and saturation intervals under-cover: not printed below
        refits = [_numbers(xs, row, fit_probit(xs, row, start=fit)) if np.isfinite(row).all()
                  else np.full(3, np.nan) for row in leave_one_out_means(values)]
        loo = np.array(refits)
        (lo, hi), (s_lo, s_hi), (g_lo, g_hi) = (jackknife_interval(float(estimate[i]), loo[:, i], confidence)
                                                for i in range(3))
    else:
        lo = hi = s_lo = s_hi = g_lo = g_hi = math.nan
    x_from, x_to = fit.rise
    inside = int(np.sum((xs > x_from) & (xs < x_to)))
    end = saturation_index(xs, x_to)
    saturated = x_to <= xs[-1] and end < len(xs) - 1
    reason = NO_INTERVAL_ONE_PROBLEM if problems < 2 else None
    identified = True
    if problems < MIN_PROBLEMS:
        identified, reason = False, reason or too_few_problems_reason(problems)
    elif inside < MIN_POINTS_IN_RISE:
        identified, reason = False, RISE_BETWEEN_POINTS
    rose = math.isfinite(lo) and (lo > 0 or hi < 0)
    if not (identified and rose):
        # measured only where a slope is printed (at 12 problems it covered 0.90), and only where the curve
        # is shown to move: a flat curve's "saturation point" is where noise put the fit's bend
        s_lo = s_hi = math.nan
    if inside < MIN_POINTS_IN_RISE and (x_to > xs[-1] or x_from < xs[0]):
        # an extrapolated rise: the curve is flat or barely rising where it was measured; a saturation point
        # out there would be a claim about tokens nobody spent
        return Law(fit.slope, math.nan, math.nan, math.nan, x_from, x_to, inside, False, math.nan, math.nan,
                   math.nan, 0.0, math.nan, math.nan, fit.floor, fit.plateau,
                   reason if problems < MIN_PROBLEMS else rise_outside_reason(x_from, x_to, xs[0], xs[-1]), False)
    at_from = 100 * float(fit.at(x_from))
    return Law(fit.slope, lo, hi, at_from - fit.slope * x_from, x_from, x_to, inside, bool(saturated), x_to,
               s_lo, s_hi, float(estimate[2]) if saturated else 0.0, g_lo if saturated else math.nan,
               g_hi if saturated else math.nan, fit.floor, fit.plateau, reason, identified)


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


def law_metrics(fitted: Law) -> dict[str, Any]:
    """metrics.json `law`: the slope only where the data carry it (`identified`; `reason` says why not),
    the rise, the saturation point and the gain after it, each with its interval, and the method."""
    shown = fitted.identified
    return {
        "identified": fitted.identified,
        "slope_points_per_doubling": json_number(fitted.slope, 3) if shown else None,
        "slope_lo": json_number(fitted.slope_lo, 3) if shown else None,
        "slope_hi": json_number(fitted.slope_hi, 3) if shown else None,
        "intercept_points": json_number(fitted.intercept, 3) if shown else None,
        "slope_bound_points_per_doubling": json_number(slope_bound(fitted.x_from, fitted.x_to), 3),
        "fit_from_log2_tokens": json_number(fitted.x_from, 4),
        "fit_to_log2_tokens": json_number(fitted.x_to, 4),
        "fit_points": fitted.points,
        "saturated": fitted.saturated,
        "saturation_log2_tokens": json_number(fitted.saturation_x, 4),
        "saturation_log2_tokens_lo": json_number(fitted.saturation_lo, 4),
        "saturation_log2_tokens_hi": json_number(fitted.saturation_hi, 4),
        "gain_after_saturation": json_number(fitted.gain_after_saturation),
        "gain_after_saturation_lo": json_number(fitted.gain_lo),
        "gain_after_saturation_hi": json_number(fitted.gain_hi),
        # what the data show past the saturation point: the region's name on the figure
        "after_saturation": after_saturation(fitted),
        "floor": json_number(fitted.floor),
        "plateau": json_number(fitted.plateau),
        "method": METHOD,
        # why a value above is null; absent when none is (DVC drops null metrics)
        **({"reason": fitted.reason} if fitted.reason else {}),
    }
