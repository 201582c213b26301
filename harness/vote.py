"""Vote stage: sample table -> one point per (budget, k) -> `outputs/curve.csv`, `outputs/frontier.csv`,
`outputs/metrics.json`.

Where a point on the plot comes from: for every problem, the expected majority-vote accuracy of k
samples drawn from that problem's pool at that budget (majority.maj_at_k_pool: exact over all C(n, k)
subsets by counting where feasible, else seeded random subsets; the `estimator` column says which),
averaged over problems; `pass_at_k` is the unbiased pass@k from the same pools. `maj_lo`/`maj_hi` (and
`pass_lo`/`pass_hi`) are 95% intervals from a seeded bootstrap over problems. The x-coordinate is
log2 of `mean_tokens`, the expected tokens k samples spend on a problem there.

Answers vote by equivalence class (grade.vote_key: `\\frac{1}{2}`, `1/2` and `0.5` are one vote; on
integer tasks the exact spelling). Failed samples (any status starting with "failed": no response after
retries) are left out, never scored as wrong; each point reports how many problems and samples it rests
on and how many of the run's problems it misses (`missing_problems`), and the stage refuses to write a
point that rests on fewer samples than `vote.min_samples`, or an answered sample without its token count.

`outputs/frontier.csv` is the compute-optimal frontier of that grid (frontier.py): the points no other point
beats with fewer or equal tokens and higher maj@k. `metrics.json` adds the frontier with the interval of its
height at each spend, and the crossover from thinking longer to voting over shorter answers, both
re-selected in every bootstrap replicate.

The metrics summarise the curve: accuracy and intervals per budget and per k, the fitted law (slope in
accuracy points per doubling of tokens and saturation point, each with its interval) and the cost of the
figure against the seed's real scheme (nested samples), with the interval width the same tokens buy, and
its bill in dollars at `prices` (harness/bill.py: input, cached input, output; live and batch).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import adaptive, confidence, frontier, grade, majority, paired, stats, thinking_measures
from . import law as law_fit
from .bill import cost_section
from .budget_axis import Budget, as_budget, budget_rank, largest, ordered
from .confidence import LOGPROB_COLUMN
from .data import integer_answers
from .files import CURVE, FRONTIER, METRICS, SAMPLES, write_csv, write_json
from .params import Params, PriceParams

CURVE_COLUMNS = ["budget", "k", "maj_at_k", "maj_lo", "maj_hi", "pass_at_k", "pass_lo", "pass_hi",
                 "mean_tokens", "log2_tokens", "problems", "missing_problems", "samples", "estimator",
                 "no_answer_rate"]

FRONTIER_COLUMNS = ["budget", "k", "mean_tokens", "log2_tokens", "maj_at_k", "maj_lo", "maj_hi"]
CSV_DIGITS = "%.6g"  # files.write_csv's float format: the frontier is selected from the curve as written


class VoteError(RuntimeError):
    """The sample table cannot support the curve; the message says which point and why."""


def read_samples() -> pd.DataFrame:
    if not SAMPLES.exists():
        raise VoteError(f"{SAMPLES}: not found; run `harness sample` (or `dvc repro`) first")
    return pd.read_csv(SAMPLES, dtype={"problem_id": str, "answer": str, "gold": str}, keep_default_na=False,
                       na_values=[""])


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


def _budgets(column: pd.Series) -> pd.Series:
    return _once_per_value(column, as_budget)


def _graded(valid: pd.DataFrame, vote_key: Callable[[str], str] = str) -> pd.DataFrame:
    """One row per answered-or-not sample: budget, problem, sample index, the answer's vote class (its
    equivalence class: `vote_key` of the answer; None: no answer), correctness and tokens."""
    answers = valid["answer"].astype(object).where(valid["answer"].notna(), None)
    keys = {a: vote_key(a) for a in set(answers.dropna())}  # once per distinct answer: the vote stays fast
    correct = _once_per_value(valid["correct"], lambda v: v is True or str(v).strip().lower() in {"true", "1", "1.0"})
    return pd.DataFrame({"budget": _budgets(valid["budget"]), "problem_id": valid["problem_id"].astype(str),
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
    graded = _graded(valid, vote_key)
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


def _replicates(values: np.ndarray, seed: int) -> np.ndarray:
    """Bootstrap means (replicates, points) over problems resampled with one seeded draw for all points."""
    return stats.bootstrap_means(values, stats.bootstrap_indices(values.shape[0], seed))


def curve_from(points: Points, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The curve table with each point's 95% score interval over problems (stats.accuracy_intervals), and
    the maj@k bootstrap replicates (the frontier and the crossover are selections: they keep the bootstrap,
    re-selected in every replicate)."""
    table = pd.DataFrame(points.rows)
    for name, values in (("maj", points.maj), ("pass", points.passed)):
        lo, hi = stats.accuracy_intervals(values)
        column = "maj_at_k" if name == "maj" else "pass_at_k"
        table[column], table[f"{name}_lo"], table[f"{name}_hi"] = np.nanmean(values, axis=0), lo, hi
    return table[CURVE_COLUMNS], _replicates(points.maj, seed)


