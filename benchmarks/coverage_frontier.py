"""Coverage of the frontier's and the crossover's intervals: does the reported 95% interval
contain the value the same selection finds on the true grid?

Seeded; `--quick` runs 60 repetitions per case (under a minute), the default 300. Run from the
repository root:

    python benchmarks/coverage_frontier.py [--quick] [--reps N]

The simulated run: P problems, each with a skill z ~ N(0, 1); at budget b a sample is right with
probability Phi(a_b + 1.2 z) (a_b chosen so the mean over problems is m_b), otherwise it gives one of
three wrong answers with probabilities 0.5 / 0.3 / 0.2 (so votes can amplify the right answer, or not).
Every problem has a pool of n samples at every budget; a sample at budget b costs t_b tokens. The grid,
the frontier and the crossover are computed by the harness itself (vote.compute). The truth is the same
selection applied to the true grid: maj@k of the true answer distribution, integrated over the skill
(Gauss-Hermite), at k times t_b tokens.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.analysis import crossover, frontier, majority
from harness.params import Params
from harness.stages import vote

SKILL_SPREAD = 1.2
WRONG = (0.5, 0.3, 0.2)  # how the wrong answers split
BUDGETS = [16, 32, 64, 128, 256]
# (name, tokens per sample at each budget, true single-sample accuracy at each budget[, how wrong answers split])
GRIDS = {
    # the near-equal-spend case: maj@4 at 64 costs 288 tokens, 2% more than one budget-256 answer (283); it beats
    # thinking longer there (budget 64's own 60%: longer budgets did worse) by ~8 points
    "near-equal": ([18, 36, 72, 140, 283], [0.25, 0.35, 0.60, 0.50, 0.51], (0.34, 0.33, 0.33)),
    # votes amplify a shared wrong answer: four in five wrong answers are the same one
    "shared-wrong": ([18, 36, 72, 140, 283], [0.25, 0.30, 0.35, 0.45, 0.60], (0.8, 0.1, 0.1)),
    # thinking longer pays at first, then flattens while its answers get expensive (forcing + Wait): a
    # vote over mid-length answers overtakes the single longest one
    "crossing": ([18, 34, 66, 126, 520], [0.20, 0.35, 0.50, 0.55, 0.58]),
    # the longest budget costs 4x and rambles (this model with forcing + Wait): votes win clearly
    "rambling": ([18, 34, 66, 126, 520], [0.30, 0.45, 0.55, 0.60, 0.52]),
    # thinking longer keeps paying (this repo's embedded model): no vote over shorter answers catches up
    "no-crossing": ([19, 35, 68, 126, 155], [0.12, 0.10, 0.10, 0.30, 0.50]),
}
CASES = [(12, 8), (30, 8)]  # (problems, pool per budget)
_PHI = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))


def _probit(m: float) -> float:
    """a with E[Phi(a + s z)] = m: a = Phi^-1(m) sqrt(1 + s^2)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _PHI(mid) < m else (lo, mid)
    return (lo + hi) / 2 * math.sqrt(1 + SKILL_SPREAD**2)


def _grid(name: str) -> tuple[list[int], list[float], tuple[float, ...]]:
    tokens, accuracy, *wrong = GRIDS[name]
    return tokens, accuracy, tuple(wrong[0]) if wrong else WRONG


def _vote_probability(q: np.ndarray, k: int) -> float:
    """Expected score of a majority vote of k samples with answer probabilities q (q[0]: the right one),
    summed over every composition of k (the seed's tie rule, majority.vote_score)."""
    total = 0.0
    for counts in itertools.product(range(k + 1), repeat=len(q) - 1):
        if sum(counts) > k:
            continue
        full = (k - sum(counts), *counts)
        prob = math.factorial(k) * np.prod([q[i] ** c / math.factorial(c) for i, c in enumerate(full)])
        answers = [str(i) for i, c in enumerate(full) for _ in range(c)]
        total += prob * majority.vote_score(answers, frozenset({"0"}))
    return float(total)


