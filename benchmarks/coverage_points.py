"""Coverage of every accuracy interval a point prints (curve.csv's maj_lo/maj_hi and pass_lo/pass_hi, the
figure's error bars, metrics.json's accuracy intervals): how often does the 95% interval contain the
true accuracy, at 12 and 30 problems, pools of 1 to 8 samples, over a grid of true accuracies?

Two parts, both seeded:

1. Exact, for one sample per problem (every score 0 or 1, the worst case): the sum of scores is then
   Binomial(P, p) whatever the problems' difficulties, so coverage is a finite sum. Every candidate
   interval of the literature, over 981 true accuracies from 0.01 to 0.99: the minimum and the mean.
2. Simulated, for pools of n = 1..8 samples: a population of problems whose chance of a right sample is
   q ~ Beta(m c, (1 - m) c) (c = 0.5: U-shaped, most problems almost always right or almost always
   wrong, as on AIME), wrong samples split over three wrong answers (0.5 / 0.3 / 0.2); each run draws P
   problems and a pool of n samples each; every point the vote stage draws (maj@k for k = 1, 2, 4, ..., n
   and pass@k) is scored by the harness's own estimators (majority.maj_at_k_pool, majority.pass_at_k)
   and gets the harness's own interval (stats.accuracy_intervals). The truth is the population's
   expected maj@k and pass@k, computed exactly per q and averaged over 20,000 seeded draws of q.
   True mean accuracies m = 0.05, 0.10, ..., 0.95; the minimum over them is reported, not only the mean.

    python benchmarks/coverage_points.py [--reps N] [--quick]

The default (2,000 runs per cell) takes ~3 minutes on one core; `--quick` 300 runs.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from functools import cache
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.stats import beta as beta_dist
from scipy.stats import binom, norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.analysis import majority, stats

Z = float(norm.ppf(0.975))
WRONG = (0.5, 0.3, 0.2)
CONCENTRATION = 0.5
PROBLEMS = (12, 30)
POOLS = range(1, 9)
TRUE_ACCURACIES = tuple(round(0.05 * i, 2) for i in range(1, 20))


# --- part 1: exact binomial coverage of the candidates ----------------------------------------------

def wilson(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    p = x / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * np.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def agresti_coull(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    size = n + Z * Z
    p = (x + Z * Z / 2) / size
    half = Z * np.sqrt(p * (1 - p) / size)
    return np.clip(p - half, 0, 1), np.clip(p + half, 0, 1)


def beta_posterior(prior: float):
    def interval(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        lo = beta_dist.ppf(0.025, x + prior, n - x + prior)
        hi = beta_dist.ppf(0.975, x + prior, n - x + prior)
        return np.where(x == 0, 0.0, lo), np.where(x == n, 1.0, hi)
    return interval


def clopper_pearson(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.where(x == 0, 0.0, beta_dist.ppf(0.025, np.maximum(x, 1e-9), n - x + 1))
    hi = np.where(x == n, 1.0, beta_dist.ppf(0.975, x + 1, np.maximum(n - x, 1e-9)))
    return lo, hi


def mid_p(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    def lower(k: int) -> float:
        return 0.0 if k == 0 else brentq(lambda p: binom.sf(k - 1, n, p) - 0.5 * binom.pmf(k, n, p) - 0.025,
                                         1e-12, 1 - 1e-12)

    def upper(k: int) -> float:
        return 1.0 if k == n else brentq(lambda p: binom.cdf(k, n, p) - 0.5 * binom.pmf(k, n, p) - 0.025,
                                         1e-12, 1 - 1e-12)
    return np.array([lower(int(k)) for k in x]), np.array([upper(int(k)) for k in x])


def bootstrap_as_before(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The interval this replaced: the seeded percentile bootstrap over problems, widened by
    sqrt(n / (n - 1)) and Student-t over normal (for 0/1 scores it depends only on the sum)."""
    los, his = [], []
    for k in x:
        values = np.zeros((n, 1))
        values[: int(k)] = 1.0
        boot = stats.bootstrap_means(values, stats.bootstrap_indices(n, 0))
        lo, hi = stats.intervals(values.mean(axis=0), boot, np.array([n]))
        los.append(lo[0])
        his.append(hi[0])
    return np.array(los), np.array(his)


CANDIDATES = {
    "Wilson, continuity-corrected (the harness)": lambda x, n: stats.score_interval(x, n),
    "Wilson": wilson,
    "Agresti-Coull": agresti_coull,
    "Beta(x+1, n-x+1) posterior": beta_posterior(1.0),
    "Jeffreys, Beta(x+1/2, n-x+1/2)": beta_posterior(0.5),
    "mid-p Clopper-Pearson": mid_p,
    "Clopper-Pearson": clopper_pearson,
    "percentile bootstrap, widened (before)": bootstrap_as_before,
}


