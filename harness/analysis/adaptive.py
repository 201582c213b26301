"""Votes that stop early: adaptive stopping rules evaluated offline on the pools the store already holds.

Why: after "does voting help?" comes "how many samples did it really need?". Published stopping rules
(Adaptive-Consistency, Aggarwal et al. 2023; early-stopping self-consistency, Li et al. 2024) draw samples
one at a time and stop once the answers seem settled. Every problem already has a pool of n samples at
each budget, so a rule can be replayed on that pool without a single new request: draw the pool in a
uniformly random order (without replacement), stop when the rule fires (or at the pool's end / the
rule's maximum), vote the drawn samples as majority.py does. Averaged over orderings this gives the
rule's *expected* accuracy, samples and tokens per problem -- what it would cost and buy on a model
whose answer distribution is the pool's.

Rules (each fires after the t-th sample, t >= 1):
- `unanimity`, window w: the last w samples gave the same vote class. A sample without an answer
  agrees with nothing (it breaks a run), so a pool of unanswered samples never stops early.
- `posterior`, threshold p: with v1, v2 the votes of the leading and the second answer class so far,
  the leader is the majority with posterior probability P(X > 1/2), X ~ Beta(v1 + a, v2 + a) (a: the
  prior's pseudo-count, 1 = uniform); fire once that is >= p. This is Adaptive-Consistency's Beta
  criterion. A tie (v1 = v2) gives 1/2 < p: never fires; unanswered samples cast no vote.
Both stop at min(max_samples, n) at the latest.

Exact or sampled (`Stopped.method`): when the pool has at most EXACT_ORDERINGS distinct orderings of its
vote classes (n! / prod(m_c!), each equally likely), every one is evaluated and the average is exact;
otherwise `orderings` seeded random permutations are, and `mc_se` is the Monte-Carlo standard error of
the accuracy (std / sqrt(orderings)). Tokens are Rao-Blackwellised: a drawn sample of class c costs the
mean tokens of class c (samples within a class are exchangeable under a random order, so the expectation
is unchanged and the tokens add no Monte-Carlo noise).

Votes group by equivalence class exactly as the fixed-k votes do (the caller passes grade.vote_key's
classes, None for no answer); a tie scores 1 / (number of tied classes), as majority.vote_score.

Pure: arrays in, numbers out (tests/test_adaptive.py checks every path against brute force over all
permutations).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from ..params import Params

from ..budget_axis import Budget, as_budget, ordered
from ..files import json_number
from . import majority, stats

# A pool with at most this many distinct orderings of its vote classes is evaluated on all of them.
EXACT_ORDERINGS = 5000
SAMPLED_ORDERINGS = 2000  # seeded random orderings otherwise (the default of `vote.adaptive.orderings`)


@dataclass(frozen=True)
class Rule:
    """One stopping rule and its knobs (params.yaml `vote.adaptive`)."""

    kind: Literal["unanimity", "posterior"]
    window: int = 0  # unanimity: the last `window` samples agree
    threshold: float = 0.0  # posterior: P(leader is the majority) >= threshold
    prior: float = 1.0  # posterior: Beta(prior, prior) pseudo-counts
    max_samples: int | None = None  # stop here at the latest (None: the pool size)

    def __post_init__(self) -> None:
        if self.kind == "unanimity" and self.window < 1:
            raise ValueError(f"unanimity window = {self.window}: must be a positive number of samples")
        if self.kind == "posterior" and not 0.5 < self.threshold < 1:
            raise ValueError(f"posterior threshold = {self.threshold}: must be above 0.5 (a tie already "
                             "gives 1/2) and below 1 (never reached)")
        if self.kind == "posterior" and self.prior <= 0:
            raise ValueError(f"posterior prior = {self.prior}: a Beta pseudo-count must be positive")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max_samples = {self.max_samples}: must be at least 1 (or null: the pool size)")

    @property
    def label(self) -> str:
        """How the rule is named in frontier.csv (`rule`), metrics.json and the figure."""
        return f"unanimity w={self.window}" if self.kind == "unanimity" else f"posterior p={self.threshold:g}"


@dataclass(frozen=True)
class Stopped:
    """One problem's pool under one rule: expectations over orderings of the pool."""

    accuracy: float
    samples: float
    tokens: float
    method: str  # "exact" (every distinct ordering) or "sampled" (seeded random orderings)
    orderings: int  # how many orderings the averages are over
    mc_se: float  # Monte-Carlo standard error of `accuracy` (0 when exact)