def curve(samples: pd.DataFrame, min_samples: int, seed: int) -> pd.DataFrame:
    """One row per (budget, k): maj@k and pass@k with 95% intervals, mean tokens, what it rests on."""
    return curve_from(point_values(samples, min_samples, seed), seed)[0]


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


def frontier_rows(table: pd.DataFrame) -> pd.Index:
    """The compute-optimal frontier of the grid (frontier.upper_envelope of maj@k over mean tokens), in
    order of tokens (equal tokens: smaller budget, then smaller k)."""
    written = as_written(table)
    on = written[frontier.upper_envelope(written["mean_tokens"].to_numpy(), written["maj_at_k"].to_numpy())]
    order = on.assign(_rank=on["budget"].map(budget_rank)).sort_values(["mean_tokens", "_rank", "k"], kind="stable")
    return order.index


def frontier_table(table: pd.DataFrame) -> pd.DataFrame:
    """`outputs/frontier.csv`: the grid points no other point beats with fewer or equal tokens and higher
    maj@k, with each point's own interval (as in curve.csv)."""
    return table.loc[frontier_rows(table), FRONTIER_COLUMNS].reset_index(drop=True)


CROSSOVER_DEFINITION = ("the fewest tokens of a vote (k >= 2) over answers shorter than the longest budget that is "
                        "more accurate than thinking longer at the same spend (thinking_longer_rule)")
THINKING_LONGER_RULE = ("the single-answer (k = 1) curve in order of tokens, made non-decreasing (one may stop at a "
                        "shorter budget), read by linear interpolation in log2(tokens) between measured budgets; past "
                        "the longest answer held at its value for half a doubling; not compared elsewhere")
FRONTIER_INTERVAL = ("the frontier's accuracy at that spend (the best maj@k of any grid point costing no more, "
                     "tokens as in curve.csv), frontier re-selected in every bootstrap replicate over problems")


def frontier_metrics(table: pd.DataFrame, points: Points, maj_boot: np.ndarray, seed: int) -> dict[str, Any]:
    """The frontier (each point's accuracy with the interval of the frontier's height at its spend) and the
    crossover, both re-selected in every replicate: accuracies and tokens over the same resampled problems."""
    tokens_boot = _replicates(points.tokens, seed)
    written = as_written(table)
    front = written.loc[frontier_rows(table)]
    # the spend axis is the curve's tokens (what the figure shows): accuracy is what the replicates re-draw
    spend = written["mean_tokens"].to_numpy()
    heights = frontier.height_at(np.broadcast_to(spend, maj_boot.shape), maj_boot, front["mean_tokens"].to_numpy())
    lo, hi = stats.intervals(front["maj_at_k"].to_numpy(), heights, front["problems"].to_numpy())
    points_out = {}
    for (_, row), low, high in zip(front.iterrows(), lo, hi):
        interval = ({"lo": None, "hi": None, "reason": stats.NO_INTERVAL_ONE_PROBLEM} if int(row["problems"]) < 2
                    else {"lo": _num(low), "hi": _num(high)})
        points_out[f"{as_budget(row['budget'])}/k={int(row['k'])}"] = {
            "budget": as_budget(row["budget"]), "k": int(row["k"]), "tokens": _num(row["mean_tokens"], 3),
            "maj_at_k": _num(row["maj_at_k"]), **interval}
    return {"frontier": {"points": points_out, "interval": FRONTIER_INTERVAL},
            "crossover": crossover_metrics(written, tokens_boot, maj_boot, len(points.problems))}


