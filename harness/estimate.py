"""`harness estimate`: what a run would still cost, before anything is spent (a dry run).

Why: a scaling run is tens of thousands of paid requests. This walks every planned sample through the
response store (nothing is sent, nothing is written) and prices what is missing: requests, output tokens
(from the calibration table when it exists, else the budget itself) and input tokens (from stored
`prompt_tokens`, else ~4 characters per token), times the price table in params.

The problems priced are the ones params.yaml selects now, read from `data.source` by the fetch stage's
own loader: never outputs/problems.jsonl, which holds whatever the last fetch selected (pricing 30 old
problems for a 500-problem run once said $4.71 for a $79 run). A source that cannot be loaded stops the
estimate before anything is priced.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .analysis.majority import vote_ks
from .budget_axis import Budget, as_budget
from .data import DataError, fingerprint, load_problems
from .files import CALIBRATION, CALIBRATION_SUMMARY, DATASET_INFO, PROBLEMS, store_dir
from .params import Params
from .requests.chain import Job, first_missing
from .requests.store import ResponseStore
from .stages.sample import plan

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Need:
    """What samples still need: requests, tokens and how many samples; a stage's need is the sum."""

    requests: float = 0.0
    output_tokens: float = 0.0
    input_tokens: float = 0.0
    samples: int = 0

    def __add__(self, other: Need) -> Need:
        return Need(self.requests + other.requests, self.output_tokens + other.output_tokens,
                    self.input_tokens + other.input_tokens, self.samples + other.samples)


# `effort` asks for a level, not a number: before calibration, a rough prior of what reasoning models
# (o3-mini, gpt-5 class) spend per AIME-style problem at each level. Calibration replaces it.
EFFORT_PRIOR_TOKENS = {"none": 512, "minimal": 1024, "low": 2048, "medium": 8192, "high": 16384,
                       "xhigh": 32768}


def expected_tokens(params: Params) -> tuple[dict[Budget, float], str]:
    """Mean output tokens of one sample per budget, and where the figure comes from: the calibration
    table when it is for this method and this data source, over the guess (for budgets calibration has
    not seen). A calibration of another source is not used: AIME and chain_sum differ in length."""
    guess, source = _guess(params)
    if CALIBRATION.exists() and CALIBRATION_SUMMARY.exists() and _fetched_source() == params.data.source:
        summary = json.loads(CALIBRATION_SUMMARY.read_text(encoding="utf-8"))
        table = pd.read_csv(CALIBRATION).dropna(subset=["mean_tokens"])
        if summary.get("method") == params.budgets.method and len(table):
            measured = dict(zip(table["budget"].map(as_budget), table["mean_tokens"].astype(float)))
            return {**guess, **measured}, str(CALIBRATION)
    return guess, source


def _fetched_source() -> str | None:
    """The data source of the last fetch (outputs/dataset.json), which the calibration table was run on."""
    if not DATASET_INFO.exists():
        return None
    return json.loads(DATASET_INFO.read_text(encoding="utf-8")).get("source")


def selected_problems(params: Params) -> list[dict[str, str]]:
    """The problems params.yaml selects now, through the fetch stage's loader (nothing is written); a
    source that cannot be loaded is an error here, before anything is priced."""
    try:
        return load_problems(params)
    except DataError as exc:
        raise DataError(f"estimate: nothing priced: {exc}") from None