def exact_table() -> None:
    truths = np.linspace(0.01, 0.99, 981)
    print("### One sample per problem (scores 0 or 1): exact coverage over 981 true accuracies 0.01-0.99\n")
    print("| interval | problems | min | mean | min over 0.05-0.95 | width at 50% |")
    print("|---|---|---|---|---|---|")
    for name, interval in CANDIDATES.items():
        for n in PROBLEMS:
            x = np.arange(n + 1, dtype=float)
            lo, hi = (np.asarray(v, dtype=float) for v in interval(x, n))
            pmf = binom.pmf(x[None, :], n, truths[:, None])
            cover = (pmf * ((lo[None, :] <= truths[:, None] + 1e-12) & (truths[:, None] <= hi[None, :] + 1e-12))).sum(1)
            inner = (truths >= 0.05 - 1e-9) & (truths <= 0.95 + 1e-9)
            print(f"| {name} | {n} | {cover.min():.3f} | {cover.mean():.3f} | {cover[inner].min():.3f} "
                  f"| {hi[n // 2] - lo[n // 2]:.3f} |", flush=True)


# --- part 2: simulated pools ---------------------------------------------------------------------------

def compositions(k: int, parts: int):
    for cut in itertools.combinations(range(k + parts - 1), parts - 1):
        bounds = (-1, *cut, k + parts - 1)
        yield tuple(bounds[i + 1] - bounds[i] - 1 for i in range(parts))


def true_maj_at_k(q: np.ndarray, k: int) -> np.ndarray:
    """Expected majority vote of k i.i.d. samples (right with probability q, else one of three wrong
    answers), ties split, for every q at once."""
    probs = [q] + [(1 - q) * w for w in WRONG]
    total = np.zeros_like(q)
    for comp in compositions(k, 4):
        top = max(comp)
        modes = [i for i, c in enumerate(comp) if c == top]
        if 0 not in modes:
            continue
        coef = math.factorial(k) / math.prod(math.factorial(c) for c in comp)
        total += coef * np.prod([p**c for p, c in zip(probs, comp)], axis=0) / len(modes)
    return total


@cache
def scored(counts: tuple[int, ...], k: int) -> tuple[float, float]:
    """(maj@k, pass@k) of a pool given as (right, wrong_1, wrong_2, wrong_3) sample counts."""
    answers = [a for a, c in zip(("right", "w1", "w2", "w3"), counts) for _ in range(c)]
    p = majority.pool(answers, [a == "right" for a in answers])
    return majority.maj_at_k_pool(p, k).value, majority.pass_at_k(p.size, p.correct_samples, k)


def simulated(problems: int, pool: int, mean: float, reps: int, seed: int) -> dict[tuple[str, int], float]:
    rng = np.random.default_rng([seed, problems, pool, round(mean * 100)])
    a, b = mean * CONCENTRATION, (1 - mean) * CONCENTRATION
    population = rng.beta(a, b, size=20000)
    ks = majority.vote_ks(pool)
    truth = {("maj", k): float(true_maj_at_k(population, k).mean()) for k in ks}
    truth.update({("pass", k): float((1 - (1 - population) ** k).mean()) for k in ks})
    hits = dict.fromkeys(truth, 0)
    for _ in range(reps):
        q = rng.beta(a, b, size=problems)
        right = rng.binomial(pool, q)
        wrong = np.array([rng.multinomial(pool - r, WRONG) for r in right])
        values = np.array([[v for k in ks for v in scored((int(r), *map(int, w)), k)] for r, w in zip(right, wrong)])
        lo, hi = stats.accuracy_intervals(values)
        for j, key in enumerate((m, k) for k in ks for m in ("maj", "pass")):
            hits[key] += bool(lo[j] - 1e-12 <= truth[key] <= hi[j] + 1e-12)
    return {key: hits[key] / reps for key in truth}


def simulated_table(reps: int, seed: int = 29) -> None:
    print(f"\n### Pools of 1-8 samples, {reps} seeded runs per cell, true mean accuracy 0.05-0.95 "
          f"(Beta skill, concentration {CONCENTRATION}): the harness's interval, every point of the pool\n")
    print("| problems | pool | min coverage (every point, every true accuracy) | where | mean coverage |")
    print("|---|---|---|---|---|")
    overall = {}
    for problems in PROBLEMS:
        for pool in POOLS:
            start = time.process_time()
            by_mean = {m: simulated(problems, pool, m, reps, seed) for m in TRUE_ACCURACIES}
            cells = [(cover[key], key, m) for m, cover in by_mean.items() for key in cover
                     if not (key[0] == "pass" and key[1] == 1)]  # pass@1 = maj@1
            worst = min(cells)
            overall[problems] = min(overall.get(problems, 1.0), worst[0])
            print(f"| {problems} | {pool} | {worst[0]:.3f} | {worst[1][0]}@{worst[1][1]} at {worst[2]:.2f} "
                  f"| {np.mean([c[0] for c in cells]):.3f} |", flush=True)
            print(f"  ({time.process_time() - start:.0f} s CPU)", file=sys.stderr)
    print("\nminimum over every cell: " + ", ".join(f"{p} problems {v:.3f}" for p, v in overall.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="300 runs per cell instead of 2,000")
    parser.add_argument("--exact-only", action="store_true")
    args = parser.parse_args(argv)
    exact_table()
    if not args.exact_only:
        simulated_table(args.reps or (300 if args.quick else 2000))


if __name__ == "__main__":
    main()
