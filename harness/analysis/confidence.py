"""Confidence-weighted votes: each sample's vote weighs as much as the model was sure of its answer.

Why: a vote where every sample counts once ignores what the model itself says about each answer. With
token log-probabilities (OpenAI-compatible `logprobs`, which vLLM, SGLang and llama.cpp's server return
too) a sample's confidence can weigh its vote (DeepConf, Fu et al. 2025, filters and weighs traces by
such confidences). Here the confidence of a sample is exp(mean log-probability of its answer tokens):
the geometric-mean probability of the tokens the final request generated after its last `</think>`
(all of them when there is none) -- for budget forcing, the forced answer itself; for a chat model, its
visible answer. It lies in (0, 1]; `answer_logprob` in samples.csv is its logarithm.

The weighted vote groups samples by the same equivalence classes as every other vote (grade.vote_key,
None: no answer, which casts no vote), sums the weights per class and picks the heaviest; classes
within a relative 1e-12 of the top tie and score 1 / (number tied), as majority.vote_score. With equal
weights it is exactly maj@k (tests/test_confidence.py checks it against majority.py and brute force).

Pure: lists in, numbers out; and a run's pools at the vote budget in, metrics.json `confidence_vote` out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..budget_axis import Budget, as_budget
from ..files import json_number
from . import majority
from .thinking_text import THINK_CLOSE

if TYPE_CHECKING:
    from ..params import Params

# samples.csv column, written only when `sampling.logprobs` is true (the tables of runs without
# log-probabilities keep their bytes): the answer's mean log-probability, empty when none came back
LOGPROB_COLUMN = "answer_logprob"
EXACT_SUBSETS = 20000  # all C(n, k) subsets up to here, else SAMPLED_SUBSETS seeded random ones
SAMPLED_SUBSETS = 2000
TIE_TOLERANCE = 1e-12  # relative: weights summed in a different order must still tie
DEFINITION = ("confidence of a sample = exp(mean log-probability of its answer tokens: the tokens the final "
              "request generated after its last </think>, all of them when there is none); each sample's vote "
              "weighs its confidence, equivalent answers vote together, ties split evenly")


def answer_logprob(tokens: Sequence[str], logprobs: Sequence[float | None]) -> float | None:
    """Mean log-probability of the answer tokens of one response (None: no token had one). The answer
    starts after the last token that completes a `</think>` (tokens may split the tag)."""
    if len(tokens) != len(logprobs):
        raise ValueError(f"{len(tokens)} tokens but {len(logprobs)} log-probabilities: one per token")
    text, start = "", 0
    for i, token in enumerate(tokens):
        before = text
        text += token
        if THINK_CLOSE in text[max(0, len(before) - len(THINK_CLOSE)):]:
            start = i + 1
            text = ""  # a later </think> moves the start again
    values = [v for v in logprobs[start:] if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def weighted_vote_scores(labels: np.ndarray, weights: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Score of each subset (rows of labels/weights: the vote classes 0..C-1, C for no answer, and the
    weights of its samples): 1/(number of heaviest classes) if the truth is one of them, else 0."""
    c = len(correct)
    totals = np.stack([np.where(labels == label, weights, 0.0).sum(axis=1) for label in range(c)]) if c \
        else np.zeros((0, labels.shape[0]))
    top = totals.max(axis=0) if c else np.zeros(labels.shape[0])
    modes = (totals >= top * (1 - TIE_TOLERANCE)) & (top > 0)
    hits = (modes & correct[:, None]).sum(axis=0)
    return np.where(top > 0, hits / np.maximum(modes.sum(axis=0), 1), 0.0)


