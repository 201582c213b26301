"""Two runs on the same problems: the difference in accuracy with its interval, and an exact test.

The problem is the unit: each run's samples of a problem are averaged first, so a problem scores in
[0, 1] in each run, and the two scores of one problem are paired. Pairing is what makes a small
benchmark informative: the problems that both runs get right (or both wrong) say nothing about the
difference, and an unpaired test (lm-eval's z-test, HELM's standard deviations) pays for them in width.

- `difference_interval`: Newcombe's hybrid score interval for a paired difference (Newcombe 1998,
  method 11: each run's continuity-corrected Wilson interval, combined through the correlation of the
  per-problem scores). For one sample per problem it is Newcombe's interval exactly; with averaged
  scores the same combination applies, with the scores' Pearson correlation. Measured coverage:
  benchmarks/coverage_compare.py, docs/statistics.md.
- `mcnemar_mid_p`: McNemar's exact test with the mid-p correction, for one sample per problem (scores 0
  or 1): only the discordant problems count.
- `sign_flip_p`: a permutation test of the mean per-problem difference, for averaged scores: under "no
  difference" each problem's difference is as likely negative as positive, so flipping signs gives the
  null distribution (every one of the 2^m patterns when m <= 16 problems differ, else seeded draws).

Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from .stats import CONFIDENCE, score_interval

EXACT_SIGN_FLIPS = 16  # up to 2^16 sign patterns are enumerated; more differing problems are sampled
SAMPLED_SIGN_FLIPS = 20000


@dataclass(frozen=True)
class PairedDifference:
    """B minus A on the problems both runs answered."""

    problems: int
    a: float  # run A's accuracy on these problems
    b: float
    delta: float  # b - a
    lo: float
    hi: float
    p_value: float
    test: str  # "McNemar exact mid-p" or "sign-flip permutation"
    discordant: tuple[int, int]  # problems where A scored higher, where B scored higher


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
    n = a.size
    if n < 2:
        return math.nan, math.nan
    pa, pb = float(a.mean()), float(b.mean())
    (la, ua), (lb, ub) = ((float(v) for v in score_interval(x.sum(), n, confidence)) for x in (a, b))
    phi = correlation(a, b)
    # B - A: its lower end comes from B's lower limit and A's upper, and the reverse
    below = math.sqrt(max((pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2, 0.0))
    above = math.sqrt(max((ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2, 0.0))
    delta = pb - pa
    return max(delta - below, -1.0), min(delta + above, 1.0)


def difference_intervals(before: np.ndarray, after: np.ndarray, confidence: float = CONFIDENCE
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (problems, columns) tables, the interval of mean(after) - mean(before) on the problems
    that have both (difference_interval); NaN for fewer than two."""
    pairs = []
    for j in range(before.shape[1]):
        both = ~np.isnan(before[:, j]) & ~np.isnan(after[:, j])
        pairs.append(difference_interval(before[both, j], after[both, j], confidence))
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def mcnemar_mid_p(b_only: int, a_only: int) -> float:
    """Two-sided McNemar exact test with the mid-p correction: under "no difference" the discordant
    problems split as Binomial(b + c, 1/2); mid-p counts half the probability of the observed split."""
    m = b_only + a_only
    if m == 0:
        return 1.0
    low = min(b_only, a_only)
    p = 2 * (float(binom.cdf(low, m, 0.5)) - 0.5 * float(binom.pmf(low, m, 0.5)))
    return min(1.0, p)


def sign_flip_p(differences: np.ndarray, seed: int = 0) -> float:
    """Two-sided permutation p-value of the mean difference by flipping signs: exact over all 2^m sign
    patterns of the m non-zero differences when m <= EXACT_SIGN_FLIPS, else SAMPLED_SIGN_FLIPS seeded
    patterns ((1 + hits) / (1 + draws), never 0)."""
    d = np.asarray(differences, dtype=float)
    d = d[np.abs(d) > 1e-12]
    m = d.size
    if m == 0:
        return 1.0
    observed = abs(float(d.sum())) - 1e-9
    if m <= EXACT_SIGN_FLIPS:
        patterns = ((np.arange(2**m)[:, None] >> np.arange(m)[None, :]) & 1) * 2 - 1
        return float(np.mean(np.abs(patterns @ d) >= observed))
    rng = np.random.default_rng([seed, m])
    signs = rng.integers(0, 2, size=(SAMPLED_SIGN_FLIPS, m)) * 2 - 1
    hits = int(np.sum(np.abs(signs @ d) >= observed))
    return (1 + hits) / (1 + SAMPLED_SIGN_FLIPS)


def binary(scores: np.ndarray) -> bool:
    return bool(np.all((scores == 0) | (scores == 1)))


def compare_scores(a: np.ndarray, b: np.ndarray, seed: int = 0, confidence: float = CONFIDENCE
                   ) -> PairedDifference:
    """B against A on paired per-problem scores: the difference, its interval and an exact test
    (McNemar's mid-p when every score is 0 or 1, i.e. one sample per problem; else sign flips)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired scores: one score per problem in each run, the same problems in the same order")
    lo, hi = difference_interval(a, b, confidence)
    a_higher, b_higher = int(np.sum(a > b + 1e-12)), int(np.sum(b > a + 1e-12))
    if binary(a) and binary(b):
        p, test = mcnemar_mid_p(b_higher, a_higher), "McNemar exact mid-p"
    else:
        p, test = sign_flip_p(b - a, seed), "sign-flip permutation"
    return PairedDifference(int(a.size), float(a.mean()) if a.size else math.nan,
                            float(b.mean()) if b.size else math.nan, float(b.mean() - a.mean()) if a.size else math.nan,
                            lo, hi, p, test, (a_higher, b_higher))
