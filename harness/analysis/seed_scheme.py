"""What the seed's own scheme would have paid for the same figure, and what the same tokens buy here.

The seed's cache is keyed by sample index, so its k = 1 point at a budget reads sample 0 and its vote over k
reads samples 0..k-1 of the same pool (nested): it pays, per budget, the first (largest k shown) samples.
This harness scores every k-subset of one pool (majority.py), so every k reuses the same samples. The
useful comparison is at equal tokens: on the same pool, the spread over problems of our all-subsets
estimator against the seed's first-k one (the same seeded bootstrap for both). And the figure's bill in
dollars at `prices` (bill.py).

Pure: tables in, a dict out (metrics.json `cost`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..budget_axis import Budget, as_budget
from ..files import json_number
from ..params import PriceParams
from . import majority, stats
from .bill import cost_section
from .points import budgets_of, seed_path

SEED_SCHEME = ("nested: the seed's cache is keyed by sample index, so its k = 1 point at a budget reads "
               "sample 0 and its vote over k reads samples 0..k-1 of the same pool")


def seed_scheme_tokens(table: pd.DataFrame, samples: pd.DataFrame, vote_budget: Budget) -> float:
    """Tokens the seed would have paid for the same figure: at every budget, the first (largest k shown
    there) samples by index, each read once and reused by every smaller k."""
    shown = table.loc[seed_path(table, vote_budget)]
    needed = {as_budget(b): int(k) for b, k in shown.groupby("budget")["k"].max().items()}
    budgets = budgets_of(samples["budget"])
    first = pd.to_numeric(samples["sample"], errors="coerce") < budgets.map(needed).fillna(0)
    return float(pd.to_numeric(samples["completion_tokens"], errors="coerce").fillna(0)[first].sum())


def first_k_values(graded: pd.DataFrame, vote_budget: Budget, ks: list[int]) -> np.ndarray:
    """The seed's estimator at the vote budget, per problem (rows, sorted ids) and k (columns): the vote
    of samples 0..k-1 only (NaN where the pool has fewer than k)."""
    at = graded[graded["budget"] == vote_budget].sort_values(["problem_id", "sample"], kind="stable")
    rows = []
    for _, g in at.groupby("problem_id", sort=True):
        answers = g["answer"].tolist()
        truth = majority.correct_answers(answers, g["correct"].tolist())
        rows.append([majority.vote_score(answers[:k], truth) if len(answers) >= k else np.nan for k in ks])
    return np.array(rows, dtype=float)


def all_subsets_values(graded: pd.DataFrame, vote_budget: Budget, ks: list[int], seed: int) -> np.ndarray:
    """Our estimator at the vote budget, per problem (rows, sorted ids) and k: maj@k over every k-subset of
    the pool (NaN where the pool has fewer than k), as the curve's points are scored."""
    at = graded[graded["budget"] == vote_budget].sort_values(["problem_id", "sample"], kind="stable")
    rows = []
    for _, g in at.groupby("problem_id", sort=True):
        p = majority.pool(g["answer"].tolist(), g["correct"].tolist())
        rows.append([majority.maj_at_k_pool(p, k, seed).value if p.size >= k else np.nan for k in ks])
    return np.array(rows, dtype=float)


def _bootstrap_halfwidths(values: np.ndarray, seed: int) -> np.ndarray:
    boot = stats.bootstrap_means(values, stats.bootstrap_indices(values.shape[0], seed))
    lo, hi = stats.intervals(np.nanmean(values, axis=0), boot, np.sum(~np.isnan(values), axis=0))
    return (hi - lo) / 2


def halfwidth_ratio_vs_first_k(table: pd.DataFrame, graded: pd.DataFrame, vote_budget: Budget,
                               seed: int) -> dict[str, float | None]:
    """At equal tokens (the same pool), the spread of our all-subsets estimator over that of the seed's
    first-k one, per vote k, as the half-widths of the same seeded bootstrap interval over problems: below 1
    means the same samples estimate maj@k more precisely. (The printed score intervals depend only on the
    accuracy and the problem count, so they cannot show this; the bootstrap measures the spread itself.)"""
    ks = [int(k) for k in table.loc[table["budget"] == vote_budget, "k"].sort_values()]
    ours = _bootstrap_halfwidths(all_subsets_values(graded, vote_budget, ks, seed), seed)
    theirs = _bootstrap_halfwidths(first_k_values(graded, vote_budget, ks), seed)
    return {str(k): json_number(o / t, 4) if t > 0 else None for k, o, t in zip(ks, ours, theirs)}


def cost(table: pd.DataFrame, samples: pd.DataFrame, graded: pd.DataFrame, vote_budget: Budget,
         seed: int, prices: PriceParams | None = None) -> dict[str, Any]:
    """Tokens paid for the figure (every sample in the table, each reused for every k) against the seed's
    real scheme (nested samples, SEED_SCHEME), and what the same tokens buy: the interval half-width of
    our all-subsets estimator over the seed's first-k one, per vote k. And the figure's bill in dollars at
    `prices` (bill.cost_section: input, cached input, output; live and batch)."""
    seed_tokens = seed_scheme_tokens(table, samples, vote_budget)
    paid = float(pd.to_numeric(samples["completion_tokens"], errors="coerce").fillna(0).sum())
    return {**cost_section(samples, prices or PriceParams()),
            "tokens_paid": round(paid, 1), "seed_scheme": SEED_SCHEME, "tokens_seed_scheme": round(seed_tokens, 1),
            "paid_over_seed_scheme": round(paid / seed_tokens, 4) if seed_tokens > 0 else None,
            "halfwidth_all_subsets_over_seed_first_k_by_k": halfwidth_ratio_vs_first_k(table, graded, vote_budget,
                                                                                      seed)}