def crossover_metrics(written: pd.DataFrame, tokens_boot: np.ndarray, maj_boot: np.ndarray, problems: int
                      ) -> dict[str, Any]:
    """Where a vote over shorter answers starts to beat thinking longer at equal spend, with its interval
    over the bootstrap replicates (open above when many have none), the share of replicates that have one,
    the win over thinking longer with its interval, and a sentence that says what the numbers say.
    `written` is the curve as curve.csv holds it (as_written), the numbers the crossover is read from."""
    longest_budget = largest(written["budget"])
    budgets = written["budget"].map(as_budget)
    single = (written["k"] == 1).to_numpy()
    longest = int(np.flatnonzero((budgets == longest_budget).to_numpy() & single)[0])
    shorter_votes = ((written["k"] >= 2) & (budgets != longest_budget)).to_numpy()
    found = frontier.crossover(written["mean_tokens"].to_numpy(), written["maj_at_k"].to_numpy(), shorter_votes,
                               single, tokens_boot, maj_boot)
    top = written.iloc[longest]
    compared = _compared_spends(written, single)
    out: dict[str, Any] = {
        "definition": CROSSOVER_DEFINITION,
        "thinking_longer_rule": THINKING_LONGER_RULE,
        "compared_spends": {"from": _num(compared[0], 3), "to": _num(compared[1], 3)},
        "versus": {"budget": as_budget(longest_budget), "k": 1, "tokens": _num(top["mean_tokens"], 3),
                   "maj_at_k": _num(top["maj_at_k"])},
        "replicates_with_crossover": round(found.share, 4),
        "tokens": _num(found.tokens, 3), "budget": None, "k": None, "maj_at_k": None,
        "thinking_longer_at_equal_spend": None,
        "gain_over_thinking_longer": None, "gain_lo": None, "gain_hi": None,
        "tokens_lo": None if problems < 2 else _num(found.tokens_lo, 3),
        "tokens_hi": None if problems < 2 else _num(found.tokens_hi, 3),
        # no crossover at all is inside the interval: its upper end is open (tokens_hi null)
        "open_above": problems >= 2 and math.isinf(found.tokens_hi),
    }
    if found.point is not None:
        at = written.iloc[found.point]
        gain = float(at["maj_at_k"]) - found.thinking_longer
        lo, hi = stats.widened(gain, found.gains, problems)
        out.update(budget=as_budget(at["budget"]), k=int(at["k"]), maj_at_k=_num(at["maj_at_k"]),
                   thinking_longer_at_equal_spend=_num(found.thinking_longer), gain_over_thinking_longer=_num(gain),
                   gain_lo=_num(lo), gain_hi=_num(hi))
    else:
        out["reason"] = no_crossover_reason(written, single, shorter_votes, found, compared)
    if problems < 2:
        out["interval_reason"] = stats.NO_INTERVAL_ONE_PROBLEM
    out["statement"] = crossover_statement(out, written, single)
    return out


def _compared_spends(written: pd.DataFrame, single: np.ndarray) -> tuple[float, float]:
    """The spends at which thinking longer was measured (frontier.thinking_longer_at is defined)."""
    tokens = written.loc[single, "mean_tokens"].to_numpy(dtype=float)
    tokens = tokens[np.isfinite(tokens) & (tokens > 0)]
    if not tokens.size:
        return math.nan, math.nan
    return float(tokens.min()), float(tokens.max()) * 2 ** frontier.EQUAL_SPEND_REACH_DOUBLINGS


