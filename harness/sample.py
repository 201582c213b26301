"""Sample stage: plan (problem x budget x sample), take what the store has, ask the model for the rest.

Why it is built around the store: a response that was paid for must never be paid for again. Every
sample is first walked through the store alone; only if something is missing does the stage start a
model (the embedded server, or a probe of `model.base_url`) and send requests, with bounded
concurrency, persisting each response the moment it arrives. A warm store therefore means zero requests,
no API key and no model: that is what makes `dvc repro` reproducible anywhere.

Output: `outputs/samples.csv`, one row per planned sample, graded, each with a `status`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tqdm import tqdm

from . import budgets as budget_requests
from .client import Client, RequestFailed, api_key_for, probe
from .data import read_problems
from .embedded import embedded_server
from .files import OUTPUTS, STORE_DIR, write_csv
from .grade import extract_answer, is_equivalent, normalize_answer
from .params import Params
from .store import ResponseStore, StoreError, request_key

SAMPLES = OUTPUTS / "samples.csv"
NO_REQUESTS_ENV = "HARNESS_NO_REQUESTS"  # set to 1: replay only, a missing response is an error
SAMPLE_COLUMNS = [
    "problem_id", "budget", "sample", "seed", "completion_tokens", "reasoning_tokens", "prompt_tokens",
    "answer", "gold", "correct", "finish_reason", "status", "requests", "latency_s", "error",
]


@dataclass(frozen=True)
class Job:
    """One planned sample: problem `problem_id` at `budget`, the `sample`-th draw of its pool."""

    problem_id: str
    problem: str
    gold: str
    budget: int
    sample: int


class Missing(Exception):
    """Raised by a store-only fetch: this request has no stored response yet."""


Fetch = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def plan(params: Params, problems: list[dict[str, str]], pool: Callable[[int], int]) -> list[Job]:
    """Problem-major order, so that consecutive requests share a prompt prefix (server-side KV reuse)."""
    return [
        Job(p["id"], p["problem"], p["answer"], budget, sample)
        for p in problems
        for budget in params.budgets.requested
        for sample in range(pool(budget))
    ]


async def run_job(params: Params, job: Job, fetch: Fetch) -> dict[str, Any]:
    """Walk one sample's requests (one for `prompt`; reasoning + forced answer for `forcing`)."""
    first = budget_requests.first_request(params, job.problem, job.problem_id, job.budget, job.sample)
    responses = [await fetch(first)]
    text = responses[0]["text"]
    if budget_requests.needs_forced_answer(params, responses[0]["finish_reason"]):
        second = budget_requests.answer_request(params, first, text)
        responses.append(await fetch(second))
        text = text + params.budgets.answer_cue + responses[-1]["text"]
    return sample_row(job, first["seed"], text, responses)


def _total(responses: list[dict[str, Any]], field: str) -> int | None:
    values = [r.get(field) for r in responses]
    return None if all(v is None for v in values) else sum(v or 0 for v in values)


def sample_row(job: Job, seed: int, text: str, responses: list[dict[str, Any]]) -> dict[str, Any]:
    """Grade one finished sample and classify how it ended."""
    last = responses[-1]
    answer = extract_answer(text)
    if not text.strip():
        status = "empty"
    elif answer is None:
        status = "no_answer"
    elif last["finish_reason"] == "length":
        status = "truncated"
    else:
        status = "ok"
    return {
        "problem_id": job.problem_id,
        "budget": job.budget,
        "sample": job.sample,
        "seed": seed,
        "completion_tokens": _total(responses, "completion_tokens"),
        "reasoning_tokens": _total(responses, "reasoning_tokens"),
        "prompt_tokens": responses[0].get("prompt_tokens"),
        "answer": normalize_answer(answer),
        "gold": job.gold,
        "correct": bool(is_equivalent(answer, job.gold)),
        "finish_reason": last["finish_reason"],
        "status": status,
        "requests": len(responses),
        "latency_s": round(sum(r.get("latency_s") or 0.0 for r in responses), 3),
        "error": None,
    }


def failed_row(job: Job, params: Params, error: str) -> dict[str, Any]:
    """A sample whose request failed after retries: kept in the table, never scored as a wrong answer."""
    seed = budget_requests.sample_seed(params.sampling.seed, job.problem_id, job.sample)
    row: dict[str, Any] = {c: None for c in SAMPLE_COLUMNS}
    row.update(
        problem_id=job.problem_id, budget=job.budget, sample=job.sample, seed=seed, gold=job.gold,
        status="failed", error=error, requests=0,
    )
    return row


