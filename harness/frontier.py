"""The compute-optimal frontier of the (budget, k) grid, and the crossover from thinking longer to voting.

Every grid point spends tokens (k samples at one budget) and buys an accuracy (maj@k). At a fixed spend one
can think longer (a larger budget, fewer samples) or vote over more, shorter answers (Snell et al. 2024;
s1's sequential vs. parallel). The frontier answers "what is the best accuracy this many tokens buy": the
grid points that no other point beats with fewer or equal tokens and higher accuracy (the upper envelope,
in order of tokens). The crossover answers "from what spend on does a vote over shorter answers beat what
thinking longer buys *at the same spend*": the single-answer (k = 1) curve read at the vote's tokens
(`thinking_longer_at`), never "the longest answer, if the vote costs no more" (a vote 2% dearer than the
longest answer would hide a 23-point win: real grids never land on exactly equal spends).

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




# How far past the longest single answer's tokens a spend still counts as "equal" to it: half a doubling.
# Budgets are usually a doubling apart, so a vote's spend lands within half a doubling of some measured
# answer; further out, what a longer budget would buy was never measured and no comparison is made.
EQUAL_SPEND_REACH_DOUBLINGS = 0.5


def thinking_longer_at(tokens: np.ndarray, accuracy: np.ndarray, single: np.ndarray, spend: np.ndarray
                       ) -> np.ndarray:
    """What thinking longer buys at each spend, per row (a grid, or a bootstrap replicate of it).

    The single-answer curve (the `single` columns: k = 1 at every budget) in order of tokens, made
    non-decreasing (at a given spend one may always stop at a shorter budget that did better), read by
    linear interpolation in log2(tokens) between the two measured answers around the spend; past the
    longest answer it is held at that answer's value for EQUAL_SPEND_REACH_DOUBLINGS, beyond which (and
    below the cheapest answer) nothing was measured: NaN.
    """
    t = np.atleast_2d(np.asarray(tokens, dtype=float))
    a = np.atleast_2d(np.asarray(accuracy, dtype=float))
    s = np.atleast_2d(np.asarray(spend, dtype=float))
    if s.shape[0] != t.shape[0]:
        s = np.broadcast_to(s, (t.shape[0], s.shape[1]))
    cols = np.flatnonzero(np.asarray(single, dtype=bool))
    out = np.full(s.shape, np.nan)
    for r in range(t.shape[0]):
        ts, acc = t[r, cols], a[r, cols]
        ok = np.isfinite(ts) & np.isfinite(acc) & (ts > 0)
        if not ok.any():
            continue
        order = np.argsort(ts[ok], kind="stable")
        xs, ys = np.log2(ts[ok][order]), np.maximum.accumulate(acc[ok][order])
        xs, first = np.unique(xs, return_index=True)  # equal tokens: the envelope's value after the last
        ys = np.maximum.reduceat(ys, first)
        x = np.log2(np.where(s[r] > 0, s[r], np.nan))
        inside = (x >= xs[0]) & (x <= xs[-1] + EQUAL_SPEND_REACH_DOUBLINGS)
        out[r] = np.where(inside, np.interp(np.where(inside, x, xs[0]), xs, ys), np.nan)
    return out


def crossover_tokens(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray
                     ) -> np.ndarray:
    """Per row (a grid, or a bootstrap replicate of it): the fewest tokens of a vote over answers shorter
    than the longest budget (`voted_shorter`: k >= 2 at a smaller budget) more accurate than thinking
    longer at the same spend (thinking_longer_at); NaN if none.

    Such a point is on the frontier and rises above every cheaper point: everything cheaper is a single
    answer (at most the non-decreasing curve) or another vote over shorter answers (which would be the
    crossover itself). A flat step, maj@2 = maj@1 at a shorter budget, never wins: the curve already
    holds that single answer at half the spend.
    """
    return _crossings(tokens, accuracy, voted_shorter, single)[0]


def _margins(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: tokens, what thinking longer buys at each point's spend (thinking_longer_at), and each vote
    over shorter answers' margin over it (NaN: not such a vote, or a spend where thinking longer was not
    measured)."""
    t = np.atleast_2d(np.asarray(tokens, dtype=float))
    a = np.atleast_2d(np.asarray(accuracy, dtype=float))
    longer = thinking_longer_at(t, a, single, t)
    compared = np.asarray(voted_shorter, dtype=bool)[None, :] & np.isfinite(longer)
    return t, longer, np.where(compared, a - longer, np.nan)


