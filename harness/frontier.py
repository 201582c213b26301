"""The compute-optimal frontier of the (budget, k) grid, and the crossover from thinking longer to voting.

Every grid point spends tokens (k samples at one budget) and buys an accuracy (maj@k). At a fixed spend one
can think longer (a larger budget, fewer samples) or vote over more, shorter answers (Snell et al. 2024;
s1's sequential vs. parallel). The frontier answers "what is the best accuracy this many tokens buy": the
grid points that no other point beats with fewer or equal tokens and higher accuracy (the upper envelope,
in order of tokens). The crossover answers "from what spend on is a vote over shorter answers better than
the single longest-budget answer costing as much or more".

Both are selections from noisy points, so their intervals re-select in every bootstrap replicate (the
same resampled problems for accuracy and tokens): a fixed selection would hide the selection's own
uncertainty (benchmarks/coverage_frontier.py measures the coverage). Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stats import CONFIDENCE


def upper_envelope(tokens: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Mask of the points no other point beats with fewer or equal tokens and higher accuracy.

    A point stays when its accuracy is at least the best accuracy of every point costing no more (its
    equal-token rivals included); points without tokens or accuracy (NaN) are never on it and beat nothing.
    """
    t = np.asarray(tokens, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    ok = np.isfinite(t) & np.isfinite(a)
    keep = np.zeros(t.shape, dtype=bool)
    if not ok.any():
        return keep
    order = np.argsort(t[ok], kind="stable")
    ts, acc = t[ok][order], a[ok][order]
    best_so_far = np.maximum.accumulate(acc)
    # the best of every point costing no more: up to the last point with the same tokens
    best_upto = best_so_far[np.searchsorted(ts, ts, side="right") - 1]
    kept = np.empty(ts.shape, dtype=bool)
    kept[order] = acc >= best_upto
    keep[np.flatnonzero(ok)] = kept
    return keep


def rises(tokens: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Mask of the frontier points that buy something: more accurate than every point costing less. (The
    frontier's flat steps, such as maj@2 = maj@1 at twice the tokens, are on it but buy nothing.)"""
    t = np.asarray(tokens, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    ok = np.isfinite(t) & np.isfinite(a)
    cheaper = (t[None, :] < t[:, None]) & ok[None, :]
    best_cheaper = np.where(cheaper, a[None, :], -np.inf).max(axis=1)
    return upper_envelope(t, a) & (a > best_cheaper)


def height_at(tokens: np.ndarray, accuracy: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """The frontier's accuracy at each spend: the best accuracy of any point costing no more (NaN below
    the cheapest point). Rows of tokens/accuracy (replicates, points) are independent grids."""
    t = np.atleast_2d(np.asarray(tokens, dtype=float))
    a = np.atleast_2d(np.asarray(accuracy, dtype=float))
    affordable = (t[:, :, None] <= np.asarray(spend, dtype=float)[None, None, :]) & np.isfinite(a)[:, :, None]
    best = np.where(affordable, a[:, :, None], -np.inf).max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


def crossover_tokens(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, longest: int
                     ) -> np.ndarray:
    """Per row (a grid, or a bootstrap replicate of it): the fewest tokens of a frontier point that rises
    above every cheaper point, is a vote over answers shorter than the longest budget (`voted_shorter`:
    k >= 2 at a smaller budget), costs no more than the single longest-budget answer (column `longest`)
    and is more accurate; NaN if none. (A flat step of the frontier is not where voting pays: maj@2 at a
    shorter budget equals its single answer, which was already there for half the tokens.)"""
    t = np.atleast_2d(np.asarray(tokens, dtype=float))
    a = np.atleast_2d(np.asarray(accuracy, dtype=float))
    out = np.full(t.shape[0], np.nan)
    for r in range(t.shape[0]):
        on = rises(t[r], a[r])
        wins = on & voted_shorter & (t[r] <= t[r, longest]) & (a[r] > a[r, longest])
        if wins.any():
            out[r] = float(t[r][wins].min())
    return out


@dataclass(frozen=True)
class Crossover:
    """Where voting over shorter answers starts to beat the single longest-budget answer."""

    point: int | None  # the grid point (row) at the crossover, None when there is none
    tokens: float  # NaN when there is none
    tokens_lo: float  # equal-tailed interval over every replicate, "no crossover" counted as +inf
    tokens_hi: float  # inf: open above (no crossover is within the interval)
    share: float  # fraction of bootstrap replicates that have a crossover at all
    reason: str | None  # why there is none (or why no interval), None otherwise


def crossover(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, longest: int,
              tokens_boot: np.ndarray, accuracy_boot: np.ndarray, confidence: float = CONFIDENCE) -> Crossover:
    """The crossover of the grid, and its interval re-selected in every replicate (rows of the *_boot
    arrays: the grid's tokens and accuracies over one resampling of problems)."""
    estimate = float(crossover_tokens(tokens, accuracy, voted_shorter, longest)[0])
    boot = crossover_tokens(tokens_boot, accuracy_boot, voted_shorter, longest)
    share = float(np.isfinite(boot).mean()) if boot.size else 0.0
    # a replicate without a crossover has it "beyond every spend" (+inf): the interval's upper end is
    # open (inf) when more than (1 - confidence) / 2 of the replicates have none
    alpha = (1.0 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(np.where(np.isfinite(boot), boot, np.inf), [alpha, 1 - alpha],
                                            method="inverted_cdf"))
    if math.isnan(estimate):
        return Crossover(None, estimate, lo, hi, share, NO_CROSSOVER)
    point = int(np.flatnonzero((np.asarray(tokens, dtype=float) == estimate) & voted_shorter
                               & rises(tokens, accuracy))[0])
    return Crossover(point, estimate, lo, hi, share, None)


NO_CROSSOVER = ("no vote over answers shorter than the longest budget is on the frontier and beats the single "
                "longest-budget answer at equal or lower cost: thinking longer wins at every spend that answer "
                "covers")