def weighted_maj_at_k(classes: Sequence[Hashable | None], correct: Sequence[bool], weights: Sequence[float], k: int,
                      seed: int | Sequence[int] = 0, exact_limit: int = EXACT_SUBSETS,
                      subsets: int = SAMPLED_SUBSETS) -> tuple[float, str]:
    """Expected confidence-weighted vote of k samples drawn without replacement from the pool: the mean
    over all C(n, k) subsets when there are at most `exact_limit` ("exact"), else over `subsets` seeded
    random subsets ("sampled")."""
    n = len(classes)
    if not len(correct) == len(weights) == n:
        raise ValueError(f"{n} vote classes, {len(correct)} correctness flags and {len(weights)} weights: "
                         "one of each per sample")
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} must be between 1 and the pool size {n}")
    w = np.asarray(weights, dtype=float)
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("weights must be positive and finite (a confidence is a probability above 0)")
    names = sorted({c for c in classes if c is not None}, key=str)
    index = {c: i for i, c in enumerate(names)}
    labels = np.array([len(names) if c is None else index[c] for c in classes])
    right = np.array([any(ok for c2, ok in zip(classes, correct) if c2 == c) for c in names], dtype=bool)
    if math.comb(n, k) <= exact_limit:
        chosen = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
        method = "exact"
    else:
        rng = np.random.default_rng(seed)
        chosen = rng.permuted(np.broadcast_to(np.arange(n), (subsets, n)), axis=1)[:, :k]
        method = "sampled"
    return float(weighted_vote_scores(labels[chosen], w[chosen], right).mean()), method


# --- a run's votes at the vote budget, weighted ------------------------------------------------------------

@dataclass(frozen=True)
class WeightedVotes:
    """Every problem's plain and confidence-weighted maj@k at the vote budget (rows: `problems`; columns:
    `ks`; NaN where the pool has fewer than k samples)."""

    budget: Budget
    ks: list[int]
    problems: list[str]
    plain: np.ndarray
    weighted: np.ndarray
    method: str  # exact when every value was counted over all subsets, else sampled


def skip_reason(samples: pd.DataFrame, params: Params) -> str | None:
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


def weighted_votes(answered: pd.DataFrame, graded: pd.DataFrame, params: Params, vote_budget: Budget,
                   seed: int) -> WeightedVotes | str:
    """At the vote budget, per problem and k, plain maj@k and maj@k with every vote weighted by its answer's
    confidence (DEFINITION); or one line saying why not. `answered`: the sample table without failed samples
    (points.valid_samples), row for row with `graded` (points.graded_samples)."""
    reason = skip_reason(answered, params)
    if reason:
        return reason
    frame = graded.assign(logprob=pd.to_numeric(answered[LOGPROB_COLUMN], errors="coerce"))
    at = frame[(frame["budget"] == vote_budget) & frame["answer"].notna()]
    missing = int(at["logprob"].isna().sum())
    if missing:
        return (f"{missing} answered samples at budget {vote_budget} have no log-probability (the server sent none "
                "for them); the weighted vote needs every one")
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
                weighted[i, j], method = weighted_maj_at_k(answers, correct, weights.tolist(), k, seed=[seed, i, k])
                methods.add(method)
    return WeightedVotes(as_budget(vote_budget), ks, [str(pid) for pid, _ in groups], plain, weighted,
                         "exact" if methods == {"exact"} else "sampled")


def confidence_metrics(votes: WeightedVotes | str) -> dict[str, Any]:
    """metrics.json `confidence_vote`: per k, plain and weighted maj@k and the change with its paired
    interval over problems (paired.difference_intervals: each problem's plain and weighted vote side by
    side). Or `skipped` with the reason."""
    from .paired import difference_intervals  # scipy: only the vote stage pays for it, not every chain walk

    if isinstance(votes, str):
        return {"confidence_vote": {"skipped": votes}}
    change = votes.weighted - votes.plain
    estimate = np.nanmean(change, axis=0)
    counts = np.sum(~np.isnan(change), axis=0)
    lo, hi = difference_intervals(votes.plain, votes.weighted)
    by_k = {str(k): {"maj_at_k": json_number(float(np.nanmean(votes.plain[:, j]))),
                     "weighted_maj_at_k": json_number(float(np.nanmean(votes.weighted[:, j]))),
                     "change": json_number(float(estimate[j])), "change_lo": json_number(lo[j]),
                     "change_hi": json_number(hi[j]), "problems": int(counts[j])} for j, k in enumerate(votes.ks)}
    return {"confidence_vote": {"definition": DEFINITION, "budget": votes.budget, "estimator": votes.method,
                                "by_k": by_k}}
