"""Coverage of the stopping rules' intervals: does the reported 95% interval of a rule's
accuracy and of its tokens per problem contain the rule's true expected accuracy and tokens?

Seeded; `--quick` runs 60 repetitions per case (~1 min), the default 200 (~4 min on one core). Run from
the repository root:

    python benchmarks/coverage_adaptive.py [--quick] [--reps N]

The simulated run: P problems, each with a skill z ~ N(0, 1); at one budget a sample is right with
probability Phi(a + 1.2 z) (a chosen so the mean over problems is m), otherwise it gives one of three
wrong answers with probabilities 0.5 / 0.3 / 0.2. Every problem has a pool of n samples. Tokens matter
and differ by correctness: a right sample costs 300 tokens on average, a wrong one 600 (wrong answers
ramble), each times a per-sample lognormal noise (sigma 0.4, mean 1) and a per-problem length factor
exp(-0.3 z + 0.2 u), u ~ N(0, 1), normalised to mean 1 (harder problems are longer). The estimates are
the harness's own: `vote.compute` on the sample table with `vote.adaptive` set to the rules unanimity
w=2, w=3, posterior p=0.9, 0.95 (prior 1, no max), read from metrics.json's
`adaptive.rules.<label>.by_budget.<b>` (`accuracy`, `lo`, `hi`, `mean_tokens`, `tokens_lo`, `tokens_hi`).
For reference each case adds a row `no stopping: maj@n`: curve.csv's point at k = n from the same runs
(`maj_lo`/`maj_hi`; its tokens carry no interval), against the true maj@n.

The truth is the rule on the model itself, not on a finite pool: samples drawn i.i.d. from a problem's
answer distribution, one at a time, the rule stopping them or the n-th sample (the pool size, where the
harness stops too), the drawn samples voting with ties split; its expected score and tokens (expected
right and wrong samples drawn times their mean tokens, times the problem's expected length factor),
computed exactly by dynamic programming over (counts per answer, last answer, run length), integrated
over the skill by Gauss-Hermite quadrature (60 nodes). The posterior rule's P(X > 1/2), X ~ Beta(v1 + 1,
v2 + 1), is computed here independently of the harness: P(Binomial(v1 + v2 + 1, 1/2) <= v1). A uniformly
random ordering of an i.i.d. pool is itself an i.i.d. sequence, so the harness's average over orderings
is unbiased for this truth; the simulation checks that the bootstrap interval over problems around it
covers at the nominal 95%.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.params import Params
from harness.stages import vote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coverage_frontier import SKILL_SPREAD, _probit  # the same probit skill model

WRONG = (0.5, 0.3, 0.2)  # how the wrong answers split
BUDGET = 256  # the one budget simulated (its value only names the metrics.json entry)
RIGHT_TOKENS, WRONG_TOKENS = 300.0, 600.0  # mean tokens of a right and of a wrong sample
SAMPLE_SIGMA = 0.4  # lognormal noise of one sample's tokens
LENGTH_SKILL, LENGTH_SIGMA = 0.3, 0.2  # a problem's length factor: exp(-0.3 z + 0.2 u), normalised
WINDOWS = (2, 3)
THRESHOLDS = (0.9, 0.95)
CASES = [(12, 8), (12, 16), (30, 8), (30, 16)]  # (problems, pool)
ACCURACIES = (0.3, 0.6)
_PHI = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))


WHOLE_POOL = "no stopping: maj@n"  # reference row: curve.csv's vote over the whole pool (k = n), same runs


def labels() -> list[str]:
    """The rules' names as metrics.json spells them (adaptive.Rule.label)."""
    return [f"unanimity w={w}" for w in WINDOWS] + [f"posterior p={p:g}" for p in THRESHOLDS]