def stale_fetch_note(problems: list[dict[str, str]]) -> str | None:
    """A line saying outputs/problems.jsonl holds another selection than the one priced, or None. Read
    raw (not re-validated): it only has to be told apart from what params select."""
    if not PROBLEMS.exists():
        return None
    fetched = [json.loads(line) for line in PROBLEMS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if fingerprint(fetched) == fingerprint(problems):
        return None
    return (f"note: {PROBLEMS} holds {len(fetched)} problems of an earlier selection; priced are the "
            f"{len(problems)} params.yaml selects now (`harness fetch` or `harness run` writes them)")


def _guess(params: Params) -> tuple[dict[Budget, float], str]:
    """Before calibration: the budget itself (plus half the forced answer), or a level's prior."""
    b = params.budgets
    if b.method == "effort":
        prior = {level: float(EFFORT_PRIOR_TOKENS[str(level)]) for level in b.requested}
        if b.max_tokens is not None:
            prior = {level: min(tokens, b.max_tokens) for level, tokens in prior.items()}
        return prior, ("a rough prior per effort level (no calibration yet: run `harness calibrate`, then "
                       "estimate again)")
    extra = b.answer_tokens / 2 if b.method == "forcing" else 0.0
    return ({budget: float(budget) + extra for budget in b.requested},
            "the budgets themselves (no calibration yet; `prompt` models may spend several times more)")


def _input_tokens(request: dict[str, Any]) -> float:
    text = request.get("prompt") or "".join(m["content"] for m in request.get("messages", []))
    return len(text) / CHARS_PER_TOKEN


async def _need_of(params: Params, job: Job, store: ResponseStore, per_sample: dict[Budget, float]) -> Need:
    """Walk one sample through the store; price the first missing request and everything after it."""
    missing = await first_missing(params, job, store)
    if missing is None:
        return Need()
    request = missing.request
    share = 1.0 / request.get("n", 1)  # a request for n choices serves n samples
    if missing.step == "answer":  # only the forced answer is missing
        return Need(1.0, params.budgets.answer_tokens / 2, _input_tokens(request), 1)
    forced = 1.0 if params.budgets.method == "forcing" else 0.0
    tokens = per_sample[job.budget]
    return Need(share + forced, tokens, _input_tokens(request) * share, 1)


def estimate(params: Params, problems: list[dict[str, str]]) -> tuple[dict[str, Need], str]:
    """What `problems` still need, per stage, and where the tokens per sample come from."""
    store = ResponseStore(store_dir(), "estimate", readonly=True)  # no store directory: an empty store
    per_sample, source = expected_tokens(params)
    stages = {
        "calibrate": plan(params, problems[: params.calibrate.problems], lambda budget: 1),
        "sample": plan(params, problems, params.pool_size),
    }
    needs: dict[str, Need] = {}
    counted: set[Job] = set()

    async def walk() -> None:
        for stage, jobs in stages.items():
            need = Need()
            for job in jobs:
                if job in counted:  # calibration's samples are the sample stage's first ones
                    continue
                counted.add(job)
                need += await _need_of(params, job, store, per_sample)
            needs[stage] = need

    asyncio.run(walk())
    return needs, source


def grid_line(params: Params) -> str:
    """What the samples buy: one pool per budget, every k = 1, 2, 4, ... up to it a point of the grid, all
    from the same samples (never re-drawn per k), so the grid costs the pools and nothing more."""
    pools = {budget: params.pool_size(budget) for budget in params.budgets.requested}
    points = sum(len(vote_ks(n)) for n in pools.values())
    sizes = list(pools.values())
    common = max(sizes, key=sizes.count)  # the most frequent pool, then the budgets that differ
    others = ", ".join(f"{n} at {b}" for b, n in pools.items() if n != common)
    shown = f"a pool of {common} at every budget" + (f" but {others}" if others else "")
    return f"grid: {shown} -> {points} (budget, k) points, each sample reused for every k"


def dollars(params: Params, need: Need, batch: bool | None = None) -> float:
    """What `need` costs at `prices`, in the run's `sampling.mode` unless `batch` says which. No prompt
    cache is assumed (an upper bound: cached input is billed at prices.cached_input_per_million)."""
    batch = params.sampling.mode == "batch" if batch is None else batch
    return params.prices.dollars(need.input_tokens, need.output_tokens, batch=batch)


def header(params: Params, problems: list[dict[str, str]]) -> str:
    """The first line: what is priced (how many problems of which source), for which model and budgets."""
    where = f" at {params.data.path}" if params.data.path else ""
    return (f"estimate: {len(problems)} problems of {params.data.source}{where}; {params.model.name} via "
            f"{', '.join(params.model.endpoints)}, method {params.budgets.method}, "
            f"budgets [{', '.join(map(str, params.budgets.requested))}]")


def run(params: Params) -> None:
    problems = selected_problems(params)
    needs, source = estimate(params, problems)
    total = Need()
    print(header(params, problems))
    note = stale_fetch_note(problems)
    if note:
        print(note)
    print(grid_line(params))
    print(f"{'stage':<10} {'missing samples':>16} {'requests':>10} {'output tokens':>14} {'input tokens':>13} "
          f"{'cost $':>10}")
    for stage, need in needs.items():
        total += need
        print(f"{stage:<10} {need.samples:>16} {need.requests:>10.0f} {need.output_tokens:>14.0f} "
              f"{need.input_tokens:>13.0f} {dollars(params, need):>10.2f}")
    print(f"{'total':<10} {total.samples:>16} {total.requests:>10.0f} {total.output_tokens:>14.0f} "
          f"{total.input_tokens:>13.0f} {dollars(params, total):>10.2f}")
    print(f"output tokens per sample estimated from {source}; prices from params.yaml `prices`")
    other = "live" if params.sampling.mode == "batch" else "batch"
    print(f"sampling.mode: {params.sampling.mode}; in {other} mode the total would be "
          f"${dollars(params, total, batch=other == 'batch'):.2f}")
