"""Every way the run's samples can spend tokens, as rows of one table (`outputs/strategies.csv`).

A strategy point is a rule for spending tokens on a problem and what it buys, averaged over problems:
- `fixed`: k samples at one budget, majority-voted (every (budget, k) point of curve.csv);
- a stopping rule (`unanimity w=2`, `posterior p=0.95`, ...: adaptive.py) at one budget: samples drawn one
  at a time until the answers seem settled, `mean_samples` the expected number drawn;
- `confidence-weighted`: k samples at the vote budget, each vote weighted by the model's confidence in its
  answer (confidence.py), where the store holds log-probabilities.

Each row comes with every problem's expected accuracy and tokens under it, so that the frontier (the rows
nothing beats) and the crossover can be selected again in every bootstrap replicate over problems
(frontier.py, crossover.py). Pure: tables and per-problem results in, a table and two matrices out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import stats
from .adaptive import RuleRun
from .confidence import WeightedVotes
from .points import Points

FIXED_RULE = "fixed"  # `rule` of a fixed number k of votes at one budget
CONFIDENCE_RULE = "confidence-weighted"
COLUMNS = ["budget", "k", "mean_tokens", "log2_tokens", "maj_at_k", "maj_lo", "maj_hi", "rule", "mean_samples",
           "estimator", "mc_se", "problems"]


@dataclass(frozen=True)
class Strategies:
    """The rows (COLUMNS, one per strategy point) and, for each, every problem's value: `accuracy` and
    `tokens` are (problems, rows), problems in points.Points order, NaN where a problem has no value."""

    rows: pd.DataFrame
    accuracy: np.ndarray
    tokens: np.ndarray


def _log2(tokens: float) -> float:
    return math.log2(tokens) if tokens and tokens > 0 else math.nan


def fixed_votes(table: pd.DataFrame, points: Points) -> Strategies:
    """curve.csv's points: k votes at one budget."""
    rows = table.assign(rule=FIXED_RULE, mean_samples=table["k"].astype(float), mc_se=np.nan)
    return Strategies(rows[COLUMNS].reset_index(drop=True), points.maj, points.tokens)


def stopping_rules(runs: list[RuleRun], problems: list[str]) -> Strategies:
    """Each stopping rule at each budget where it was replayed (pools of two samples or more)."""
    index = {pid: i for i, pid in enumerate(problems)}
    accuracy = np.full((len(problems), len(runs)), np.nan)
    tokens = np.full((len(problems), len(runs)), np.nan)
    rows = []
    for j, run in enumerate(runs):
        for pid, stopped in zip(run.problems, run.per_problem):
            accuracy[index[pid], j], tokens[index[pid], j] = stopped.accuracy, stopped.tokens
        s = run.summary
        rows.append({"budget": run.budget, "k": None, "mean_tokens": s.tokens, "log2_tokens": _log2(s.tokens),
                     "maj_at_k": s.accuracy, "maj_lo": s.lo, "maj_hi": s.hi, "rule": run.rule.label,
                     "mean_samples": s.samples, "estimator": s.method, "mc_se": s.mc_se, "problems": s.problems})
    return Strategies(pd.DataFrame(rows, columns=COLUMNS), accuracy, tokens)


def confidence_weighted(votes: WeightedVotes | str, table: pd.DataFrame, points: Points) -> Strategies:
    """k confidence-weighted votes at the vote budget: the same samples (and tokens) as the fixed maj@k there,
    voted by weight. None where the store holds no log-probabilities (`votes` is then the reason)."""
    empty = np.empty((len(points.problems), 0))
    if isinstance(votes, str):
        return Strategies(pd.DataFrame(columns=COLUMNS), empty, empty)
    index = [points.problems.index(pid) for pid in votes.problems]
    accuracy = np.full((len(points.problems), len(votes.ks)), np.nan)
    accuracy[index, :] = votes.weighted
    lo, hi = stats.accuracy_intervals(accuracy)
    tokens, rows = [], []
    for j, k in enumerate(votes.ks):
        at = table.index[(table["budget"] == votes.budget) & (table["k"] == k)]
        fixed = table.loc[at[0]]
        tokens.append(points.tokens[:, table.index.get_loc(at[0])])
        rows.append({"budget": votes.budget, "k": k, "mean_tokens": fixed["mean_tokens"],
                     "log2_tokens": fixed["log2_tokens"], "maj_at_k": float(np.nanmean(accuracy[:, j])),
                     "maj_lo": lo[j], "maj_hi": hi[j], "rule": CONFIDENCE_RULE, "mean_samples": float(k),
                     "estimator": votes.method, "mc_se": np.nan,
                     "problems": int(np.sum(~np.isnan(accuracy[:, j])))})
    return Strategies(pd.DataFrame(rows, columns=COLUMNS), accuracy, np.column_stack(tokens))


def every_strategy(table: pd.DataFrame, points: Points, runs: list[RuleRun], votes: WeightedVotes | str
                   ) -> Strategies:
    """All of them, in this order: fixed votes (curve.csv's order), stopping rules, confidence-weighted."""
    parts = [fixed_votes(table, points), stopping_rules(runs, points.problems),
             confidence_weighted(votes, table, points)]
    rows = pd.concat([p.rows for p in parts if len(p.rows)], ignore_index=True)
    rows["k"] = rows["k"].astype("Int64")
    return Strategies(rows, np.column_stack([p.accuracy for p in parts]),
                      np.column_stack([p.tokens for p in parts]))