@dataclass(frozen=True)
class LabelledPool:
    """A pool as the rules see it: one label per sample (0..C-1 vote classes, C: no answer), whether each
    class is correct, and the mean tokens of each label (C + 1 entries)."""

    labels: np.ndarray
    correct: np.ndarray
    class_tokens: np.ndarray

    @property
    def classes(self) -> int:
        return len(self.correct)


def labelled(classes: Sequence[Hashable | None], correct: Sequence[bool], tokens: Sequence[float]) -> LabelledPool:
    """Label a pool: vote classes sorted by their string form (a fixed order, so seeded orderings do not
    depend on dict order). A class is correct if any of its samples was graded correct (majority.pool)."""
    if not len(classes) == len(correct) == len(tokens):
        raise ValueError(f"{len(classes)} vote classes, {len(correct)} correctness flags and {len(tokens)} token "
                         "counts: one of each per sample")
    if not classes:
        raise ValueError("an empty pool: a stopping rule needs at least one sample")
    names = sorted({c for c in classes if c is not None}, key=str)
    index = {c: i for i, c in enumerate(names)}
    none = len(names)
    labels = np.array([none if c is None else index[c] for c in classes], dtype=np.int64)
    right = np.zeros(len(names), dtype=bool)
    for c, ok in zip(classes, correct):
        if c is not None and ok:
            right[index[c]] = True
    spent = np.asarray(tokens, dtype=float)
    per_label = np.array([spent[labels == i].mean() if np.any(labels == i) else 0.0 for i in range(none + 1)])
    return LabelledPool(labels, right, per_label)


def distinct_orderings(counts: Sequence[int]) -> int:
    """n! / prod(m_c!): how many different label sequences a pool with these label counts has."""
    total = math.factorial(int(sum(counts)))
    for m in counts:
        total //= math.factorial(int(m))
    return total


def all_orderings(counts: Sequence[int]) -> np.ndarray:
    """Every distinct label sequence (rows), built one position at a time; each is equally likely under
    a uniformly random permutation of the samples (each has prod(m_c!) permutations behind it)."""
    left = np.asarray(counts, dtype=np.int64)[None, :]
    prefixes = np.zeros((1, 0), dtype=np.int64)
    for _ in range(int(np.sum(counts))):
        grown, remaining = [], []
        for label in range(left.shape[1]):
            rows = left[:, label] > 0
            if rows.any():
                grown.append(np.column_stack([prefixes[rows], np.full(int(rows.sum()), label)]))
                rest = left[rows].copy()
                rest[:, label] -= 1
                remaining.append(rest)
        prefixes, left = np.concatenate(grown), np.concatenate(remaining)
    return prefixes


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularised incomplete beta I_x(a, b): P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


@lru_cache(maxsize=64)
def leader_is_majority(n: int, prior: float) -> np.ndarray:
    """Table [v1, v2] (0..n each): P(X > 1/2), X ~ Beta(v1 + prior, v2 + prior), the posterior probability
    that the leading class (v1 votes) is more likely than the second (v2 votes)."""
    table = np.empty((n + 1, n + 1))
    for v1 in range(n + 1):
        for v2 in range(n + 1):
            table[v1, v2] = 1.0 - beta_cdf(0.5, v1 + prior, v2 + prior)
    table.setflags(write=False)
    return table


CHUNK_ELEMENTS = 1 << 22  # vote counts held at once (orderings x positions x labels): ~8 MB of int16
VOTE_DTYPE = np.int16  # counts up to 32767: pools are far smaller (stop_early checks), and half the memory traffic


