"""The crossover: from what spend on does a vote over shorter answers beat thinking longer at the same
spend, by how much, and the sentence that says so.

At a fixed spend one can think longer (a larger budget, fewer samples) or vote over more, shorter answers
(Snell et al. 2024; s1's sequential vs. parallel). What thinking longer buys at a spend is the
single-answer (k = 1) curve read at that spend (`thinking_longer_at`), never "the longest answer, if the
vote costs no more" (a vote 2% dearer than the longest answer would hide a 23-point win: real grids never
land on exactly equal spends). The candidates are every strategy that votes over answers shorter than the
longest budget (fixed k >= 2, the stopping rules, confidence-weighted votes: strategies.py).

A crossover is a selection from noisy points, so its interval re-selects it in every bootstrap replicate
(the same resampled problems for accuracy and tokens): a fixed selection would hide the selection's own
uncertainty (benchmarks/coverage_frontier.py measures the coverage). Pure: arrays and tables in, numbers
and sentences out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..budget_axis import as_budget, largest
from ..files import json_number
from . import stats
from .stats import CONFIDENCE

# How far past the longest single answer's tokens a spend still counts as "equal" to it: half a doubling.
# Budgets are usually a doubling apart, so a vote's spend lands within half a doubling of some measured
# answer; further out, what a longer budget would buy was never measured and no comparison is made.
EQUAL_SPEND_REACH_DOUBLINGS = 0.5


def thinking_longer_at(tokens: np.ndarray, accuracy: np.ndarray, single: np.ndarray, spend: np.ndarray
                       ) -> np.ndarray:
    """What thinking longer buys at each spend, per row (a grid, or a bootstrap replicate of it).

    The single-answer curve (the `single` columns: k = 1 at every budget) in order of tokens, made
    non-decreasing (at a given spend one may always stop at a shorter budget that did better), read by
    linear interpolation in log2(tokens) between the two measured answers around the spend; past the
    longest answer it is held at that answer's value for EQUAL_SPEND_REACH_DOUBLINGS, beyond which (and
    below the cheapest answer) nothing was measured: NaN.
    """
    t = np.atleast_2d(np.asarray(tokens, dtype=float))
    a = np.atleast_2d(np.asarray(accuracy, dtype=float))
    s = np.atleast_2d(np.asarray(spend, dtype=float))
    if s.shape[0] != t.shape[0]:
        s = np.broadcast_to(s, (t.shape[0], s.shape[1]))
    cols = np.flatnonzero(np.asarray(single, dtype=bool))
    out = np.full(s.shape, np.nan)
    for r in range(t.shape[0]):
        ts, acc = t[r, cols], a[r, cols]
        ok = np.isfinite(ts) & np.isfinite(acc) & (ts > 0)
        if not ok.any():
            continue
        order = np.argsort(ts[ok], kind="stable")
        xs, ys = np.log2(ts[ok][order]), np.maximum.accumulate(acc[ok][order])
        xs, first = np.unique(xs, return_index=True)  # equal tokens: the envelope's value after the last
        ys = np.maximum.reduceat(ys, first)
        x = np.log2(np.where(s[r] > 0, s[r], np.nan))
        inside = (x >= xs[0]) & (x <= xs[-1] + EQUAL_SPEND_REACH_DOUBLINGS)
        out[r] = np.where(inside, np.interp(np.where(inside, x, xs[0]), xs, ys), np.nan)
    return out


def crossover_tokens(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray
                     ) -> np.ndarray:
    """Per row (a grid, or a bootstrap replicate of it): the fewest tokens of a vote over answers shorter
    than the longest budget (`voted_shorter`: k >= 2 at a smaller budget) more accurate than thinking
    longer at the same spend (thinking_longer_at); NaN if none.

    Such a point is on the frontier and rises above every cheaper point: everything cheaper is a single
    answer (at most the non-decreasing curve) or another vote over shorter answers (which would be the
    crossover itself). A flat step, maj@2 = maj@1 at a shorter budget, never wins: the curve already
    holds that single answer at half the spend.
    """
    return _crossings(tokens, accuracy, voted_shorter, single)[0]


def _margins(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: tokens, what thinking longer buys at each point's spend (thinking_longer_at), and each vote
    over shorter answers' margin over it (NaN: not such a vote, or a spend where thinking longer was not
    measured)."""
    t = np.atleast_2d(np.asarray(tokens, dtype=float))
    a = np.atleast_2d(np.asarray(accuracy, dtype=float))
    longer = thinking_longer_at(t, a, single, t)
    compared = np.asarray(voted_shorter, dtype=bool)[None, :] & np.isfinite(longer)
    return t, longer, np.where(compared, a - longer, np.nan)


