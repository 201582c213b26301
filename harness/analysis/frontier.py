"""The compute-optimal frontier: the strategy points no other point beats, over every strategy measured.

Every strategy point (strategies.py: k votes at one budget, a stopping rule at one budget, a
confidence-weighted vote) spends tokens and buys an accuracy. The frontier answers "what is the best
accuracy this many tokens buy, whichever way they are spent": the points that no other point beats with
fewer or equal tokens and higher accuracy (the upper envelope, in order of tokens). `outputs/frontier.csv`
holds it and nothing else; every point, dominated or not, is in `outputs/strategies.csv`.

The frontier is a selection from noisy points, so the interval of its height at a spend re-selects it in
every bootstrap replicate over problems: a fixed selection would hide the selection's own uncertainty
(benchmarks/coverage_frontier.py measures the coverage). Pure: arrays and tables in, tables and dicts out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..budget_axis import as_budget, budget_rank
from ..files import json_number
from . import stats


def upper_envelope(tokens: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Mask of the points nothing beats: each is more accurate than every point costing less, and of several
    with the same tokens and accuracy only the first (in the given order) stays. Why strict: a point that
    another matches at fewer tokens buys nothing (maj@2 = maj@1 at twice the tokens, a stopping rule that
    always draws the whole pool), and a frontier that lists it is not the set of points nothing beats.
    Points without tokens or accuracy (NaN) are never on it and beat nothing."""
    t = np.asarray(tokens, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    keep = np.zeros(t.shape, dtype=bool)
    ok = np.flatnonzero(np.isfinite(t) & np.isfinite(a))
    best = -np.inf
    by_tokens = ok[np.argsort(t[ok], kind="stable")]
    for spend in np.unique(t[by_tokens]):
        same = by_tokens[t[by_tokens] == spend]  # in the given order: argsort is stable
        top = float(a[same].max())
        if top > best:
            keep[same[np.argmax(a[same] >= top)]] = True
            best = top
    return keep


def height_at(tokens: np.ndarray, accuracy: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """The frontier's accuracy at each spend: the best accuracy of any point costing no more (NaN below
    the cheapest point). Rows of tokens/accuracy (replicates, points) are independent grids."""
    t = np.atleast_2d(np.asarray(tokens, dtype=float))
    a = np.atleast_2d(np.asarray(accuracy, dtype=float))
    affordable = (t[:, :, None] <= np.asarray(spend, dtype=float)[None, None, :]) & np.isfinite(a)[:, :, None]
    best = np.where(affordable, a[:, :, None], -np.inf).max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


FRONTIER_COLUMNS = ["budget", "k", "mean_tokens", "log2_tokens", "maj_at_k", "maj_lo", "maj_hi", "rule",
                    "mean_samples", "estimator", "mc_se"]
INTERVAL = ("the frontier's accuracy at that spend (the best accuracy of any strategy point costing no more, "
            "tokens as in strategies.csv), the frontier re-selected in every bootstrap replicate over problems")


def frontier_order(written: pd.DataFrame) -> pd.Index:
    """The rows of `written` (strategy rows as the csv holds them) on the frontier, in order of tokens; at
    equal tokens the smaller budget, then the smaller k, then the strategies' own order (fixed first)."""
    on = written[upper_envelope(written["mean_tokens"].to_numpy(), written["maj_at_k"].to_numpy())]
    keyed = on.assign(_rank=on["budget"].map(budget_rank), _k=on["k"].astype(float))
    return keyed.sort_values(["mean_tokens", "_rank", "_k"], kind="stable", na_position="last").index


def frontier_table(written: pd.DataFrame) -> pd.DataFrame:
    """`outputs/frontier.csv`: the strategy points nothing beats, each with its own interval."""
    return written.loc[frontier_order(written), FRONTIER_COLUMNS].reset_index(drop=True)


def point_key(row: pd.Series) -> str:
    """How metrics.json names a strategy point: `256/k=4`, `256/unanimity w=2`, `256/confidence-weighted k=4`."""
    budget = as_budget(row["budget"])
    if row["rule"] == "fixed":
        return f"{budget}/k={int(row['k'])}"
    return f"{budget}/{row['rule']}" + ("" if pd.isna(row["k"]) else f" k={int(row['k'])}")


def frontier_metrics(written: pd.DataFrame, accuracy_boot: np.ndarray) -> dict[str, Any]:
    """metrics.json `frontier`: each frontier point with the interval of the frontier's height at its spend,
    re-selected in every replicate (`accuracy_boot`: every strategy row's accuracy over one resampling of
    problems per row of it)."""
    front = written.loc[frontier_order(written)]
    # the spend axis is the strategies' tokens (what the figure shows): accuracy is what the replicates re-draw
    spend = written["mean_tokens"].to_numpy(dtype=float)
    heights = height_at(np.broadcast_to(spend, accuracy_boot.shape), accuracy_boot,
                        front["mean_tokens"].to_numpy(dtype=float))
    lo, hi = stats.intervals(front["maj_at_k"].to_numpy(dtype=float), heights, front["problems"].to_numpy())
    points = {}
    for (_, row), low, high in zip(front.iterrows(), lo, hi):
        interval = ({"lo": None, "hi": None, "reason": stats.NO_INTERVAL_ONE_PROBLEM} if int(row["problems"]) < 2
                    else {"lo": json_number(low), "hi": json_number(high)})
        points[point_key(row)] = {"budget": as_budget(row["budget"]),
                                  "k": None if pd.isna(row["k"]) else int(row["k"]), "rule": row["rule"],
                                  "mean_samples": json_number(row["mean_samples"], 4),
                                  "tokens": json_number(row["mean_tokens"], 3),
                                  "maj_at_k": json_number(row["maj_at_k"]), **interval}
    return {"frontier": {"points": points, "interval": INTERVAL,
                         "over": "every strategy measured: fixed k at each budget, the stopping rules, "
                                 "confidence-weighted votes (outputs/strategies.csv)"}}