def _walk(orderings: np.ndarray, pool: LabelledPool, rules: Sequence[Rule]) -> list[tuple[np.ndarray, ...]]:
    """Per rule, (score, samples, tokens) of every ordering (rows). Every rule watches the same orderings
    (common random numbers: rules differ by the rule only); the counts after every prefix are computed
    at once (a cumulative sum), in chunks of orderings so that memory stays bounded."""
    rows, n = orderings.shape
    chunk = max(1, CHUNK_ELEMENTS // (n * (pool.classes + 1)))
    parts = [_walk_chunk(orderings[i:i + chunk], pool, rules) for i in range(0, rows, chunk)]
    return [tuple(np.concatenate([p[r][j] for p in parts]) for j in range(3)) for r in range(len(rules))]


def _walk_chunk(orderings: np.ndarray, pool: LabelledPool, rules: Sequence[Rule]) -> list[tuple[np.ndarray, ...]]:
    rows, n = orderings.shape
    c = pool.classes
    # votes[label][:, t - 1]: votes for the label after t samples. Labels first: every reduction over
    # labels is then an elementwise operation on (orderings x positions) arrays, which numpy does fast.
    votes = [np.cumsum(orderings == label, axis=1, dtype=VOTE_DTYPE) for label in range(c)]
    spent = np.cumsum(pool.class_tokens[orderings], axis=1)
    top = np.zeros((rows, n), dtype=VOTE_DTYPE)
    second = np.zeros((rows, n), dtype=VOTE_DTYPE)
    for v in votes:  # the largest and second largest vote counts (equal when two classes tie)
        second = np.maximum(second, np.minimum(v, top))
        top = np.maximum(top, v)
    modes = np.zeros((rows, n), dtype=VOTE_DTYPE)
    hits = np.zeros((rows, n), dtype=VOTE_DTYPE)
    for v, right in zip(votes, pool.correct):
        is_mode = (v == top) & (top > 0)
        modes += is_mode
        if right:
            hits += is_mode
    score = hits / np.maximum(modes, 1)
    # run length of equal answers ending at each position; a sample without an answer agrees with nothing
    answered = orderings < c
    same = np.zeros((rows, n), dtype=bool)
    same[:, 1:] = (orderings[:, 1:] == orderings[:, :-1]) & answered[:, 1:]
    position = np.arange(n)
    start = np.maximum.accumulate(np.where(same, 0, position), axis=1)
    run = np.where(answered, position - start + 1, 0)
    out: list[tuple[np.ndarray, ...]] = []
    every = np.arange(rows)
    for rule in rules:
        cap = min(rule.max_samples or n, n)
        if rule.kind == "unanimity":
            fires = run[:, :cap] >= rule.window
        else:
            table = leader_is_majority(n, rule.prior)
            fires = table[top[:, :cap], second[:, :cap]] >= rule.threshold
        fires[:, cap - 1] = True  # the pool's end (or the rule's maximum) stops every rule
        at = np.argmax(fires, axis=1)  # the first position where the rule fires
        out.append((score[every, at], at + 1.0, spent[every, at]))
    return out


def stop_early(classes: Sequence[Hashable | None], correct: Sequence[bool], tokens: Sequence[float],
               rules: Sequence[Rule], seed: int | Sequence[int] = 0, orderings: int = SAMPLED_ORDERINGS,
               exact_limit: int = EXACT_ORDERINGS) -> list[Stopped]:
    """Each rule's expected accuracy, samples and tokens on one problem's pool (one entry per sample:
    its vote class, None for no answer; whether it was graded correct; its tokens), over uniformly random
    orderings of the pool: all distinct ones when there are at most `exact_limit`, else `orderings`
    seeded random permutations (`seed`: the same seed, the same numbers)."""
    if len(classes) > np.iinfo(VOTE_DTYPE).max:
        raise ValueError(f"a pool of {len(classes)} samples: stopping rules count votes up to "
                         f"{np.iinfo(VOTE_DTYPE).max}; split the pool")
    pool = labelled(classes, correct, tokens)
    counts = [int(m) for m in np.bincount(pool.labels, minlength=pool.classes + 1)]
    if distinct_orderings(counts) <= exact_limit:
        drawn, method = all_orderings(counts), "exact"
    else:
        rng = np.random.default_rng(seed)
        drawn, method = rng.permuted(np.broadcast_to(pool.labels, (orderings, len(pool.labels))), axis=1), "sampled"
    results = []
    for score, samples, spent in _walk(drawn, pool, rules):
        rows = len(score)
        se = float(np.std(score, ddof=1) / math.sqrt(rows)) if method == "sampled" and rows > 1 else 0.0
        results.append(Stopped(float(score.mean()), float(samples.mean()), float(spent.mean()), method, rows, se))
    return results


@dataclass(frozen=True)
class RuleSummary:
    """One rule at one budget over every problem: what metrics.json `adaptive` and frontier.csv report."""

    rule: Rule
    accuracy: float
    lo: float  # 95% score interval over problems (NaN with one problem)
    hi: float
    samples: float  # expected samples per problem
    tokens: float  # expected tokens per problem
    tokens_lo: float
    tokens_hi: float
    method: str  # exact when every problem was, else sampled
    mc_se: float  # Monte-Carlo standard error of `accuracy` (independent orderings per problem)
    problems: int


def summarise(rule: Rule, per_problem: Sequence[Stopped], seed: int) -> RuleSummary:
    """Mean over problems: the accuracy with the score interval every point has (stats.accuracy_intervals),
    the tokens with the seeded bootstrap over problems (tokens are not a probability), and the Monte-Carlo
    error of the mean: sqrt(sum of se^2) / problems."""
    if not per_problem:
        raise ValueError(f"{rule.label}: no problem has a pool to stop in")
    values = np.array([[p.accuracy, p.tokens] for p in per_problem])
    boot = stats.bootstrap_means(values, stats.bootstrap_indices(len(per_problem), seed))
    estimate = values.mean(axis=0)
    lo, hi = stats.accuracy_intervals(values[:, :1])
    t_lo, t_hi = _token_interval(estimate[1], boot[:, 1], len(per_problem))
    method = "exact" if all(p.method == "exact" for p in per_problem) else "sampled"
    mc_se = math.sqrt(sum(p.mc_se**2 for p in per_problem)) / len(per_problem)
    return RuleSummary(rule, float(estimate[0]), float(lo[0]), float(hi[0]),
                       float(np.mean([p.samples for p in per_problem])), float(estimate[1]), t_lo, t_hi, method,
                       mc_se, len(per_problem))


def _token_interval(estimate: float, replicates: np.ndarray, problems: int) -> tuple[float, float]:
    """Tokens are not a probability: stats.widened's interval without the [0, 1] clip."""
    if problems < 2:
        return math.nan, math.nan
    lo, hi = stats.widened(estimate, replicates, problems)
    return float(lo), float(hi)


def as_dict(summary: RuleSummary, pool_accuracy: float, pool_tokens: float, pool_size: float) -> dict[str, Any]:
    """The JSON of one rule at one budget, beside the vote over the whole pool (what the rule saves)."""
    num = json_number
    return {"accuracy": num(summary.accuracy), "lo": num(summary.lo), "hi": num(summary.hi),
            "mean_samples": num(summary.samples, 4), "mean_tokens": num(summary.tokens, 3),
            "tokens_lo": num(summary.tokens_lo, 3), "tokens_hi": num(summary.tokens_hi, 3),
            "estimator": summary.method, "mc_se": num(summary.mc_se, 6), "problems": summary.problems,
            "whole_pool": {"maj_at_k": num(pool_accuracy), "mean_samples": num(pool_size, 4),
                           "mean_tokens": num(pool_tokens, 3)},
            "tokens_saved": num(1.0 - summary.tokens / pool_tokens, 4) if pool_tokens > 0 else None}


# --- a run's pools: every rule at every budget -----------------------------------------------------------

DEFINITION = (
    "samples drawn one at a time in uniformly random order without replacement from each problem's pool at "
    "that budget; the rule stops the draw (at the pool size or max_samples at the latest) and the drawn "
    "samples vote (equivalence classes, ties split); accuracy, samples and tokens are expectations over "
    "orderings (estimator exact: every distinct ordering; sampled: seeded random orderings, mc_se its "
    "Monte-Carlo standard error), the accuracy's interval the points' score interval over problems, the "
    "tokens' the bootstrap over problems")


@dataclass(frozen=True)
class RuleRun:
    """One rule replayed at one budget on every problem's pool there: per problem, and summarised."""

    rule: Rule
    budget: Budget
    problems: list[str]  # the problems of `per_problem`, in order
    per_problem: list[Stopped]
    summary: RuleSummary
    whole_pool: tuple[float, float, float]  # the vote over the whole pool: accuracy, tokens, samples (means)


def rules_of(params: Params) -> list[Rule]:
    """`vote.adaptive`'s rules, in params order: unanimity windows, then posterior thresholds."""
    a = params.vote.adaptive
    return ([Rule("unanimity", window=w, max_samples=a.max_samples) for w in a.unanimity_window]
            + [Rule("posterior", threshold=p, prior=a.posterior_prior, max_samples=a.max_samples)
               for p in a.posterior_threshold])


def replay_rules(graded: pd.DataFrame, params: Params, seed: int) -> list[RuleRun]:
    """Every rule at every budget whose pools hold two samples or more (with one sample there is nothing to
    stop early). `graded`: one row per answered-or-not sample (points.graded_samples). Each problem's
    orderings are seeded by (seed, budget position, problem position): the same inputs give the same
    numbers."""
    rules = rules_of(params)
    if not rules:
        return []
    runs = []
    problems = sorted(graded["problem_id"].unique())
    for b_index, budget in enumerate(ordered(graded["budget"].unique())):
        at = graded[graded["budget"] == budget].sort_values(["problem_id", "sample"], kind="stable")
        groups = list(at.groupby("problem_id", sort=True))
        if max(len(g) for _, g in groups) < 2:
            continue
        per_rule: list[list[Stopped]] = [[] for _ in rules]
        whole = []
        for pid, g in groups:
            answers, correct, tokens = g["answer"].tolist(), g["correct"].tolist(), g["tokens"].tolist()
            found = stop_early(answers, correct, tokens, rules, seed=[seed, b_index, problems.index(pid)],
                               orderings=params.vote.adaptive.orderings)
            for bucket, result in zip(per_rule, found):
                bucket.append(result)
            truth = majority.correct_answers(answers, correct)
            whole.append((majority.vote_score(answers, truth), float(np.sum(tokens)), len(answers)))
        pool_acc, pool_tokens, pool_size = (float(np.mean(col)) for col in zip(*whole))
        ids = [str(pid) for pid, _ in groups]
        for rule, results in zip(rules, per_rule):
            runs.append(RuleRun(rule, as_budget(budget), ids, results, summarise(rule, results, seed),
                                (pool_acc, pool_tokens, pool_size)))
    return runs


def adaptive_metrics(runs: list[RuleRun], params: Params) -> dict[str, Any]:
    """metrics.json `adaptive`: every rule's knobs and, by budget, its expected accuracy, samples and tokens
    beside the vote over the whole pool."""
    rules = rules_of(params)
    out: dict[str, Any] = {
        "definition": DEFINITION, "orderings": params.vote.adaptive.orderings,
        "exact_up_to_orderings": EXACT_ORDERINGS,
        "rules": {r.label: {"rule": r.kind, **({"window": r.window} if r.kind == "unanimity" else
                                              {"threshold": r.threshold, "prior": r.prior}),
                            "max_samples": r.max_samples, "by_budget": {}} for r in rules}}
    for run in runs:
        out["rules"][run.rule.label]["by_budget"][str(run.budget)] = as_dict(run.summary, *run.whole_pool)
    return {"adaptive": out}