def _crossings(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the crossover's tokens (NaN: none) and its win over thinking longer at that spend (several
    winners at the same spend: the most accurate); a row without a crossover gets the margin of the vote
    nearest to winning (<= 0; NaN when no vote is compared)."""
    t, _, margin = _margins(tokens, accuracy, voted_shorter, single)
    compared = np.isfinite(margin)
    with np.errstate(invalid="ignore"):
        wins = compared & (margin > 0)
    first = np.where(wins.any(axis=1), np.where(wins, t, np.inf).min(axis=1), np.nan)
    at_first = wins & (t == first[:, None])
    with np.errstate(invalid="ignore"):  # rows with no compared vote: NaN
        best = np.where(compared.any(axis=1), np.nanmax(np.where(compared, margin, -np.inf), axis=1), np.nan)
    # at the crossover's spend thinking longer is one value, so the most accurate winner has the largest win
    gain = np.where(np.isfinite(first), np.max(np.where(at_first, margin, -np.inf), axis=1), best)
    return first, gain


@dataclass(frozen=True)
class Crossover:
    """Where a vote over shorter answers starts to beat thinking longer at equal spend."""

    point: int | None  # the grid point (column) at the crossover, None when there is none
    tokens: float  # NaN when there is none
    tokens_lo: float  # equal-tailed interval over every replicate, "no crossover" counted as +inf
    tokens_hi: float  # inf: open above (no crossover is within the interval)
    share: float  # fraction of bootstrap replicates that have a crossover at all
    thinking_longer: float  # what thinking longer buys at the crossover's spend (NaN when none)
    gains: np.ndarray  # per replicate: its own crossover's win over thinking longer (none: the nearest margin)
    closest: int | None  # no crossover: the vote over shorter answers nearest to winning at equal spend
    closest_thinking_longer: float  # what thinking longer buys at that vote's spend


def crossover(tokens: np.ndarray, accuracy: np.ndarray, voted_shorter: np.ndarray, single: np.ndarray,
              tokens_boot: np.ndarray, accuracy_boot: np.ndarray, confidence: float = CONFIDENCE) -> Crossover:
    """The crossover of the grid, and its interval re-selected in every replicate (rows of the *_boot
    arrays: the grid's tokens and accuracies over one resampling of problems)."""
    t, a = np.asarray(tokens, dtype=float), np.asarray(accuracy, dtype=float)
    # every replicate's own crossover and its win (none: the nearest vote's margin), re-selected: a point
    # chosen for winning is biased up, and a fixed point's interval would ignore that selection
    boot, boot_gains = _crossings(tokens_boot, accuracy_boot, voted_shorter, single)
    share = float(np.isfinite(boot).mean()) if boot.size else 0.0
    # a replicate without a crossover has it "beyond every spend" (+inf): the interval's upper end is
    # open (inf) when more than (1 - confidence) / 2 of the replicates have none
    alpha = (1.0 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(np.where(np.isfinite(boot), boot, np.inf), [alpha, 1 - alpha],
                                            method="inverted_cdf"))
    longer, margin = (rows[0] for rows in _margins(t, a, voted_shorter, single)[1:])
    with np.errstate(invalid="ignore"):
        wins = np.isfinite(margin) & (margin > 0)
    estimate = float(t[wins].min()) if wins.any() else math.nan
    if math.isnan(estimate):
        closest = None
        if np.isfinite(margin).any():  # nearest to winning; among equals the most accurate, then the cheapest
            near = np.flatnonzero(np.isfinite(margin) & (margin >= np.nanmax(margin) - 1e-12))
            closest = int(min(near, key=lambda i: (-a[i], t[i])))
        return Crossover(None, estimate, lo, hi, share, math.nan, np.array([]), closest,
                         math.nan if closest is None else float(longer[closest]))
    tied = np.flatnonzero((t == estimate) & wins)
    point = int(tied[np.argmax(a[tied])])  # several winners at the same spend: the most accurate
    return Crossover(point, estimate, lo, hi, share, float(longer[point]), boot_gains, None, math.nan)


CROSSOVER_DEFINITION = ("the fewest tokens of a vote (k >= 2, a stopping rule or a confidence-weighted vote) over "
                        "answers shorter than the longest budget that is more accurate than thinking longer at the "
                        "same spend (thinking_longer_rule)")


THINKING_LONGER_RULE = ("the single-answer (k = 1) curve in order of tokens, made non-decreasing (one may stop at a "
                        "shorter budget), read by linear interpolation in log2(tokens) between measured budgets; past "
                        "the longest answer held at its value for half a doubling; not compared elsewhere")


def candidates(written: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Masks over strategy rows: the single answers (fixed k = 1: thinking longer), and the votes over answers
    shorter than the longest budget (fixed k >= 2, every stopping rule, confidence-weighted k >= 2, at a
    budget below the longest): the candidates for a crossover."""
    fixed = (written["rule"] == "fixed").to_numpy()
    k = written["k"].astype(float).to_numpy()
    budgets = written["budget"].map(as_budget)
    longest_budget = largest(written.loc[fixed, "budget"])
    single = fixed & (k == 1)
    votes = np.where(np.isnan(k), True, k >= 2)  # a stopping rule draws as many as it needs: always a vote
    return single, votes & (budgets != longest_budget).to_numpy()


def crossover_metrics(written: pd.DataFrame, tokens_boot: np.ndarray, accuracy_boot: np.ndarray, problems: int
                      ) -> dict[str, Any]:
    """Where a vote over shorter answers starts to beat thinking longer at equal spend, with its interval
    over the bootstrap replicates (open above when many have none), the share of replicates that have one,
    the win over thinking longer with its interval, and a sentence that says what the numbers say.
    `written` is every strategy row as strategies.csv holds it (points.as_written); the replicates are its
    rows' tokens and accuracies over the same resampled problems."""
    single, shorter_votes = candidates(written)
    longest_budget = largest(written.loc[single, "budget"])
    longest = int(np.flatnonzero((written["budget"].map(as_budget) == longest_budget).to_numpy() & single)[0])
    found = crossover(written["mean_tokens"].to_numpy(dtype=float), written["maj_at_k"].to_numpy(dtype=float),
                      shorter_votes, single, tokens_boot, accuracy_boot)
    top = written.iloc[longest]
    compared = _compared_spends(written, single)
    out: dict[str, Any] = {
        "definition": CROSSOVER_DEFINITION,
        "thinking_longer_rule": THINKING_LONGER_RULE,
        "compared_spends": {"from": json_number(compared[0], 3), "to": json_number(compared[1], 3)},
        "versus": {"budget": as_budget(longest_budget), "k": 1, "tokens": json_number(top["mean_tokens"], 3),
                   "maj_at_k": json_number(top["maj_at_k"])},
        "replicates_with_crossover": round(found.share, 4),
        "tokens": json_number(found.tokens, 3), "budget": None, "k": None, "rule": None, "maj_at_k": None,
        "thinking_longer_at_equal_spend": None,
        "gain_over_thinking_longer": None, "gain_lo": None, "gain_hi": None,
        "tokens_lo": None if problems < 2 else json_number(found.tokens_lo, 3),
        "tokens_hi": None if problems < 2 else json_number(found.tokens_hi, 3),
        # no crossover at all is inside the interval: its upper end is open (tokens_hi null)
        "open_above": problems >= 2 and math.isinf(found.tokens_hi),
    }
    if found.point is not None:
        at = written.iloc[found.point]
        gain = float(at["maj_at_k"]) - found.thinking_longer
        lo, hi = stats.widened(gain, found.gains, problems)
        out.update(budget=as_budget(at["budget"]), k=None if pd.isna(at["k"]) else int(at["k"]), rule=at["rule"],
                   label=_label(at), maj_at_k=json_number(at["maj_at_k"]),
                   thinking_longer_at_equal_spend=json_number(found.thinking_longer),
                   gain_over_thinking_longer=json_number(gain), gain_lo=json_number(lo), gain_hi=json_number(hi))
    else:
        out["reason"] = no_crossover_reason(written, single, shorter_votes, found, compared)
    if problems < 2:
        out["interval_reason"] = stats.NO_INTERVAL_ONE_PROBLEM
    out["statement"] = crossover_statement(out, written, single)
    return out


def _compared_spends(written: pd.DataFrame, single: np.ndarray) -> tuple[float, float]:
    """The spends at which thinking longer was measured (thinking_longer_at is defined)."""
    tokens = written.loc[single, "mean_tokens"].to_numpy(dtype=float)
    tokens = tokens[np.isfinite(tokens) & (tokens > 0)]
    if not tokens.size:
        return math.nan, math.nan
    return float(tokens.min()), float(tokens.max()) * 2 ** EQUAL_SPEND_REACH_DOUBLINGS


def _label(row: pd.Series) -> str:
    """A strategy point in words: `maj@4 at budget 64 (288 tokens)`, `unanimity w=2 at budget 64 (...)`."""
    if row["rule"] == "fixed":
        what = f"maj@{int(row['k'])}"
    elif pd.isna(row["k"]):
        what = str(row["rule"])
    else:
        what = f"{row['rule']} maj@{int(row['k'])}"
    return f"{what} at budget {as_budget(row['budget'])} ({row['mean_tokens']:,.0f} tokens)"


def _read_where(written: pd.DataFrame, single: np.ndarray, spend: float) -> str:
    """Which measured answers thinking longer is read from at a spend (for the sentence): the answers
    that set the non-decreasing curve on either side of the spend (thinking_longer_at)."""
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
                        found: Crossover, compared: tuple[float, float]) -> str:
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
    what = out["label"].rsplit(" (", 1)[0]  # the point without its tokens: they open the sentence
    text = (f"votes over shorter answers beat thinking longer from {out['tokens']:,.0f} tokens: "
            f"{what} has {100 * out['maj_at_k']:.1f}% against "
            f"{100 * out['thinking_longer_at_equal_spend']:.1f}% for thinking longer ({where})")
    if out["gain_lo"] is not None and out["gain_hi"] is not None:
        text += (f", {100 * out['gain_over_thinking_longer']:+.1f} points "
                 f"(95% CI {100 * out['gain_lo']:+.1f} to {100 * out['gain_hi']:+.1f})")
    return text