def length_factor(z: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A problem's length factor, mean 1 over problems; its mean given the skill is exp(-0.3 z - 0.045)."""
    return np.exp(-LENGTH_SKILL * z - LENGTH_SKILL**2 / 2 + LENGTH_SIGMA * u - LENGTH_SIGMA**2 / 2)


def leader_is_majority(v1: int, v2: int) -> float:
    """P(X > 1/2), X ~ Beta(v1 + 1, v2 + 1) (uniform prior): P(Binomial(v1 + v2 + 1, 1/2) <= v1)."""
    trials = v1 + v2 + 1
    return sum(math.comb(trials, j) for j in range(v1 + 1)) / 2**trials


def _score(counts: tuple[int, ...]) -> float:
    """The vote of the drawn samples (class 0 right), a tie scoring 1 / number of tied classes."""
    top = max(counts)
    if counts[0] != top:
        return 0.0
    return 1.0 / sum(c == top for c in counts)


def _fires(rule: tuple[str, float], counts: tuple[int, ...], run: int) -> bool:
    kind, knob = rule
    if kind == "unanimity":
        return run >= knob
    first, second = sorted(counts, reverse=True)[:2]
    return leader_is_majority(first, second) >= knob


def rule_on_model(rule: tuple[str, float], q: np.ndarray, cap: int) -> tuple[np.ndarray, ...]:
    """Expected score, right samples and wrong samples drawn, per row of q (answer probabilities, column 0
    the right answer), drawing i.i.d. until the rule fires or `cap` samples: exact, by dynamic programming
    over (counts per answer, last answer, run length of the last answer)."""
    classes = q.shape[1]
    score, right, wrong = (np.zeros(q.shape[0]) for _ in range(3))
    states: dict[tuple[tuple[int, ...], int, int], np.ndarray] = {((0,) * classes, -1, 0): np.ones(q.shape[0])}
    unanimity = rule[0] == "unanimity"
    for t in range(1, cap + 1):
        grown: dict[tuple[tuple[int, ...], int, int], np.ndarray] = {}
        for (counts, last, run), prob in states.items():
            for c in range(classes):
                drawn = counts[:c] + (counts[c] + 1,) + counts[c + 1:]
                # the posterior rule needs only the counts: merging states keeps the table small
                key = (drawn, c, min(run + 1 if c == last else 1, int(rule[1]))) if unanimity else (drawn, 0, 0)
                grown[key] = grown[key] + prob * q[:, c] if key in grown else prob * q[:, c]
        states = {}
        for (counts, last, run), prob in grown.items():
            if t == cap or _fires(rule, counts, run):
                score += prob * _score(counts)
                right += prob * counts[0]
                wrong += prob * (t - counts[0])
            else:
                states[counts, last, run] = prob
    return score, right, wrong


def truth(m: float, pool: int) -> dict[str, tuple[float, float]]:
    """Per rule: its expected accuracy and tokens per problem on the model, capped at the pool size,
    integrated over the skill; WHOLE_POOL: maj@n, the vote over n samples (a window longer than the pool
    never fires)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    r = _PHI(_probit(m) + SKILL_SPREAD * nodes)
    q = np.column_stack([r, *((1 - r) * w for w in WRONG)])
    length = np.exp(-LENGTH_SKILL * nodes - LENGTH_SKILL**2 / 2)  # the length factor's mean given the skill
    out = {}
    rules = [("unanimity", float(w)) for w in WINDOWS] + [("posterior", p) for p in THRESHOLDS]
    for label, rule in zip([*labels(), WHOLE_POOL], [*rules, ("unanimity", float(pool + 1))]):
        score, right, wrong = rule_on_model(rule, q, pool)
        out[label] = (float(weights @ score), float(weights @ (length * (right * RIGHT_TOKENS + wrong * WRONG_TOKENS))))
    return out


def simulate(rng: np.random.Generator, m: float, problems: int, pool: int) -> pd.DataFrame:
    """One run's sample table at one budget."""
    skills = rng.normal(size=problems)
    right = _PHI(_probit(m) + SKILL_SPREAD * skills)
    length = length_factor(skills, rng.normal(size=problems))
    rows = []
    for p in range(problems):
        ok = rng.random(pool) < right[p]
        wrong = rng.choice(3, size=pool, p=WRONG)
        noise = np.exp(SAMPLE_SIGMA * rng.normal(size=pool) - SAMPLE_SIGMA**2 / 2)
        tokens = np.rint(length[p] * noise * np.where(ok, RIGHT_TOKENS, WRONG_TOKENS)).astype(int)
        for s in range(pool):
            rows.append({"problem_id": f"p{p:03d}", "budget": BUDGET, "sample": s, "seed": s,
                         "completion_tokens": int(tokens[s]), "reasoning_tokens": 0, "prompt_tokens": 10,
                         "answer": "0" if ok[s] else str(wrong[s] + 1), "gold": "0", "correct": bool(ok[s]),
                         "finish_reason": "stop", "status": "ok", "requests": 1, "latency_s": 0.0,
                         "error": None})
    return pd.DataFrame(rows)


def coverage(problems: int, pool: int, m: float, reps: int, seed: int = 24) -> dict[str, dict[str, float]]:
    """Per rule: how often the accuracy and the tokens interval contain the truth, median widths, the
    truth, the mean estimate (its bias), and how often the interval lies wholly below the truth. And the
    same for curve.csv's maj@n point of the same runs (its tokens have no interval: NaN)."""
    true = truth(m, pool)
    params = Params.model_validate({"data": {"answer_type": "any"}, "sampling": {"samples": pool},
                                    "vote": {"adaptive": {"unanimity_window": list(WINDOWS),
                                                          "posterior_threshold": list(THRESHOLDS)}}})
    rng = np.random.default_rng([seed, problems, pool, round(100 * m)])
    seen: dict[str, list[tuple[float, ...]]] = {label: [] for label in [*labels(), WHOLE_POOL]}
    for rep in range(reps):
        table, summary = vote.compute(simulate(rng, m, problems, pool), params.model_copy(
            update={"sampling": params.sampling.model_copy(update={"seed": rep})}))
        for label in labels():
            r = summary["adaptive"]["rules"][label]["by_budget"][str(BUDGET)]
            seen[label].append((r["accuracy"], r["lo"], r["hi"], r["mean_tokens"], r["tokens_lo"], r["tokens_hi"]))
        whole = table[(table["budget"] == BUDGET) & (table["k"] == pool)].iloc[0]
        seen[WHOLE_POOL].append((whole["maj_at_k"], whole["maj_lo"], whole["maj_hi"], whole["mean_tokens"],
                                 math.nan, math.nan))
    out = {}
    for label, rows in seen.items():
        acc, lo, hi, tok, t_lo, t_hi = np.array(rows, dtype=float).T
        true_acc, true_tok = true[label]
        tokens_known = not np.isnan(t_lo).all()
        out[label] = {"accuracy": float(np.mean((lo <= true_acc) & (true_acc <= hi))),
                      "tokens": float(np.mean((t_lo <= true_tok) & (true_tok <= t_hi))) if tokens_known else math.nan,
                      "accuracy_width": float(np.median(hi - lo)), "tokens_width": float(np.median(t_hi - t_lo)),
                      "true_accuracy": true_acc, "true_tokens": true_tok,
                      "accuracy_bias": float(acc.mean() - true_acc), "tokens_bias": float(tok.mean() - true_tok),
                      "accuracy_low": float(np.mean(hi < true_acc)),
                      "tokens_low": float(np.mean(t_hi < true_tok)) if tokens_known else math.nan}
    return out


def _cell(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 repetitions per case instead of 200")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    reps = args.reps or (60 if args.quick else 200)
    print(f"{reps} repetitions per case; coverage of the 95% intervals (target >= 0.93)")
    print("| problems | pool | mean accuracy m | rule | accuracy covered | tokens covered | median accuracy width "
          "(points) | median tokens width | true accuracy | true tokens | mean estimate - truth (points; tokens) "
          "| interval below the truth (accuracy; tokens) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for problems, pool in CASES:
        for m in ACCURACIES:
            start = time.perf_counter()
            for label, r in coverage(problems, pool, m, reps).items():
                print(f"| {problems} | {pool} | {m:.1f} | {label} | {r['accuracy']:.3f} | {_cell(r['tokens'], '.3f')} | "
                      f"{100 * r['accuracy_width']:.1f} | {_cell(r['tokens_width'], '.0f')} | "
                      f"{r['true_accuracy']:.3f} | {r['true_tokens']:.0f} | {100 * r['accuracy_bias']:+.1f}; "
                      f"{r['tokens_bias']:+.0f} | {r['accuracy_low']:.3f}; {_cell(r['tokens_low'], '.3f')} |",
                      flush=True)
            print(f"  ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
