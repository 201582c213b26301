"""The thinking measured, not only counted: per budget, how often it hit the cap, how long it was, and how
many tokens it took to reach a correct answer.

Definitions (docs/statistics.md, "The thinking measured"):
- thinking tokens of a sample: `reasoning_tokens` where the sample table has it (the server's count,
  exact forced requests, or a character-share estimate: `reasoning_count`), else `completion_tokens`
  (budget forcing with a plain chat template: the reasoning and its answer are one text).
- hit the cap: the sample's status is `truncated` (a token limit cut it), or, where the budget is a cap
  on the thinking (methods `forcing`, `cap`, `thinking` with token budgets), its thinking tokens reached
  the budget. Under `prompt` and `effort` the budget is a request, not a limit: only `truncated` counts.
- tokens to the first correct answer: at a budget, a problem's samples in sample order (0, 1, 2, ...:
  the order they were drawn in), the completion tokens of every sample up to and including the first
  one graded correct. The mean is over the problems that have a correct sample; the others are counted
  (`problems_without`), never averaged in as zero or infinity.
Failed samples (no response) are left out, as everywhere.

Pure: a sample table in, numbers out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..budget_axis import ordered as budgets_in_order

DEFINITION = ("thinking tokens: reasoning_tokens where known, else completion_tokens; capped: status truncated, "
              "or (forcing, cap, thinking) thinking tokens >= the budget; first_correct: completion tokens of a "
              "problem's samples in sample order up to and including its first correct one, mean over the "
              "problems that have one")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
CAPPING_METHODS = ("forcing", "cap", "thinking")  # the budget limits the thinking: reaching it is a hit


def thinking_tokens(frame: pd.DataFrame) -> pd.Series:
    """Reasoning tokens where known, else completion tokens (module docstring)."""
    reasoning = pd.to_numeric(frame["reasoning_tokens"], errors="coerce") if "reasoning_tokens" in frame \
        else pd.Series(np.nan, index=frame.index)
    return reasoning.fillna(pd.to_numeric(frame["completion_tokens"], errors="coerce"))


def hit_cap(frame: pd.DataFrame, method: str) -> pd.Series:
    """Per sample: did the thinking hit the cap (module docstring)?"""
    truncated = frame["status"].astype(str) == "truncated"
    if method not in CAPPING_METHODS:
        return truncated
    budget = pd.to_numeric(frame["budget"], errors="coerce")  # effort levels never cap: NaN compares False
    return truncated | (thinking_tokens(frame) >= budget)


def first_correct(frame: pd.DataFrame) -> tuple[list[float], list[int], int]:
    """Tokens and samples up to the first correct sample of each problem that has one (sample order),
    and how many problems have none."""
    tokens, samples, without = [], [], 0
    ordered = frame.assign(_sample=pd.to_numeric(frame["sample"], errors="coerce")).sort_values(
        ["problem_id", "_sample"], kind="stable")
    for _, g in ordered.groupby("problem_id", sort=True):
        right = np.flatnonzero(g["correct"].to_numpy(dtype=bool))
        if right.size == 0:
            without += 1
            continue
        spent = pd.to_numeric(g["completion_tokens"], errors="coerce").fillna(0).to_numpy()
        tokens.append(float(spent[: right[0] + 1].sum()))
        samples.append(int(right[0] + 1))
    return tokens, samples, without


def _round(v: float, digits: int = 3) -> float | None:
    return None if not math.isfinite(v) else round(float(v), digits)


def measure(frame: pd.DataFrame, method: str) -> dict[str, Any]:
    """Per budget (keys as in metrics.json): samples, capped share, thinking-token quantiles and the tokens
    to the first correct answer. `frame`: answered samples with budget, problem_id, sample, status,
    completion_tokens, reasoning_tokens (optional) and correct (bool)."""
    out: dict[str, Any] = {}
    for budget, g in frame.groupby("budget", sort=False):
        thought = thinking_tokens(g).dropna().to_numpy(dtype=float)
        capped = hit_cap(g, method)
        tokens, samples, without = first_correct(g)
        known = "reasoning_tokens" in g and pd.to_numeric(g["reasoning_tokens"], errors="coerce").notna()
        source = ("reasoning_tokens" if bool(np.all(known)) else "completion_tokens" if not bool(np.any(known))
                  else "reasoning_tokens where known, else completion_tokens")
        quantiles = {f"p{round(100 * q)}": _round(float(np.quantile(thought, q))) for q in QUANTILES} \
            if thought.size else {f"p{round(100 * q)}": None for q in QUANTILES}
        out[str(budget)] = {
            "samples": len(g),
            "capped": int(capped.sum()),
            "capped_share": _round(float(capped.mean()), 4) if len(g) else None,
            "thinking_tokens": {"mean": _round(float(thought.mean())) if thought.size else None, **quantiles,
                                "max": _round(float(thought.max())) if thought.size else None,
                                "from": source},
            "first_correct": {"mean_tokens": _round(float(np.mean(tokens))) if tokens else None,
                              "mean_samples": _round(float(np.mean(samples)), 4) if samples else None,
                              "problems_with": len(tokens), "problems_without": without},
        }
    return out


def thinking_metrics(answered: pd.DataFrame, graded: pd.DataFrame, method: str) -> dict[str, Any]:
    """metrics.json `thinking`: per budget, the share of samples whose thinking hit the cap, the thinking-token
    quantiles and the tokens to the first correct answer (`measure`). `answered`: the sample table without
    failed samples, row for row with `graded` (points.graded_samples: parsed budgets, grades)."""
    frame = answered.assign(budget=graded["budget"], correct=graded["correct"], sample=graded["sample"])
    order = {b: i for i, b in enumerate(budgets_in_order(frame["budget"].unique()))}
    frame = frame.assign(_order=frame["budget"].map(order)).sort_values("_order", kind="stable")
    out: dict[str, Any] = {"method": method, "definition": DEFINITION,
                           "by_budget": measure(frame.drop(columns="_order"), method)}
    if method == "thinking":
        out["budget_ignored"] = budget_ignored(frame)
    return {"thinking": out}


def budget_ignored(frame: pd.DataFrame) -> str | None:
    """Why the run's thinking budget looks like it changed nothing, or None.

    Why: a server that drops the budget field (llama.cpp with a template it does not see as thinking)
    answers every budget alike and reports no reasoning; the run then completes and plots a flat line
    at budgets it never applied. Two signs, either enough: no sample came back with any reasoning, or
    every (problem, sample) spent the same completion tokens at every budget.
    """
    if len(frame) == 0:
        return None
    reasoning = pd.to_numeric(frame["reasoning_tokens"], errors="coerce") if "reasoning_tokens" in frame \
        else pd.Series(np.nan, index=frame.index)
    if not bool((reasoning.fillna(0) > 0).any()):
        return "no sample came back with any reasoning: the server ignored the thinking budget (docs/servers.md)"
    if frame["budget"].nunique() < 2:
        return None
    spent = frame.assign(_tokens=pd.to_numeric(frame["completion_tokens"], errors="coerce"))
    per_pair = spent.groupby(["problem_id", "sample"])["_tokens"].nunique(dropna=False)
    if bool((per_pair <= 1).all()):
        return ("every sample spent the same completion tokens at every budget: the budget changed nothing "
                "(docs/servers.md)")
    return None
