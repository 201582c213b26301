"""Calibrate stage: how many tokens does the model really spend when asked for N?

Why first: the x-axis of every scaling plot is tokens *used*, not tokens requested, and models obey a
requested budget only in some range (o1-mini: ~8x the request, between 2^4 and 2^11). One sample per
problem and budget (sample 0, the same request the sample stage makes first, so the store pays for it
only once) gives requested vs. actual tokens and the controllable range.

Outputs: `outputs/calibration.csv` (one row per budget) and `outputs/calibration.json` (the range).
"""

from __future__ import annotations

import math

import pandas as pd

from ..analysis import stats
from ..budget_axis import Budget, as_budget
from ..data import read_problems
from ..files import CALIBRATION, CALIBRATION_SUMMARY, write_csv, write_json
from ..params import Params
from ..requests.engine import collect
from .sample import plan, samples_frame


def summarize(rows: pd.DataFrame, requested: list[Budget]) -> pd.DataFrame:
    """Per budget: mean and spread of tokens actually used, and the ratio used/requested (token budgets
    only: an effort level asks for no number, so its ratio is empty)."""
    ok = rows[rows["status"] != "failed-after-retries"]
    grouped = ok.assign(budget=ok["budget"].map(as_budget)).groupby("budget")["completion_tokens"]
    table = pd.DataFrame({"budget": requested}).set_index("budget")
    table["requests"] = grouped.count()
    table["mean_tokens"] = grouped.mean()
    table["median_tokens"] = grouped.median()
    table["p10_tokens"] = grouped.quantile(0.1)
    table["p90_tokens"] = grouped.quantile(0.9)
    table["min_tokens"] = grouped.min()
    table["max_tokens"] = grouped.max()
    numeric = all(isinstance(b, int) for b in requested)
    table["ratio"] = table["mean_tokens"] / table.index if numeric else float("nan")
    table = table.reset_index()
    table["requests"] = table["requests"].fillna(0).astype(int)
    return table


def _rounded(value: object) -> float | None:
    """JSON has no NaN: a missing value (pd.NA too: every sample of every budget failed) is null."""
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return None
    number = float(value)  # type: ignore[arg-type]
    return round(number, 4) if math.isfinite(number) else None


def run(params: Params) -> None:
    problems = read_problems()[: params.calibrate.problems]
    jobs = plan(params, problems, pool=lambda budget: 1)
    rows = samples_frame(collect(params, jobs, shard="calibrate", desc="calibrate"))
    table = summarize(rows, params.budgets.requested)
    lo, hi = stats.controllable_range(table["budget"].tolist(), table["mean_tokens"].fillna(0).tolist())
    write_csv(CALIBRATION, table)
    write_json(
        CALIBRATION_SUMMARY,
        {
            "method": params.budgets.method,
            "problems": len(problems),
            "controllable_range": {"from": lo, "to": hi},
            "mean_ratio_used_to_requested": _rounded(table["ratio"].mean()),
        },
    )
    unit = " tokens" if isinstance(hi, int) else ""
    print(f"calibrate: controllable range {lo}..{hi}{unit} -> {CALIBRATION}")
