"""Vote stage: sample table -> one point per (budget, k) -> `outputs/curve.csv` + `outputs/metrics.json`.

Where a point on the plot comes from: for every problem, the expected majority-vote accuracy of k
samples drawn from that problem's pool at that budget (stats.maj_at_k), averaged over problems; its
x-coordinate is the mean tokens k samples spend there. Failed samples (no response after retries) are
left out, never scored as wrong; each point reports how many problems and samples it rests on, and the
stage refuses to write a point that rests on fewer samples than `vote.min_samples`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from . import stats
from .files import OUTPUTS, write_csv, write_json
from .params import Params
from .sample import SAMPLES

CURVE = OUTPUTS / "curve.csv"
METRICS = OUTPUTS / "metrics.json"


class VoteError(RuntimeError):
    """The sample table cannot support the curve; the message says which point and why."""


def read_samples() -> pd.DataFrame:
    if not SAMPLES.exists():
        raise VoteError(f"{SAMPLES}: not found; run `harness sample` (or `dvc repro`) first")
    return pd.read_csv(SAMPLES, dtype={"problem_id": str, "answer": str, "gold": str}, keep_default_na=False,
                       na_values=[""])


def curve(samples: pd.DataFrame, min_samples: int, seed: int) -> pd.DataFrame:
    """One row per (budget, k): maj_at_k, mean_tokens, problems, samples, estimator."""
    valid = samples[~samples["status"].str.startswith("failed")].copy()
    valid["answer"] = valid["answer"].where(valid["answer"].notna(), None)
    rows: list[dict[str, Any]] = []
    for budget in sorted(samples["budget"].unique()):
        at_budget = valid[valid["budget"] == budget]
        if at_budget.empty:  # every sample at this budget failed: no point may be drawn from nothing
            raise VoteError(
                f"budget {budget}: rests on 0 samples (all failed), fewer than vote.min_samples = "
                f"{min_samples}; re-run `harness sample` to retry the failed samples"
            )
        pools = {pid: g for pid, g in at_budget.groupby("problem_id", sort=True)}
        mean_tokens_one = float(at_budget["completion_tokens"].mean())
        pool = max(len(g) for g in pools.values())
        for k in stats.vote_ks(pool):
            values, methods, used = [], set(), 0
            for g in pools.values():
                if len(g) < k:
                    continue
                result = stats.maj_at_k(g["answer"].tolist(), g["correct"].astype(bool).tolist(), k, seed)
                values.append(result.value)
                methods.add(result.method)
                used += len(g)
            if used < min_samples:
                raise VoteError(
                    f"budget {budget}, k={k}: rests on {used} samples, fewer than vote.min_samples = "
                    f"{min_samples}; re-run `harness sample` to fill failed samples or lower the threshold"
                )
            total_tokens = k * mean_tokens_one
            rows.append({
                "budget": int(budget),
                "k": k,
                "maj_at_k": sum(values) / len(values),
                "mean_tokens": total_tokens,
                "log2_tokens": math.log2(total_tokens) if total_tokens > 0 else float("nan"),
                "problems": len(values),
                "samples": used,
                "estimator": "exact" if methods == {"exact"} else "sampled",
            })
    return pd.DataFrame(rows)


def metrics(table: pd.DataFrame, samples: pd.DataFrame, vote_budget: int) -> dict[str, Any]:
    single = table[table["k"] == 1].set_index("budget")
    vote = table[table["budget"] == vote_budget].set_index("k")
    status = samples["status"].value_counts().sort_index()
    return {
        "accuracy_by_budget": {str(b): round(float(v), 6) for b, v in single["maj_at_k"].items()},
        "tokens_by_budget": {str(b): round(float(v), 3) for b, v in single["mean_tokens"].items()},
        "vote_budget": int(vote_budget),
        "maj_at_k": {str(k): round(float(v), 6) for k, v in vote["maj_at_k"].items()},
        "tokens_by_k": {str(k): round(float(v), 3) for k, v in vote["mean_tokens"].items()},
        "best_accuracy": round(float(table["maj_at_k"].max()), 6),
        "samples": len(samples),
        "status": {str(s): int(c) for s, c in status.items()},
        "total_completion_tokens": int(samples["completion_tokens"].fillna(0).sum()),
    }


def run(params: Params) -> None:
    samples = read_samples()
    table = curve(samples, params.vote.min_samples, params.sampling.seed)
    write_csv(CURVE, table)
    write_json(METRICS, metrics(table, samples, params.vote_budget))
    print(f"vote: {len(table)} points -> {CURVE}, {METRICS}")