def _crossings(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the crossover's tokens (NaN: none) and its win over thinking longer at that spend (several
    winners at the same spend: the most accurate); a row without a crossover gets the margin of the vote
    nearest to winning (<= 0; NaN when no vote is compared)."""
    t, _, margin = _margins(tokens, accuracy, voted_shorter, single)
    compared = np.isfinite(margin)
    with np.errstate(invalid="ignore"):
        wins = compared & (margin > 0)
    first = np.where(wins.any(axis=1), np.where(wins, t, np.inf).min(axis=1), np.nan)
    at_first = wins & (t == first[:, None])
    with np.errstate(invalid="ignore"):  # rows with no compared vote: NaN
        best = np.where(compared.any(axis=1), np.nanmax(np.where(compared, margin, -np.inf), axis=1), np.nan)
    # at the crossover's spend thinking longer is one value, so the most accurate winner has the largest win
    gain = np.where(np.isfinite(first), np.max(np.where(at_first, margin, -np.inf), axis=1), best)
    return first, gain


@dataclass(frozen=True)
class Crossover:
    """Where a vote over shorter answers starts to beat thinking longer at equal spend."""

    point: int | None  # the grid point (column) at the crossover, None when there is none
    tokens: float  # NaN when there is none
    tokens_lo: float  # equal-tailed interval over every replicate, "no crossover" counted as +inf
    tokens_hi: float  # inf: open above (no crossover is within the interval)
    share: float  # fraction of bootstrap replicates that have a crossover at all
    thinking_longer: float  # what thinking longer buys at the crossover's spend (NaN when none)
    gains: np.ndarray  # per replicate: its own crossover's win over thinking longer (none: the nearest margin)
    closest: int | None  # no crossover: the vote over shorter answers nearest to winning at equal spend
    closest_thinking_longer: float  # what thinking longer buys at that vote's spend


def crossover(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray,
              tokens_boot: np.ndarray, accuracy_boot: np.ndarray, confidence: float = CONFIDENCE) -> Crossover:
    """The crossover of the grid, and its interval re-selected in every replicate (rows of the *_boot
    arrays: the grid's tokens and accuracies over one resampling of problems)."""
    t, a = np.asarray(tokens, dtype=float), np.asarray(accuracy, dtype=float)
    # every replicate's own crossover and its win (none: the nearest vote's margin), re-selected: a point
    # chosen for winning is biased up, and a fixed point's interval would ignore that selection
    boot, boot_gains = _crossings(tokens_boot, accuracy_boot, voted_shorter, single)
    share = float(np.isfinite(boot).mean()) if boot.size else 0.0
    # a replicate without a crossover has it "beyond every spend" (+inf): the interval's upper end is
    # open (inf) when more than (1 - confidence) / 2 of the replicates have none
    alpha = (1.0 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(np.where(np.isfinite(boot), boot, np.inf), [alpha, 1 - alpha],
                                            method="inverted_cdf"))
    longer, margin = (rows[0] for rows in _margins(t, a, voted_shorter, single)[1:])
    with np.errstate(invalid="ignore"):
        wins = np.isfinite(margin) & (margin > 0)
    estimate = float(t[wins].min()) if wins.any() else math.nan
    if math.isnan(estimate):
        closest = None
        if np.isfinite(margin).any():  # nearest to winning; among equals the most accurate, then the cheapest
            near = np.flatnonzero(np.isfinite(margin) & (margin >= np.nanmax(margin) - 1e-12))
            closest = int(min(near, key=lambda i: (-a[i], t[i])))
        return Crossover(None, estimate, lo, hi, share, math.nan, np.array([]), closest,
                         math.nan if closest is None else float(longer[closest]))
    tied = np.flatnonzero((t == estimate) & wins)
    point = int(tied[np.argmax(a[tied])])  # several winners at the same spend: the most accurate
    return Crossover(point, estimate, lo, hi, share, float(longer[point]), boot_gains, None, math.nan)
