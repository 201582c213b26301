"""Sample stage: the plan (problem x budget x sample) in, one graded row per sample out.

The plan is problem-major; each planned sample's outcome comes from `engine.collect` (the store, else the
model), and is graded here into a row whose `status` says how the sample ended.

Output: `outputs/samples.csv`, one row per planned sample, graded, each with a `status`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from ..analysis.confidence import LOGPROB_COLUMN
from ..analysis.grade import extract_answer, is_equivalent, normalize_answer
from ..budget_axis import Budget
from ..data import integer_answers, read_problems
from ..files import SAMPLES, write_csv
from ..params import Params
from ..requests.chain import Job, Outcome
from ..requests.engine import collect

STATUSES = ("ok", "truncated", "empty", "no-answer-found", "refused", "failed-after-retries")
SAMPLE_COLUMNS = [
    "problem_id", "budget", "sample", "seed", "completion_tokens", "reasoning_tokens", "reasoning_count",
    "prompt_tokens", "answer", "gold", "correct", "finish_reason", "status", "requests", "latency_s", "error",
    "input_tokens", "cached_input_tokens", "billing",
]
# Only in runs imported from another tool's logs: how each sample's tokens were counted (`logged` by the
# tool, `tokenizer:<file>`, or `estimated` from the text; docs/interop.md). Native runs keep their bytes.
TOKENS_COUNTED = "tokens_counted"


def plan(params: Params, problems: list[dict[str, str]], pool: Callable[[Budget], int]) -> list[Job]:
    """Problem-major order, so that consecutive requests share a prompt prefix (server-side KV reuse)."""
    return [
        Job(p["id"], p["problem"], p["answer"], budget, sample)
        for p in problems
        for budget in params.budgets.requested
        for sample in range(pool(budget))
    ]


def classify(outcome: Outcome, answer: str | None) -> str:
    """How a sample ended; failed samples are never graded as wrong answers."""
    if outcome.error is not None:
        return "failed-after-retries"
    if outcome.refusal or outcome.finish_reason == "content_filter":
        return "refused"
    if not outcome.text.strip():
        return "empty"
    if answer is None and outcome.finish_reason == "length" and outcome.reasoning:
        return "truncated"  # the token limit cut the thinking: there is no answer part to read
    if answer is None:
        return "no-answer-found"
    if outcome.finish_reason == "length":
        return "truncated"
    return "ok"


def sample_row(outcome: Outcome, integer: bool = False) -> dict[str, Any]:
    """Grade one finished sample (pure: text in, row out); `integer`: the task's answers are integers.

    Only the answer part is read: a `\\boxed{}` inside the thinking (a draft, a discarded guess, or thinking
    the token limit cut before it closed) is never taken for the final answer.
    """
    job = outcome.job
    answer = extract_answer(outcome.answer) if outcome.error is None else None
    status = classify(outcome, answer)
    failed = status == "failed-after-retries"
    return {
        "problem_id": job.problem_id,
        "budget": job.budget,
        "sample": job.sample,
        "seed": outcome.seed,
        "completion_tokens": outcome.completion_tokens,
        "reasoning_tokens": outcome.reasoning_tokens,
        "reasoning_count": outcome.reasoning_count,
        "prompt_tokens": outcome.prompt_tokens,
        "answer": normalize_answer(answer),
        "gold": job.gold,
        "correct": None if failed else bool(is_equivalent(answer, job.gold, integer)),
        "finish_reason": outcome.finish_reason,
        "status": status,
        "requests": outcome.requests,
        "latency_s": outcome.latency_s if not failed else None,
        "error": outcome.error,
        # what the sample was billed for (metrics.json `cost`): input over every request of its chain, the
        # cached share of it, and whether a Batch API answered it (priced at prices.batch_discount)
        "input_tokens": outcome.input_tokens,
        "cached_input_tokens": outcome.cached_input_tokens,
        "billing": None if failed else outcome.billing,
        LOGPROB_COLUMN: outcome.answer_logprob,
        TOKENS_COUNTED: outcome.tokens_counted,
    }


def samples_frame(outcomes: list[Outcome], integer: bool = False, logprobs: bool = False) -> pd.DataFrame:
    """Rows stay in plan order (problem as fetched, budget, sample): deterministic and readable.
    `logprobs`: add the answer_logprob column (sampling.logprobs)."""
    imported = any(o.tokens_counted is not None for o in outcomes)
    columns = SAMPLE_COLUMNS + ([LOGPROB_COLUMN] if logprobs else []) + ([TOKENS_COUNTED] if imported else [])
    frame = pd.DataFrame([sample_row(o, integer) for o in outcomes], columns=columns)
    for col in ("completion_tokens", "reasoning_tokens", "prompt_tokens", "requests", "input_tokens",
                "cached_input_tokens"):
        frame[col] = frame[col].astype("Int64")
    frame["correct"] = frame["correct"].astype("boolean")
    return frame


def logprob_note(params: Params, frame: pd.DataFrame) -> str:
    """One line on the log-probabilities asked for (sampling.logprobs): how many answers have one, or why none."""
    if params.budgets.method == "effort":
        return ("sampling.logprobs: not asked for: OpenAI's reasoning models (o-series) return no log-probabilities; "
                "the confidence-weighted vote is skipped")
    have = int(frame[LOGPROB_COLUMN].notna().sum())
    if have == 0:
        return ("sampling.logprobs: the server returned no log-probabilities; the confidence-weighted vote is "
                "skipped (check that it supports `logprobs`)")
    return f"sampling.logprobs: {have} of {len(frame)} samples have the answer's log-probability"


def run(params: Params) -> None:
    problems = read_problems()
    jobs = plan(params, problems, params.pool_size)
    outcomes = collect(params, jobs, shard="sample", desc="sample")
    frame = samples_frame(outcomes, integer_answers(params), params.sampling.logprobs)
    write_csv(SAMPLES, frame)
    if params.sampling.logprobs:
        print(f"sample: {logprob_note(params, frame)}")
    counts = frame["status"].value_counts().sort_index().to_dict()
    print(f"sample: {len(frame)} samples -> {SAMPLES} ({', '.join(f'{k}: {v}' for k, v in counts.items())})")