def true_grid(tokens: list[int], accuracy: list[float], pool: int, wrong: tuple[float, ...] = WRONG) -> pd.DataFrame:
    """maj@k at every (budget, k) of the infinite-problem run, with its tokens."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    rows = []
    for budget, t, m in zip(BUDGETS, tokens, accuracy):
        right = _PHI(_probit(m) + SKILL_SPREAD * nodes)
        for k in majority.vote_ks(pool):
            value = sum(w * _vote_probability(np.array([r, *((1 - r) * np.array(wrong))]), k)
                        for w, r in zip(weights, right))
            rows.append({"budget": budget, "k": k, "mean_tokens": float(k * t), "maj_at_k": float(value)})
    return pd.DataFrame(rows)


def truth(grid: pd.DataFrame) -> tuple[float, float, pd.Series]:
    """The crossover, the win over thinking longer there, and the frontier's height at every grid spend,
    on the true grid."""
    t, a = grid["mean_tokens"].to_numpy(), grid["maj_at_k"].to_numpy()
    single = (grid["k"] == 1).to_numpy()
    shorter = ((grid["k"] >= 2) & (grid["budget"] != BUDGETS[-1])).to_numpy()
    crossing = float(crossover.crossover_tokens(t, a, shorter, single)[0])
    gain = math.nan
    if math.isfinite(crossing):
        tied = np.flatnonzero((t == crossing) & shorter)  # the most accurate vote at that spend, as vote.py
        gain = float(a[tied].max() - crossover.thinking_longer_at(t, a, single, [crossing])[0, 0])
    spends = np.unique(t)
    return crossing, gain, pd.Series(frontier.height_at(t, a, spends)[0], index=spends)


def simulate(rng: np.random.Generator, tokens: list[int], accuracy: list[float], problems: int,
             pool: int, wrong_split: tuple[float, ...] = WRONG) -> pd.DataFrame:
    """One run's sample table."""
    rows = []
    skills = rng.normal(size=problems)
    for budget, t, m in zip(BUDGETS, tokens, accuracy):
        right = _PHI(_probit(m) + SKILL_SPREAD * skills)
        for p in range(problems):
            draws = rng.random(pool)
            wrong = rng.choice(3, size=pool, p=wrong_split)
            for s in range(pool):
                ok = bool(draws[s] < right[p])
                rows.append({"problem_id": f"p{p:03d}", "budget": budget, "sample": s, "seed": s,
                             "completion_tokens": t, "reasoning_tokens": 0, "prompt_tokens": 10,
                             "answer": "0" if ok else str(wrong[s] + 1), "gold": "0", "correct": ok,
                             "finish_reason": "stop", "status": "ok", "requests": 1, "latency_s": 0.0,
                             "error": None})
    return pd.DataFrame(rows)


def coverage(name: str, problems: int, pool: int, reps: int, seed: int = 13) -> dict[str, float]:
    tokens, accuracy, wrong = _grid(name)
    true_crossing, true_gain, true_height = truth(true_grid(tokens, accuracy, pool, wrong))
    # the fixed-vote grid only (no stopping rules among the strategies): the truth is that grid's selection
    params = Params.model_validate({"data": {"answer_type": "any"}, "sampling": {"samples": pool},
                                    "vote": {"adaptive": {"unanimity_window": [], "posterior_threshold": []}}})
    rng = np.random.default_rng([seed, problems, pool])
    crossing_covered = crossing_found = height_covered = heights = gain_covered = gains = 0
    widths = []
    for rep in range(reps):
        _, summary = vote.compute(simulate(rng, tokens, accuracy, problems, pool, wrong), params.model_copy(
            update={"sampling": params.sampling.model_copy(update={"seed": rep})}))
        c = summary["crossover"]
        crossing_found += c["tokens"] is not None
        lo = math.inf if c["tokens_lo"] is None else c["tokens_lo"]  # null lo: (almost) no replicate has one
        hi = math.inf if c["open_above"] else c["tokens_hi"]
        if math.isfinite(true_crossing):
            crossing_covered += lo <= true_crossing <= hi
            if math.isfinite(hi):
                widths.append(math.log2(hi) - math.log2(lo))
        else:
            crossing_covered += c["open_above"]  # "no crossover" is inside the interval
        # the reported win over thinking longer, where the run found the true crossover's point
        if math.isfinite(true_gain) and c["tokens"] == true_crossing and c["gain_lo"] is not None:
            gains += 1
            gain_covered += c["gain_lo"] <= true_gain <= c["gain_hi"]
        for point in summary["frontier"]["points"].values():
            heights += 1
            height_covered += point["lo"] <= true_height[point["tokens"]] <= point["hi"]
    return {"crossover": crossing_covered / reps, "crossover_found": crossing_found / reps,
            "frontier_height": height_covered / heights, "true_crossover": true_crossing,
            "median_log2_width": float(np.median(widths)) if widths else float("nan"),
            "closed": len(widths) / reps, "gain": gain_covered / gains if gains else float("nan"),
            "true_gain": true_gain}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 repetitions per case")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    reps = args.reps or (60 if args.quick else 300)
    print("| grid | problems | pool | crossover covered | crossover found | interval closed above | "
          "frontier height covered | true crossover (tokens) | median closed width (log2) | "
          "gain over thinking longer covered | true gain (points) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in GRIDS:
        for problems, pool in CASES:
            start = time.perf_counter()
            r = coverage(name, problems, pool, reps)
            print(f"| {name} | {problems} | {pool} | {r['crossover']:.3f} | {r['crossover_found']:.3f} | "
                  f"{r['closed']:.3f} | "
                  f"{r['frontier_height']:.3f} | {r['true_crossover']:.0f} | {r['median_log2_width']:.2f} | "
                  f"{r['gain']:.3f} | {100 * r['true_gain']:+.1f} |"
                  f"  <!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
