"""A point of the curve: for one budget and k, every problem's expected majority vote of k samples drawn
from its pool there, averaged over problems, with its 95% interval; and the curve's summary for
metrics.json.

Where a point on the plot comes from: for every problem, the expected majority-vote accuracy of k
samples drawn from that problem's pool at that budget (majority.maj_at_k_pool: exact over all C(n, k)
subsets by counting where feasible, else seeded random subsets; the `estimator` column says which),
averaged over problems; `pass_at_k` is the unbiased pass@k from the same pools. `maj_lo`/`maj_hi` (and
`pass_lo`/`pass_hi`) are the 95% score intervals over problems (stats.accuracy_intervals). The x-coordinate
is log2 of `mean_tokens`, the expected tokens k samples spend on a problem there.

Answers vote by equivalence class (grade.vote_key: `\\frac{1}{2}`, `1/2` and `0.5` are one vote; on
integer tasks the exact spelling). Failed samples (any status starting with "failed": no response after
retries) are left out, never scored as wrong; each point reports how many problems and samples it rests
on and how many of the run's problems it misses (`missing_problems`), and the vote stage refuses to write
a point that rests on fewer samples than `vote.min_samples`, or an answered sample without its token count.

Pure: tables in, tables and dicts out (the vote stage reads and writes the files).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..budget_axis import Budget, as_budget, largest, ordered
from ..files import SAMPLES, json_number
from . import majority, stats

CURVE_COLUMNS = ["budget", "k", "maj_at_k", "maj_lo", "maj_hi", "pass_at_k", "pass_lo", "pass_hi",
                 "mean_tokens", "log2_tokens", "problems", "missing_problems", "samples", "estimator",
                 "no_answer_rate"]

CSV_DIGITS = "%.6g"  # files.write_csv's float format: the frontier is selected from the curve as written



class VoteError(RuntimeError):
    """The sample table cannot support the curve; the message says which point and why."""



def valid_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples that can vote: failed ones were never answered, so they are neither right nor wrong."""
    return samples[~samples["status"].astype(str).str.startswith("failed")]



@dataclass
class Points:
    """Every (budget, k) point: its description, and per-problem values (NaN: no pool of k there)."""

    rows: list[dict[str, Any]]
    maj: np.ndarray  # (problems, points)
    passed: np.ndarray  # (problems, points)
    tokens: np.ndarray  # (problems, points): k times the problem's mean tokens per sample there
    problems: list[str]
    graded: pd.DataFrame  # the samples the points were scored from (vote classes, sample index, tokens)



