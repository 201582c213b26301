"""Vote stage: `outputs/samples.csv` in; `outputs/curve.csv`, `outputs/strategies.csv`, `outputs/frontier.csv`
and `outputs/metrics.json` out. It reads, calls each analysis and writes; the analyses are pure, one module
each:

- points.py: every (budget, k) point of the curve, with its interval, and the curve's summary;
- law.py: how fast accuracy rises per doubling of tokens along the seed's path, where it saturates;
- adaptive.py: votes that stop early, replayed on every pool; confidence.py: votes weighted by confidence;
- strategies.py: every way to spend tokens as rows; frontier.py: the points of those nothing beats;
- crossover.py: where voting over shorter answers starts to beat thinking longer at equal spend;
- seed_scheme.py: what the seed's own scheme would have paid, and the figure's bill in dollars;
- thinking_measures.py: how much the model thought per budget.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..analysis import (
    adaptive,
    confidence,
    crossover,
    frontier,
    grade,
    law,
    points,
    seed_scheme,
    stats,
    strategies,
)
from ..analysis.thinking_measures import thinking_metrics
from ..budget_axis import Budget
from ..data import integer_answers
from ..files import CURVE, FRONTIER, METRICS, SAMPLES, STRATEGIES, write_csv, write_json
from ..params import Params

VoteError = points.VoteError  # the stage's one error: the sample table cannot support the curve


def read_samples() -> pd.DataFrame:
    if not SAMPLES.exists():
        raise VoteError(f"{SAMPLES}: not found; run `harness sample` (or `dvc repro`) first")
    return pd.read_csv(SAMPLES, dtype={"problem_id": str, "answer": str, "gold": str}, keep_default_na=False,
                       na_values=[""])


def fit_law(table: pd.DataFrame, values: points.Points, vote_budget: Budget) -> law.Law:
    """The law along the seed's path (one answer at every budget, then the votes at the vote budget), from
    every problem's value at each of its points."""
    rows = points.seed_path(table, vote_budget)
    return law.fit_law(table.loc[rows, "log2_tokens"].to_numpy(), values.maj[:, table.index.get_indexer(rows)])


def compute(samples: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The whole stage without files: the curve table and metrics.json (what the benchmark times and the tests
    call; `analyse` also gives every strategy point)."""
    table, summary, _ = analyse(samples, params)
    return table, summary


def analyse(samples: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """Every analysis of the sample table: the curve, metrics.json, and every strategy point as written."""
    seed = params.sampling.seed
    integer = integer_answers(params)
    values = points.point_values(samples, params.vote.min_samples, seed, lambda a: grade.vote_key(a, integer))
    table = points.curve_from(values)
    vote_budget = points.vote_budget_of(table, params.vote_budget)
    answered = points.valid_samples(samples)
    rule_runs = adaptive.replay_rules(values.graded, params, seed)
    votes = confidence.weighted_votes(answered, values.graded, params, vote_budget, seed)
    every = strategies.every_strategy(table, values, rule_runs, votes)
    written = points.as_written(every.rows)
    accuracy_boot = points.bootstrap_replicates(every.accuracy, seed)
    tokens_boot = points.bootstrap_replicates(every.tokens, seed)
    summary = {
        **points.curve_metrics(table, samples, vote_budget),
        "law": law.law_metrics(fit_law(table, values, vote_budget)),
        "cost": seed_scheme.cost(table, samples, values.graded, vote_budget, seed, params.prices),
        "intervals": INTERVALS,
        "bootstrap": {"replicates": stats.BOOTSTRAP_SAMPLES, "confidence": stats.CONFIDENCE, "seed": seed,
                      "over": "problems"},
        **frontier.frontier_metrics(written, accuracy_boot),
        "crossover": crossover.crossover_metrics(written, tokens_boot, accuracy_boot, len(values.problems)),
        **adaptive.adaptive_metrics(rule_runs, params),
        **confidence.confidence_metrics(votes),
        **thinking_metrics(answered, values.graded, params.budgets.method),
    }
    return table, summary, written


INTERVALS = {
    "accuracy": "Wilson score interval with continuity correction over problems (curve points, maj@k, pass@k, "
                "the stopping rules, the figure)",
    "law": "leave-one-problem-out jackknife, Student t with P - 1 degrees of freedom",
    "frontier and crossover": "bootstrap over problems, the selection re-made in every replicate",
    "differences": "Newcombe's paired score interval (the confidence-weighted vote's change; harness compare)",
}


def run(params: Params) -> None:
    table, summary, written = analyse(read_samples(), params)
    front = frontier.frontier_table(written)
    write_csv(CURVE, table)
    write_csv(STRATEGIES, written.assign(on_frontier=written.index.isin(frontier.frontier_order(written))))
    write_csv(FRONTIER, front)
    write_json(METRICS, summary)
    beyond = sorted(set(front["rule"]) - {strategies.FIXED_RULE})
    print(f"vote: {len(table)} points -> {CURVE}; {len(written)} strategy points -> {STRATEGIES}; {len(front)} on "
          f"the frontier ({FRONTIER}{': ' + ', '.join(beyond) if beyond else ''}); {METRICS}")
    skipped = summary["confidence_vote"].get("skipped")
    if skipped and params.sampling.logprobs:
        print(f"vote: confidence-weighted vote skipped: {skipped}")