def _label(row: pd.Series) -> str:
    return f"maj@{int(row['k'])} at budget {as_budget(row['budget'])} ({row['mean_tokens']:,.0f} tokens)"


def _read_where(written: pd.DataFrame, single: np.ndarray, spend: float) -> str:
    """Which measured answers thinking longer is read from at a spend (for the sentence): the answers
    that set the non-decreasing curve on either side of the spend (frontier.thinking_longer_at)."""
    singles = written[single].sort_values("mean_tokens", kind="stable")
    best = singles["maj_at_k"].cummax().to_numpy()
    source = [as_budget(singles.iloc[int(np.flatnonzero(singles["maj_at_k"].to_numpy() == b)[0])]["budget"])
              for b in best]
    tokens = singles["mean_tokens"].to_numpy()
    below = int(np.searchsorted(tokens, spend, side="right")) - 1
    above = int(np.searchsorted(tokens, spend, side="left"))
    if above >= len(tokens):
        return f"held from budget {source[-1]}'s answer, the best single answer measured"
    lo, hi = source[max(below, 0)], source[above]
    if lo == hi:
        return f"budget {lo}'s answer, the best single answer affordable there"
    return f"interpolated between budget {lo}'s and budget {hi}'s answers"


def no_crossover_reason(written: pd.DataFrame, single: np.ndarray, shorter_votes: np.ndarray,
                        found: frontier.Crossover, compared: tuple[float, float]) -> str:
    """Why there is no crossover, in the data's own numbers: the vote that came nearest, and the votes
    that lie where thinking longer was never measured (they are on the figure, not compared)."""
    span = f"{compared[0]:,.0f}-{compared[1]:,.0f} tokens"
    if found.closest is None:
        text = (f"no vote over answers shorter than the longest budget costs a spend where thinking longer was "
                f"measured ({span}): nothing to compare at equal spend")
    else:
        row = written.iloc[found.closest]
        text = (f"no vote over answers shorter than the longest budget beats thinking longer at equal spend "
                f"({span}): the nearest, {_label(row)}, has {100 * row['maj_at_k']:.1f}% against "
                f"{100 * found.closest_thinking_longer:.1f}% for thinking longer "
                f"({_read_where(written, single, float(row['mean_tokens']))})")
    beyond = written[shorter_votes & (written["mean_tokens"] > compared[1]).to_numpy()]
    top = written[single].sort_values("mean_tokens", kind="stable").iloc[-1]
    better = beyond[beyond["maj_at_k"] > top["maj_at_k"]]
    if len(better):
        row = better.sort_values("mean_tokens", kind="stable").iloc[0]
        text += (f"; beyond {compared[1]:,.0f} tokens thinking longer was not measured, so {_label(row)}, "
                 f"above the longest answer's {100 * top['maj_at_k']:.1f}%, is not a crossover")
    return text


def crossover_statement(out: dict[str, Any], written: pd.DataFrame, single: np.ndarray) -> str:
    """One sentence for the summary and the figure, built from the numbers beside it."""
    if out["tokens"] is None:
        return "no crossover: " + out["reason"]
    where = _read_where(written, single, out["tokens"])
    text = (f"votes over shorter answers beat thinking longer from {out['tokens']:,.0f} tokens: "
            f"maj@{out['k']} at budget {out['budget']} has {100 * out['maj_at_k']:.1f}% against "
            f"{100 * out['thinking_longer_at_equal_spend']:.1f}% for thinking longer ({where})")
    if out["gain_lo"] is not None and out["gain_hi"] is not None:
        text += (f", {100 * out['gain_over_thinking_longer']:+.1f} points "
                 f"(95% CI {100 * out['gain_lo']:+.1f} to {100 * out['gain_hi']:+.1f})")
    return text


def law(table: pd.DataFrame, points: Points, vote_budget: Budget) -> law_fit.Law:
    """The law fitted to the seed's path, from every problem's value at each of its points."""
    rows = seed_path(table, vote_budget)
    positions = table.index.get_indexer(rows)
    return law_fit.fit_law(table.loc[rows, "log2_tokens"].to_numpy(), points.maj[:, positions])