def _once_per_value(column: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """fn of every cell, computed once per distinct value (a sample table repeats a few values 100,000s
    of times: the vote stage must stay within its time budget, benchmarks/README.md)."""
    return column.map({v: fn(v) for v in column.unique()})



def budgets_of(column: pd.Series) -> pd.Series:
    return _once_per_value(column, as_budget)



def graded_samples(valid: pd.DataFrame, vote_key: Callable[[str], str] = str) -> pd.DataFrame:
    """One row per answered-or-not sample: budget, problem, sample index, the answer's vote class (its
    equivalence class: `vote_key` of the answer; None: no answer), correctness and tokens."""
    answers = valid["answer"].astype(object).where(valid["answer"].notna(), None)
    keys = {a: vote_key(a) for a in set(answers.dropna())}  # once per distinct answer: the vote stays fast
    correct = _once_per_value(valid["correct"], lambda v: v is True or str(v).strip().lower() in {"true", "1", "1.0"})
    return pd.DataFrame({"budget": budgets_of(valid["budget"]), "problem_id": valid["problem_id"].astype(str),
                         "sample": pd.to_numeric(valid["sample"], errors="coerce"),
                         "answer": pd.Series([None if a is None else keys[a] for a in answers], index=valid.index,
                                             dtype=object), "correct": correct,
                         "tokens": pd.to_numeric(valid["completion_tokens"], errors="coerce")})



def _refuse_missing_tokens(frame: pd.DataFrame) -> None:
    """Every answered sample needs its token count: it is the x-axis. A blank one would make the point's
    tokens NaN and the law silently null, so the stage stops and names the rows."""
    blank = frame[frame["tokens"].isna()]
    if blank.empty:
        return
    shown = ", ".join(f"{r.problem_id} at budget {r.budget} sample {r.sample}" for r in blank.head(5).itertuples())
    more = f" and {len(blank) - 5} more" if len(blank) > 5 else ""
    raise VoteError(
        f"{SAMPLES}: {len(blank)} answered sample(s) have no completion_tokens ({shown}{more}); the x-axis is "
        "tokens used, so every sample needs its count: check that the server reports `usage`, or delete "
        "those rows and re-run `harness sample` to draw them again"
    )



def _pools(frame: pd.DataFrame) -> dict[tuple[Budget, str], tuple[majority.Pool, float]]:
    """(budget, problem) -> the pool reduced to vote-class counts, and its mean tokens per sample."""
    pools = {}
    for (budget, pid), g in frame.groupby(["budget", "problem_id"], sort=True):
        pools[as_budget(budget), str(pid)] = (majority.pool(g["answer"].tolist(), g["correct"].tolist()),
                                        float(g["tokens"].mean()))
    return pools



def point_values(samples: pd.DataFrame, min_samples: int, seed: int,
                 vote_key: Callable[[str], str] = str) -> Points:
    """Score every pool at every k of its budget's doubling axis (the expensive part of the stage).
    `vote_key` maps an answer to its vote class (equivalent answers vote together)."""
    valid = valid_samples(samples)
    problems = sorted(samples["problem_id"].astype(str).unique())
    index = {pid: i for i, pid in enumerate(problems)}
    graded = graded_samples(valid, vote_key)
    _refuse_missing_tokens(graded)
    pools = _pools(graded)
    # Answers are extracted by rule (\boxed{}, "answer is"), not by an LLM judge: how often that found
    # nothing is part of every point's story (a low score may be unparsed answers, not wrong ones).
    unanswered = graded.assign(none=graded["answer"].isna())
    no_answer = unanswered.groupby("budget")["none"].mean().to_dict()
    rows: list[dict[str, Any]] = []
    maj_cols: list[np.ndarray] = []
    pass_cols: list[np.ndarray] = []
    token_cols: list[np.ndarray] = []
    for budget in ordered(samples["budget"].unique()):
        at_budget = {pid: v for (b, pid), v in pools.items() if b == budget}
        if not at_budget:  # every sample at this budget failed: no point may be drawn from nothing
            raise VoteError(
                f"budget {budget}: rests on 0 samples (all failed), fewer than vote.min_samples = "
                f"{min_samples}; re-run `harness sample` to retry the failed samples"
            )
        for k in majority.vote_ks(max(p.size for p, _ in at_budget.values())):
            maj = np.full(len(problems), np.nan)
            passed = np.full(len(problems), np.nan)
            spent = np.full(len(problems), np.nan)
            tokens, used, methods = [], 0, set()
            for pid, (p, mean_tokens) in at_budget.items():
                if p.size < k:
                    continue
                result = majority.maj_at_k_pool(p, k, seed)
                maj[index[pid]] = result.value
                passed[index[pid]] = majority.pass_at_k(p.size, p.correct_samples, k)
                methods.add(result.method)
                tokens.append(mean_tokens)
                spent[index[pid]] = k * mean_tokens
                used += p.size
            if used < min_samples:
                raise VoteError(
                    f"budget {budget}, k={k}: rests on {used} samples, fewer than vote.min_samples = "
                    f"{min_samples}; re-run `harness sample` to fill failed samples or lower the threshold"
                )
            total_tokens = k * float(np.mean(tokens))
            rows.append({
                "budget": budget, "k": k, "mean_tokens": total_tokens,
                "log2_tokens": math.log2(total_tokens) if total_tokens > 0 else float("nan"),
                "problems": len(tokens), "missing_problems": len(problems) - len(tokens), "samples": used,
                "estimator": "exact" if methods == {"exact"} else "sampled",
                "no_answer_rate": round(float(no_answer[budget]), 6),
            })
            maj_cols.append(maj)
            pass_cols.append(passed)
            token_cols.append(spent)
    return Points(rows, np.column_stack(maj_cols), np.column_stack(pass_cols), np.column_stack(token_cols), problems,
                  graded)



def bootstrap_replicates(values: np.ndarray, seed: int) -> np.ndarray:
    """Bootstrap means (replicates, points) over problems resampled with one seeded draw for all points."""
    return stats.bootstrap_means(values, stats.bootstrap_indices(values.shape[0], seed))



def curve_from(points: Points) -> pd.DataFrame:
    """The curve table, each point with its 95% score interval over problems (stats.accuracy_intervals)."""
    table = pd.DataFrame(points.rows)
    for name, values in (("maj", points.maj), ("pass", points.passed)):
        lo, hi = stats.accuracy_intervals(values)
        column = "maj_at_k" if name == "maj" else "pass_at_k"
        table[column], table[f"{name}_lo"], table[f"{name}_hi"] = np.nanmean(values, axis=0), lo, hi
    return table[CURVE_COLUMNS]


def curve(samples: pd.DataFrame, min_samples: int, seed: int) -> pd.DataFrame:
    """One row per (budget, k): maj@k and pass@k with 95% intervals, mean tokens, what it rests on."""
    return curve_from(point_values(samples, min_samples, seed))


def vote_budget_of(table: pd.DataFrame, requested_vote_budget: Budget) -> Budget:
    """The budget of the majority-vote series: the configured one, or the largest the table has (a
    sample table from other params must still give a curve)."""
    budgets = {as_budget(b) for b in table["budget"]}
    return requested_vote_budget if requested_vote_budget in budgets else largest(budgets)



def seed_path(table: pd.DataFrame, vote_budget: Budget) -> pd.Index:
    """Rows of the figure's two series, by tokens: one sample at every budget, then votes at the vote
    budget. This is the curve the law is fitted to (ask for more tokens, then vote)."""
    chosen = table[(table["k"] == 1) | (table["budget"] == vote_budget)]
    return chosen.sort_values(["log2_tokens", "budget", "k"], kind="stable").index



def as_written(table: pd.DataFrame) -> pd.DataFrame:
    """The curve's numbers as curve.csv holds them (6 significant digits), so that frontier.csv is exactly
    the upper envelope of curve.csv: two accuracies equal in the file are equal here too."""
    floats = table.select_dtypes("float").columns
    return table.assign(**{c: table[c].map(lambda v: float(CSV_DIGITS % v) if math.isfinite(v) else v)
                           for c in floats})


def _interval(row: pd.Series, lo: str, hi: str) -> dict[str, Any]:
    """One point's interval; null with the reason when it does not exist (one problem)."""
    if int(row["problems"]) < 2:
        return {"lo": None, "hi": None, "reason": stats.NO_INTERVAL_ONE_PROBLEM}
    return {"lo": json_number(row[lo]), "hi": json_number(row[hi])}


def points_missing_problems(table: pd.DataFrame) -> dict[str, Any]:
    """Points averaging fewer problems than the run has (every sample of a problem failed there, or its
    pool is smaller than k): they compare a different problem set with their neighbours. The count is
    always there; the points by "budget/k" only when some exist (DVC drops empty containers)."""
    short = table[table["missing_problems"] > 0]
    summary: dict[str, Any] = {"points_missing_problems": len(short)}
    if len(short):
        summary["missing_problems_by_point"] = {f"{as_budget(r['budget'])}/k={int(r['k'])}": int(r["missing_problems"])
                                                for _, r in short.iterrows()}
    return summary


def curve_metrics(table: pd.DataFrame, samples: pd.DataFrame, vote_budget: Budget) -> dict[str, Any]:
    """metrics.json's summary of the curve: accuracy, its interval and tokens per budget (k = 1) and per
    vote size at the vote budget, the best accuracy, the points missing problems, what the samples were."""
    single = table[table["k"] == 1].set_index("budget")
    vote = table[table["budget"] == vote_budget].set_index("k")
    status = samples["status"].value_counts().sort_index()

    def interval(frame: pd.DataFrame, lo: str, hi: str) -> dict[str, dict[str, Any]]:
        return {str(i): _interval(r, lo, hi) for i, r in frame.iterrows()}

    return {
        "accuracy_by_budget": {str(b): round(float(v), 6) for b, v in single["maj_at_k"].items()},
        "accuracy_interval_by_budget": interval(single, "maj_lo", "maj_hi"),
        "tokens_by_budget": {str(b): round(float(v), 3) for b, v in single["mean_tokens"].items()},
        "no_answer_rate_by_budget": {str(b): float(v) for b, v in single["no_answer_rate"].items()},
        "vote_budget": as_budget(vote_budget),
        "maj_at_k": {str(k): round(float(v), 6) for k, v in vote["maj_at_k"].items()},
        "maj_at_k_interval": interval(vote, "maj_lo", "maj_hi"),
        "pass_at_k": {str(k): round(float(v), 6) for k, v in vote["pass_at_k"].items()},
        "tokens_by_k": {str(k): round(float(v), 3) for k, v in vote["mean_tokens"].items()},
        "best_accuracy": round(float(table["maj_at_k"].max()), 6),
        **points_missing_problems(table),
        "estimator": {str(m): int(c) for m, c in table["estimator"].value_counts().sort_index().items()},
        "samples": len(samples),
        "status": {str(s): int(c) for s, c in status.items()},
        "total_completion_tokens": int(pd.to_numeric(samples["completion_tokens"], errors="coerce")
                                       .fillna(0).sum()),
    }
