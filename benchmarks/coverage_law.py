"""Coverage of the law: how often is the slope printed, and how often do the printed 95% intervals of the
slope, the saturation point and the gain after saturation contain the value the same method finds on the
true curve?

Seeded; `--quick` runs 60 repetitions per case (seconds), the default 400 (a few minutes on one core; the
300-problem cases take most of it: every run refits the curve once per problem). Run from the repository
root:

    python benchmarks/coverage_law.py [--quick] [--reps N] [--curve NAME]

The simulated run: P problems, each with a skill z ~ N(0, 1); at point j of the seed's path a sample is
correct with probability Phi(a_j + 1.2 z), a_j chosen so the mean over problems is the curve's m_j (probit
with a normal skill: E = Phi(a_j / sqrt(1 + 1.2^2))). A problem's value at a point is the fraction correct
among its n samples, so points are correlated through the problem, as on a real run. The truth is the
method applied to the expected curve m (infinitely many problems).
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
from harness.analysis import law

SKILL_SPREAD = 1.2
CASES = [(12, 2), (16, 2), (30, 2), (30, 4), (300, 4)]  # (problems, samples per problem and point)


def curves() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """x (log2 tokens of the seed's path: one answer at 2^4..2^11, then votes k = 2, 4, 8) and the true
    accuracy m: `seed15` floor 0.15, +15 points per doubling over three doublings, plateau 0.60; `seed`
    floor 0.10, +15 over four, plateau 0.70; `audit2` floor 0.20, +6 per doubling from log2 6 to 15; a
    smooth logistic rise whose bends fall between points; and a flat curve (no rise at all)."""
    seed_x = np.arange(4.0, 15.0)
    audit_x = np.arange(4.0, 19.0)
    return {
        "seed15": (seed_x, np.clip(0.15 + 0.15 * (seed_x - 6), 0.15, 0.60)),
        "seed": (seed_x, np.clip(0.10 + 0.15 * (seed_x - 6), 0.10, 0.70)),
        "audit2": (audit_x, np.clip(0.20 + 0.06 * (audit_x - 6), 0.20, 0.74)),
        "smooth": (seed_x, 0.10 + 0.60 / (1 + np.exp(-1.1 * (seed_x - 8.3)))),
        "flat": (seed_x, np.full(seed_x.shape, 0.40)),
    }


def covers(lo: float, value: float, hi: float) -> bool:
    return bool(lo - 1e-9 <= value <= hi + 1e-9)


def coverage(name: str, problems: int, samples: int, reps: int, seed: int = 11) -> dict[str, float]:
    """Shares of `reps` simulated runs: slope printed, and each interval containing the truth."""
    x, m = curves()[name]
    truth = law.fit_law(x, np.tile(m, (2, 1)))
    a = norm.ppf(m) * math.sqrt(1 + SKILL_SPREAD**2)
    rng = np.random.default_rng([seed, problems, samples])
    counts = {"slope": 0, "printed": 0, "printed covered": 0, "saturation": 0, "saturation runs": 0, "gain": 0,
              "gain runs": 0}
    widths = []
    for _ in range(reps):
        p = norm.cdf(a[None, :] + SKILL_SPREAD * rng.normal(size=(problems, 1)))
        fitted = law.fit_law(x, rng.binomial(samples, p) / samples)
        counts["slope"] += covers(fitted.slope_lo, truth.slope, fitted.slope_hi)
        counts["printed"] += fitted.identified
        counts["printed covered"] += fitted.identified and covers(fitted.slope_lo, truth.slope, fitted.slope_hi)
        if math.isfinite(fitted.saturation_lo):  # printed with a printed law that rises (or falls) only
            counts["saturation runs"] += 1
            counts["saturation"] += covers(fitted.saturation_lo, truth.saturation_x, fitted.saturation_hi)
        if fitted.saturated and truth.saturated:
            counts["gain runs"] += 1
            counts["gain"] += covers(fitted.gain_lo, truth.gain_after_saturation, fitted.gain_hi)
        widths.append(fitted.slope_hi - fitted.slope_lo)
    return {"slope": counts["slope"] / reps, "printed": counts["printed"] / reps,
            "printed covered": counts["printed covered"] / counts["printed"] if counts["printed"] else math.nan,
            "saturation": counts["saturation"] / counts["saturation runs"] if counts["saturation runs"] else math.nan,
            "gain": counts["gain"] / counts["gain runs"] if counts["gain runs"] else math.nan,
            "median width": float(np.nanmedian(widths)), "true slope": truth.slope,
            "true saturation": truth.saturation_x}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 repetitions per case instead of 400")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--curve", action="append", help="only these curves (default: every one)")
    args = parser.parse_args(argv)
    reps = args.reps or (60 if args.quick else 400)
    print(f"{reps} repetitions per case; coverage of the 95% intervals (target >= 0.93; printed >= 0.80 at 30)")
    print("| curve | problems | samples | slope printed | printed slope covered | slope covered (all runs) "
          "| saturation point | gain after saturation | median slope width | true slope | true saturation |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.curve or curves():
        for problems, samples in CASES:
            start = time.process_time()
            c = coverage(name, problems, samples, reps)
            print(f"| {name} | {problems} | {samples} | {c['printed']:.3f} | {c['printed covered']:.3f} "
                  f"| {c['slope']:.3f} | {c['saturation']:.3f} | {c['gain']:.3f} | {c['median width']:.1f} "
                  f"| {c['true slope']:.2f} | {c['true saturation']:.2f} |", flush=True)
            print(f"  ({time.process_time() - start:.1f} s CPU)", file=sys.stderr)


if __name__ == "__main__":
    main()
