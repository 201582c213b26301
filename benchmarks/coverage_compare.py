"""Coverage of `harness compare`'s numbers: the paired difference's 95% interval, the false alarms of its
p-value, and the efficiency ratio's interval, on simulated pairs of runs over the same problems.

    python benchmarks/coverage_compare.py [--reps N] [--quick] [--only difference|matched|ratio]

The simulated pair: P problems, each with a skill z ~ N(0, 1) shared by both runs (the same problem is
hard for both: that correlation is what pairing uses); a sample of run A is right with probability
Phi(a + s z), of run B with Phi(b + s z), with a and b set so the population accuracies are m_A and
m_A + delta (s = 2.0: most problems almost always right or almost always wrong, as on AIME; s = 1.2: a
softer spread). Each problem gets n samples per run, averaged (the problem is the unit). The truth is
the population difference. Reported per cell: the interval's coverage (the minimum over the grid of
accuracies is what counts), with delta = 0 the share of runs whose p-value is below 0.05 (a valid
test stays at or under 0.05), and the share of rows that contradict themselves: p below 0.05 with 0
inside the interval, or p above it with 0 outside.

The contradicting case, matched spend: `harness compare` reads each run between its two budgets around
a spend, so with one sample per problem the scores are fractional (0.06, 0.94, ...). Each run's two
budgets are 0.15 apart in accuracy and read at weight w (A at w, B at 1 - w); the truth is the
difference of the read accuracies. There the sign-flip permutation test compare used to print for
fractional scores said p = 0.0027 beside Newcombe's interval of -17.1 to +12.6; the table gives the
interval's coverage, and the false alarms and contradictions of its own p-value (what compare prints
now) beside those of that sign-flip test (`old_sign_flip_p`, kept here only for this comparison).

The efficiency ratio: both runs' single-sample accuracy rises along a logistic in log2 tokens at seven
budgets, B one doubling later than A (it needs exactly twice the tokens for any accuracy); tokens per
problem vary around 2^x. The truth is 2 at a fixed target of 0.5 (both curves cross it inside their
budgets); reported: coverage of the paired-bootstrap interval and how often it is open.

Defaults: 2,000 runs per cell for the interval and the tests, 285 per row for the ratio (reps // 7, at least
30; ~10 min on one core); `--quick` 200 and 30.
Every test runs with seed 0, as `harness compare` does.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.analysis import efficiency, paired

PROBLEMS = (12, 30)
SAMPLES = (1, 2, 4, 8)
SPREADS = (2.0, 1.2)
A_MEANS = (0.1, 0.3, 0.5, 0.7)
DELTAS = (0.0, 0.1, 0.2, -0.2)


def _offset(mean: float, spread: float) -> float:
    """a with E[Phi(a + s z)] = mean for z ~ N(0, 1): Phi(a / sqrt(1 + s^2)) = mean."""
    return float(norm.ppf(mean) * math.sqrt(1 + spread**2))


def difference_coverage(problems: int, samples: int, a_mean: float, delta: float, spread: float, reps: int,
                        seed: int = 0) -> dict[str, float]:
    """Coverage of the paired interval of B - A and the share of p-values below 0.05."""
    b_mean = a_mean + delta
    a, b = _offset(a_mean, spread), _offset(b_mean, spread)
    rng = np.random.default_rng([seed, problems, samples, round(100 * a_mean), round(100 * delta) + 100, round(10 * spread)])
    covered = rejected = contradictions = 0
    for _ in range(reps):
        z = rng.normal(size=problems)
        scores_a = rng.binomial(samples, norm.cdf(a + spread * z)) / samples
        scores_b = rng.binomial(samples, norm.cdf(b + spread * z)) / samples
        found = paired.compare_scores(scores_a, scores_b)
        covered += bool(found.lo - 1e-12 <= delta <= found.hi + 1e-12)
        rejected += found.p_value < 0.05
        contradictions += contradicts(found.p_value, found.lo, found.hi)
    return {"interval": covered / reps, "p below 0.05": rejected / reps, "contradictions": contradictions / reps}


def contradicts(p_value: float, lo: float, hi: float) -> bool:
    """A row that tells two stories: significant with 0 inside its interval, or not with 0 outside."""
    return (p_value < 0.05) == bool(lo <= 0 <= hi)


def difference_table(reps: int) -> None:
    print(f"### The paired difference: {reps} seeded runs per cell\n")
    print("| skill spread | problems | samples per problem | min coverage (over accuracy and delta) | at (m_A, delta) "
          "| mean coverage | p < 0.05 when delta = 0 (max over m_A) | rows contradicting themselves (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for spread in SPREADS:
        for problems in PROBLEMS:
            for samples in SAMPLES:
                start = time.process_time()
                cells = {(m, d): difference_coverage(problems, samples, m, d, spread, reps)
                         for m in A_MEANS for d in DELTAS if 0.02 <= m + d <= 0.98}
                worst = min(cells, key=lambda c: cells[c]["interval"])
                alarms = max(v["p below 0.05"] for (m, d), v in cells.items() if d == 0)
                mean = np.mean([v["interval"] for v in cells.values()])
                contradictions = max(v["contradictions"] for v in cells.values())
                print(f"| {spread} | {problems} | {samples} | {cells[worst]['interval']:.3f} | {worst} | {mean:.3f} "
                      f"| {alarms:.3f} | {contradictions:.3f} |", flush=True)
                print(f"  ({time.process_time() - start:.0f} s CPU)", file=sys.stderr)


MATCHED_MEANS = (0.3, 0.5, 0.7)
MATCHED_TRUTHS = (0.0, 0.1, -0.1)
MATCHED_WEIGHTS = (0.06, 0.3, 0.5)
BUDGET_STEP = 0.15  # accuracy gained from a run's lower to its upper budget around the spend


def _read_between(rng: np.random.Generator, z: np.ndarray, read: float, weight: float, spread: float) -> np.ndarray:
    """One run's scores read at `weight` between two budgets (one sample per problem at each) whose
    accuracies are BUDGET_STEP apart and whose read accuracy is `read`: fractional, as at matched spend."""
    lower = read - weight * BUDGET_STEP
    at_lower = rng.random(z.size) < norm.cdf(_offset(lower, spread) + spread * z)
    at_upper = rng.random(z.size) < norm.cdf(_offset(lower + BUDGET_STEP, spread) + spread * z)
    return (1 - weight) * at_lower + weight * at_upper


def old_sign_flip_p(differences: np.ndarray, seed: int = 0, draws: int = 20000) -> float:
    """The test compare printed for fractional scores before: two-sided sign-flip permutation p-value of
    the mean difference, exact over the 2^m patterns of m <= 16 non-zero differences, else seeded draws."""
    d = differences[np.abs(differences) > 1e-12]
    m = d.size
    if m == 0:
        return 1.0
    observed = abs(float(d.sum())) - 1e-9
    if m <= 16:
        signs = ((np.arange(2**m)[:, None] >> np.arange(m)[None, :]) & 1) * 2 - 1
        return float(np.mean(np.abs(signs @ d) >= observed))
    signs = np.random.default_rng([seed, m]).integers(0, 2, size=(draws, m)) * 2 - 1
    return (1 + int(np.sum(np.abs(signs @ d) >= observed))) / (1 + draws)


def matched_coverage(problems: int, read: float, truth: float, weight: float, spread: float, reps: int,
                     seed: int = 0) -> dict[str, float]:
    """At matched spend: the interval's coverage, and the false alarms (truth 0) and contradictions of
    its own p-value and of the old sign-flip test."""
    rng = np.random.default_rng([seed, problems, round(100 * read), round(100 * truth) + 100, round(100 * weight)])
    counts = {"interval": 0, "p below 0.05": 0, "old p below 0.05": 0, "contradictions": 0, "old contradictions": 0}
    for _ in range(reps):
        z = rng.normal(size=problems)
        scores_a = _read_between(rng, z, read, weight, spread)
        scores_b = _read_between(rng, z, read + truth, 1 - weight, spread)
        found = paired.compare_scores(scores_a, scores_b)
        old_p = old_sign_flip_p(scores_b - scores_a)
        counts["interval"] += bool(found.lo - 1e-12 <= truth <= found.hi + 1e-12)
        counts["p below 0.05"] += found.p_value < 0.05
        counts["old p below 0.05"] += old_p < 0.05
        counts["contradictions"] += contradicts(found.p_value, found.lo, found.hi)
        counts["old contradictions"] += contradicts(old_p, found.lo, found.hi)
    return {key: value / reps for key, value in counts.items()}


def matched_table(reps: int, spread: float = 2.0) -> None:
    print(f"\n### At matched spend (fractional scores from one sample per budget; spread {spread}): {reps} seeded "
          "runs per cell\n")
    print("| problems | weight w | min coverage of the interval | p < 0.05 when no difference (max): the interval's "
          "own p | the old sign-flip test | rows contradicting themselves (max): now | with the old test |")
    print("|---|---|---|---|---|---|---|")
    for problems in PROBLEMS:
        for weight in MATCHED_WEIGHTS:
            cells = {(m, t): matched_coverage(problems, m, t, weight, spread, reps)
                     for m in MATCHED_MEANS for t in MATCHED_TRUTHS}
            covered = min(c["interval"] for c in cells.values())
            alarms = {key: max(c[key] for (m, t), c in cells.items() if t == 0)
                      for key in ("p below 0.05", "old p below 0.05")}
            most = {key: max(c[key] for c in cells.values()) for key in ("contradictions", "old contradictions")}
            print(f"| {problems} | {weight} | {covered:.3f} | {alarms['p below 0.05']:.3f} | "
                  f"{alarms['old p below 0.05']:.3f} | {most['contradictions']:.3f} | {most['old contradictions']:.3f} |",
                  flush=True)


def _chance(x: np.ndarray, shift: float, skill: np.ndarray) -> np.ndarray:
    """A problem's chance of a right sample at log2 tokens x, `shift` doublings later than run A's."""
    return 1 / (1 + np.exp(-1.2 * (x - 7.0 - shift) - 1.5 * skill))


def ratio_coverage(problems: int, reps: int, seed: int = 0, budgets: int = 7) -> dict[str, float]:
    """Coverage of the efficiency ratio's interval when B needs exactly twice A's tokens."""
    rng = np.random.default_rng([seed, problems])
    x = np.arange(4.0, 4.0 + budgets)
    covered = open_ended = point_hits = 0
    for _ in range(reps):
        skill = rng.normal(size=(problems, 1))
        scores_a = (rng.random((problems, budgets)) < _chance(x, 0.0, skill)).astype(float)
        scores_b = (rng.random((problems, budgets)) < _chance(x, 1.0, skill)).astype(float)
        noise = rng.lognormal(0, 0.3, size=(problems, budgets))
        tokens_a, tokens_b = 2**x * noise, 2**x * rng.lognormal(0, 0.3, size=(problems, budgets))
        found = efficiency.compare_efficiency(scores_a, tokens_a, scores_b, tokens_b, target=0.5,
                                              seed=int(rng.integers(1 << 30)), replicates=500)
        covered += bool(found.interval_lo - 1e-12 <= 1.0 <= found.interval_hi + 1e-12)
        open_ended += not (math.isfinite(found.interval_lo) and math.isfinite(found.interval_hi))
        point_hits += found.a.kind == found.b.kind == efficiency.EXACT
    return {"coverage": covered / reps, "open": open_ended / reps, "both crossings": point_hits / reps}


def ratio_table(reps: int) -> None:
    print(f"\n### The efficiency ratio (B needs 2x A's tokens, target 0.5): {reps} seeded runs per row\n")
    print("| problems | interval covers 2 | interval open (a bound) | both runs cross the target |")
    print("|---|---|---|---|")
    for problems in PROBLEMS:
        r = ratio_coverage(problems, reps)
        print(f"| {problems} | {r['coverage']:.3f} | {r['open']:.3f} | {r['both crossings']:.3f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=None, help="runs per cell of the difference table")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("difference", "matched", "ratio"), help="one table of the three")
    args = parser.parse_args(argv)
    reps = args.reps or (200 if args.quick else 2000)
    tables = {"difference": lambda: difference_table(reps), "matched": lambda: matched_table(reps),
              "ratio": lambda: ratio_table(max(30, reps // 7))}
    for name, table in tables.items():
        if args.only in (None, name):
            table()


if __name__ == "__main__":
    main()