SEED_SCHEME = ("nested: the seed's cache is keyed by sample index, so its k = 1 point at a budget reads "
               "sample 0 and its vote over k reads samples 0..k-1 of the same pool")


def seed_scheme_tokens(table: pd.DataFrame, samples: pd.DataFrame, vote_budget: Budget) -> float:
    """Tokens the seed would have paid for the same figure: at every budget, the first (largest k shown
    there) samples by index, each read once and reused by every smaller k."""
    shown = table.loc[seed_path(table, vote_budget)]
    needed = {as_budget(b): int(k) for b, k in shown.groupby("budget")["k"].max().items()}
    budgets = _budgets(samples["budget"])
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
    return {str(k): _num(o / t, 4) if t > 0 else None for k, o, t in zip(ks, ours, theirs)}


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


def _num(v: float, digits: int = 6) -> float | None:
    """JSON has no NaN: a value that does not exist (no fit, no interval) is null."""
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def _interval(row: pd.Series, lo: str, hi: str) -> dict[str, Any]:
    """One point's interval; null with the reason when it does not exist (one problem)."""
    if int(row["problems"]) < 2:
        return {"lo": None, "hi": None, "reason": stats.NO_INTERVAL_ONE_PROBLEM}
    return {"lo": _num(row[lo]), "hi": _num(row[hi])}


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


def metrics(
    table: pd.DataFrame, samples: pd.DataFrame, vote_budget: Budget, fitted: law_fit.Law, seed: int = 0,
    graded: pd.DataFrame | None = None, prices: PriceParams | None = None,
) -> dict[str, Any]:
    single = table[table["k"] == 1].set_index("budget")
    vote = table[table["budget"] == vote_budget].set_index("k")
    status = samples["status"].value_counts().sort_index()
    graded = _graded(valid_samples(samples)) if graded is None else graded

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
        "law": {
            # a slope the data do not carry (too few problems, no measured point inside the rise, an interval
            # no accuracy curve could have) is not printed: `identified` false, `reason` says why
            "identified": fitted.identified,
            "slope_points_per_doubling": _num(fitted.slope, 3) if fitted.identified else None,
            "slope_lo": _num(fitted.slope_lo, 3) if fitted.identified else None,
            "slope_hi": _num(fitted.slope_hi, 3) if fitted.identified else None,
            "intercept_points": _num(fitted.intercept, 3) if fitted.identified else None,
            "slope_bound_points_per_doubling": _num(law_fit.slope_bound(fitted.x_from, fitted.x_to), 3),
            "fit_from_log2_tokens": _num(fitted.x_from, 4),
            "fit_to_log2_tokens": _num(fitted.x_to, 4),
            "fit_points": fitted.points,
            "saturated": fitted.saturated,
            "saturation_log2_tokens": _num(fitted.saturation_x, 4),
            "saturation_log2_tokens_lo": _num(fitted.saturation_lo, 4),
            "saturation_log2_tokens_hi": _num(fitted.saturation_hi, 4),
            "gain_after_saturation": _num(fitted.gain_after_saturation),
            "gain_after_saturation_lo": _num(fitted.gain_lo),
            "gain_after_saturation_hi": _num(fitted.gain_hi),
            # what the data show past the saturation point: the region's name on the figure
            "after_saturation": law_fit.after_saturation(fitted),
            "floor": _num(fitted.floor),
            "plateau": _num(fitted.plateau),
            "method": law_fit.METHOD,
            # why a value above is null; absent when none is (DVC drops null metrics)
            **({"reason": fitted.reason} if fitted.reason else {}),
        },
        **points_missing_problems(table),
        "cost": cost(table, samples, graded, vote_budget, seed, prices),
        "estimator": {str(m): int(c) for m, c in table["estimator"].value_counts().sort_index().items()},
        "bootstrap": {"replicates": stats.BOOTSTRAP_SAMPLES, "confidence": stats.CONFIDENCE, "seed": seed,
                      "over": "problems"},
        "samples": len(samples),
        "status": {str(s): int(c) for s, c in status.items()},
        "total_completion_tokens": int(pd.to_numeric(samples["completion_tokens"], errors="coerce")
                                       .fillna(0).sum()),
    }