def _store_only(store: ResponseStore) -> Fetch:
    async def fetch(request: dict[str, Any]) -> dict[str, Any]:
        record = store.get(request_key(request))
        if record is None:
            raise Missing()
        return dict(record["response"])

    return fetch


async def _missing(params: Params, jobs: list[Job], store: ResponseStore) -> list[Job]:
    fetch = _store_only(store)
    missing = []
    for job in jobs:
        try:
            await run_job(params, job, fetch)
        except Missing:
            missing.append(job)
    return missing


def missing_jobs(params: Params, jobs: list[Job], store: ResponseStore) -> list[Job]:
    """The jobs whose request chain is not fully in the store (walked offline, nothing is sent)."""
    return asyncio.run(_missing(params, jobs, store))


@contextmanager
def model_endpoint(params: Params) -> Iterator[Client]:
    """A client for the configured model: the embedded server (started here) or `model.base_url`."""
    if params.model.is_embedded:
        with embedded_server() as url:
            yield Client(url, "embedded", params.model.request_timeout, params.model.max_retries)
        return
    key = api_key_for(params.model, params.model.base_url)
    probe(params.model.base_url)
    yield Client(params.model.base_url, key, params.model.request_timeout, params.model.max_retries)


def collect(params: Params, jobs: list[Job], shard: str, desc: str) -> list[dict[str, Any]]:
    """Every job's sample row, from the store where possible and from the model otherwise."""
    store = ResponseStore(STORE_DIR, shard)
    todo = missing_jobs(params, jobs, store)
    if not todo:
        print(f"{desc}: all {len(jobs)} samples are in the store; no requests sent")
        return asyncio.run(_gather(params, jobs, _store_only(store)))
    if os.environ.get(NO_REQUESTS_ENV):
        raise StoreError(
            f"{desc}: {len(todo)} of {len(jobs)} samples are missing from {STORE_DIR}/ and {NO_REQUESTS_ENV} "
            "is set, so nothing may be requested; unset it to run the model, or restore the store"
        )
    print(f"{desc}: {len(jobs) - len(todo)}/{len(jobs)} samples in the store; requesting {len(todo)}")
    with model_endpoint(params) as client:
        return asyncio.run(_run_live(params, jobs, store, client, desc, set(todo)))


async def _gather(params: Params, jobs: list[Job], fetch: Fetch) -> list[dict[str, Any]]:
    return [await run_job(params, job, fetch) for job in jobs]


async def _run_live(
    params: Params, jobs: list[Job], store: ResponseStore, client: Client, desc: str, todo: set[Job]
) -> list[dict[str, Any]]:
    """`sampling.concurrency` workers, each carrying one sample through all its requests.

    Workers (rather than one task per request behind a semaphore) keep a sample's requests back to
    back, so a forced answer reuses the server's cached prefix, and finished samples show up at once.
    """
    bar = tqdm(total=len(todo), desc=desc, unit="sample", dynamic_ncols=True)
    tokens = 0
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index, job in enumerate(jobs):
        if job in todo:
            queue.put_nowait(index)
        else:
            results[index] = await run_job(params, job, _store_only(store))

    async def fetch(request: dict[str, Any]) -> dict[str, Any]:
        nonlocal tokens
        record = store.get(request_key(request))
        if record is not None:
            return dict(record["response"])
        response = await client.complete(request)
        store.append(request, response)  # persisted before anything else happens to it
        tokens += response.get("completion_tokens") or 0
        return response

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            try:
                results[index] = await run_job(params, jobs[index], fetch)
            except RequestFailed as exc:
                results[index] = failed_row(jobs[index], params, str(exc))
            bar.update(1)
            elapsed = bar.format_dict.get("elapsed") or 0
            bar.set_postfix(tok_s=f"{tokens / elapsed:.0f}" if elapsed else "-", refresh=False)

    try:
        await asyncio.gather(*(worker() for _ in range(params.sampling.concurrency)))
    finally:
        bar.close()
        await client.close()
    return [r for r in results if r is not None]


def samples_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows stay in plan order (problem as fetched, budget, sample): deterministic and readable."""
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    for col in ("completion_tokens", "reasoning_tokens", "prompt_tokens", "requests"):
        frame[col] = frame[col].astype("Int64")
    return frame


def run(params: Params) -> None:
    problems = read_problems()
    jobs = plan(params, problems, params.pool_size)
    rows = collect(params, jobs, shard="sample", desc="sample")
    frame = samples_frame(rows)
    write_csv(SAMPLES, frame)
    counts = frame["status"].value_counts().sort_index().to_dict()
    print(f"sample: {len(frame)} samples -> {SAMPLES} ({', '.join(f'{k}: {v}' for k, v in counts.items())})")