def compute(samples: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The whole stage without files: what the benchmark times and the tests call."""
    seed = params.sampling.seed
    integer = integer_answers(params)
    points = point_values(samples, params.vote.min_samples, seed, lambda a: grade.vote_key(a, integer))
    table, maj_boot = curve_from(points, seed)
    vote_budget = vote_budget_of(table, params.vote_budget)
    fitted = law(table, points, vote_budget)
    summary = metrics(table, samples, vote_budget, fitted, seed, points.graded, params.prices)
    return table, {**summary, **frontier_metrics(table, points, maj_boot, seed),
                   **issue24_metrics(samples, points, params, vote_budget, seed)}


def run(params: Params) -> None:
    table, summary = compute(read_samples(), params)
    write_csv(CURVE, table)
    front = frontier_with_rules(table, summary)
    write_csv(FRONTIER, front)
    write_json(METRICS, summary)
    fixed = int((front["rule"] == FIXED_RULE).sum())
    print(f"vote: {len(table)} points -> {CURVE} ({fixed} on the frontier, {len(front) - fixed} stopping-rule "
          f"points: {FRONTIER}), {METRICS}")
    skipped = summary["confidence_vote"].get("skipped")
    if skipped and params.sampling.logprobs:
        print(f"vote: confidence-weighted vote skipped: {skipped}")


# --- issue 24: votes that stop early, confidence-weighted votes, the thinking measured ---------------

FRONTIER_RULE_COLUMNS = ["rule", "mean_samples", "estimator", "mc_se"]
FIXED_RULE = "fixed"  # frontier.csv `rule` of the envelope rows: a fixed number k of votes
ADAPTIVE_DEFINITION = (
    "samples drawn one at a time in uniformly random order without replacement from each problem's pool at "
    "that budget; the rule stops the draw (at the pool size or max_samples at the latest) and the drawn "
    "samples vote (equivalence classes, ties split); accuracy, samples and tokens are expectations over "
    "orderings (estimator exact: every distinct ordering; sampled: seeded random orderings, mc_se its "
    "Monte-Carlo standard error), intervals from the bootstrap over problems")


def adaptive_rules(params: Params) -> list[adaptive.Rule]:
    """`vote.adaptive`'s rules, in params order: unanimity windows, then posterior thresholds."""
    a = params.vote.adaptive
    return ([adaptive.Rule("unanimity", window=w, max_samples=a.max_samples) for w in a.unanimity_window]
            + [adaptive.Rule("posterior", threshold=p, prior=a.posterior_prior, max_samples=a.max_samples)
               for p in a.posterior_threshold])


def adaptive_metrics(graded: pd.DataFrame, params: Params, seed: int) -> dict[str, Any]:
    """metrics.json `adaptive`: every rule at every budget whose pools hold two samples or more (with one
    sample there is nothing to stop early), beside the vote over the whole pool. Each problem's orderings
    are seeded by (seed, budget position, problem position): the same inputs give the same numbers."""
    rules = adaptive_rules(params)
    out: dict[str, Any] = {
        "definition": ADAPTIVE_DEFINITION, "orderings": params.vote.adaptive.orderings,
        "exact_up_to_orderings": adaptive.EXACT_ORDERINGS,
        "rules": {r.label: {"rule": r.kind, **({"window": r.window} if r.kind == "unanimity" else
                                              {"threshold": r.threshold, "prior": r.prior}),
                            "max_samples": r.max_samples, "by_budget": {}} for r in rules}}
    if not rules:
        return {"adaptive": out}
    problems = sorted(graded["problem_id"].unique())
    for b_index, budget in enumerate(ordered(graded["budget"].unique())):
        at = graded[graded["budget"] == budget].sort_values(["problem_id", "sample"], kind="stable")
        groups = list(at.groupby("problem_id", sort=True))
        if max(len(g) for _, g in groups) < 2:
            continue
        per_rule: list[list[adaptive.Stopped]] = [[] for _ in rules]
        whole = []
        for pid, g in groups:
            answers, correct, tokens = g["answer"].tolist(), g["correct"].tolist(), g["tokens"].tolist()
            found = adaptive.stop_early(answers, correct, tokens, rules, seed=[seed, b_index, problems.index(pid)],
                                        orderings=params.vote.adaptive.orderings)
            for bucket, result in zip(per_rule, found):
                bucket.append(result)
            whole.append((majority.vote_score(answers, majority.correct_answers(answers, correct)), float(np.sum(tokens)), len(answers)))
        pool_acc, pool_tokens, pool_size = (float(np.mean(col)) for col in zip(*whole))
        for rule, results in zip(rules, per_rule):
            summary = adaptive.summarise(rule, results, seed)
            out["rules"][rule.label]["by_budget"][str(as_budget(budget))] = adaptive.as_dict(
                summary, pool_acc, pool_tokens, pool_size)
    return {"adaptive": out}


def frontier_with_rules(table: pd.DataFrame, summary: dict[str, Any]) -> pd.DataFrame:
    """`outputs/frontier.csv`: first the compute-optimal frontier of the fixed-k grid, exactly as before
    (rule `fixed`, the upper envelope of curve.csv), then one row per stopping rule and budget (rule
    `unanimity w=2`, ...): its expected accuracy, interval and tokens, with `k` empty and `mean_samples` the
    expected samples it drew. The rule rows are not part of the envelope's selection; they sit beside it."""
    front = table.loc[frontier_rows(table)]
    fixed = front[FRONTIER_COLUMNS].assign(rule=FIXED_RULE, mean_samples=front["k"].astype(float),
                                           estimator=front["estimator"], mc_se=np.nan)
    rows = []
    for label, rule in summary.get("adaptive", {}).get("rules", {}).items():
        for budget, r in rule["by_budget"].items():
            tokens = r["mean_tokens"]
            rows.append({"budget": as_budget(budget), "k": None, "mean_tokens": tokens,
                         "log2_tokens": math.log2(tokens) if tokens else np.nan,
                         "maj_at_k": r["accuracy"], "maj_lo": r["lo"], "maj_hi": r["hi"], "rule": label,
                         "mean_samples": r["mean_samples"], "estimator": r["estimator"], "mc_se": r["mc_se"]})
    out = pd.concat([fixed, pd.DataFrame(rows, columns=fixed.columns)], ignore_index=True) if rows \
        else fixed.reset_index(drop=True)
    out["k"] = out["k"].astype("Int64")
    return out[FRONTIER_COLUMNS + FRONTIER_RULE_COLUMNS]


def confidence_metrics(samples: pd.DataFrame, graded: pd.DataFrame, params: Params, vote_budget: Budget,
                       seed: int) -> dict[str, Any]:
    """metrics.json `confidence_vote`: at the vote budget, per k, maj@k with every vote weighted by its
    answer's confidence (confidence.DEFINITION) beside plain maj@k, and the change with its bootstrap
    paired interval over problems (paired_intervals: each problem's plain and weighted vote side by side). Or
    one line saying why not."""
    reason = confidence_skip_reason(samples, params)
    if reason:
        return {"confidence_vote": {"skipped": reason}}
    logprob = pd.to_numeric(valid_samples(samples)[LOGPROB_COLUMN], errors="coerce")
    frame = graded.assign(logprob=logprob)
    at = frame[(frame["budget"] == vote_budget) & frame["answer"].notna()]
    missing = int(at["logprob"].isna().sum())
    if missing:
        return {"confidence_vote": {"skipped": f"{missing} answered samples at budget {vote_budget} have no "
                                              "log-probability (the server sent none for them); the weighted vote "
                                              "needs every one"}}
    at = frame[frame["budget"] == vote_budget].sort_values(["problem_id", "sample"], kind="stable")
    groups = list(at.groupby("problem_id", sort=True))
    ks = majority.vote_ks(max(len(g) for _, g in groups))
    plain = np.full((len(groups), len(ks)), np.nan)
    weighted = np.full((len(groups), len(ks)), np.nan)
    methods: set[str] = set()
    for i, (_, g) in enumerate(groups):
        answers, correct = g["answer"].tolist(), g["correct"].tolist()
        weights = np.exp(g["logprob"].fillna(0.0).to_numpy())  # no answer: casts no vote, any weight does
        p = majority.pool(answers, correct)
        for j, k in enumerate(ks):
            if len(answers) >= k:
                plain[i, j] = majority.maj_at_k_pool(p, k, seed).value
                weighted[i, j], method = confidence.weighted_maj_at_k(answers, correct, weights.tolist(), k,
                                                                      seed=[seed, i, k])
                methods.add(method)
    change = weighted - plain
    estimate = np.nanmean(change, axis=0)
    counts = np.sum(~np.isnan(change), axis=0)
    lo, hi = paired_intervals(plain, weighted)
    by_k = {str(k): {"maj_at_k": _num(float(np.nanmean(plain[:, j]))),
                     "weighted_maj_at_k": _num(float(np.nanmean(weighted[:, j]))),
                     "change": _num(float(estimate[j])), "change_lo": _num(lo[j]), "change_hi": _num(hi[j]),
                     "problems": int(counts[j])} for j, k in enumerate(ks)}
    return {"confidence_vote": {"definition": confidence.DEFINITION, "budget": as_budget(vote_budget),
                                "estimator": "exact" if methods == {"exact"} else "sampled", "by_k": by_k}}


def paired_intervals(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the 95% interval of mean(after) - mean(before) on the problems that have both: the
    paired score interval of `harness compare` (paired.difference_interval), NaN for one problem."""
    pairs = []
    for j in range(before.shape[1]):
        both = ~np.isnan(before[:, j]) & ~np.isnan(after[:, j])
        pairs.append(paired.difference_interval(before[both, j], after[both, j]))
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def confidence_skip_reason(samples: pd.DataFrame, params: Params) -> str | None:
    """Why there is no confidence-weighted vote, in one line (None: there is one)."""
    if params.budgets.method == "effort":
        return ("OpenAI's reasoning models (o-series, budgets.method effort) return no log-probabilities: the "
                "confidence-weighted vote is skipped")
    if LOGPROB_COLUMN not in samples:
        return ("no log-probabilities in the sample table: set sampling.logprobs: true (every request changes, "
                "so the store pays for them once) to weigh votes by confidence")
    if pd.to_numeric(samples[LOGPROB_COLUMN], errors="coerce").isna().all():
        return "the server returned no log-probabilities (sampling.logprobs is set): check that it supports `logprobs`"
    return None


def thinking_metrics(samples: pd.DataFrame, graded: pd.DataFrame, params: Params) -> dict[str, Any]:
    """metrics.json `thinking`: per budget, the share of samples whose thinking hit the cap, the thinking-token
    quantiles and the tokens to the first correct answer (thinking_measures: definitions there)."""
    valid = valid_samples(samples)
    frame = valid.assign(budget=graded["budget"], correct=graded["correct"], sample=graded["sample"])
    order = {b: i for i, b in enumerate(ordered(frame["budget"].unique()))}
    frame = frame.assign(_order=frame["budget"].map(order)).sort_values("_order", kind="stable")
    return {"thinking": {"method": params.budgets.method, "definition": thinking_measures.DEFINITION,
                         "by_budget": thinking_measures.measure(frame.drop(columns="_order"),
                                                                params.budgets.method)}}


def issue24_metrics(samples: pd.DataFrame, points: Points, params: Params, vote_budget: Budget,
                    seed: int) -> dict[str, Any]:
    """The three sections issue 24 adds to metrics.json: adaptive, confidence_vote, thinking."""
    return {**adaptive_metrics(points.graded, params, seed),
            **confidence_metrics(samples, points.graded, params, vote_budget, seed),
            **thinking_metrics(samples, points.graded, params)}
