"""Sample stage: plan (problem x budget x sample), take what the store has, ask the model for the rest.

Why it is built around the store: a response that was paid for must never be paid for again. Every
sample is first walked through the store alone; only if something is missing does the stage start a
model (the embedded server, or a probe of `model.base_url`) and send requests, with bounded
concurrency, persisting each response the moment it arrives. A warm store therefore means zero requests,
no API key and no model: that is what makes `dvc repro` reproducible anywhere.

Ctrl-C stops sending new requests, lets the ones in flight land in the store, says what is left and
exits non-zero; a second Ctrl-C stops at once. A killed run loses at most the responses in flight. A
store that cannot be written (disk full) stops the spending the same way, and the stage fails. Runs
sharing a store claim each request before sending it; a request another run is asking is left for it
(the sample is retried later, its response read from the store). A stage whose requests all failed
stops with one line saying why, instead of writing a table of failures.

Output: `outputs/samples.csv`, one row per planned sample, graded, each with a `status`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm import tqdm

from . import budgets as budget_requests
from .budget_axis import Budget
from .client import Client, Counters, RequestFailed, RequestRejected, Router, api_key_for, probe
from .data import integer_answers, read_problems
from .embedded import embedded_server
from .files import SAMPLES, STORE_DIR, write_csv
from .grade import extract_answer, is_equivalent, normalize_answer
from .params import Params
from .store import Claims, ResponseStore, StoreError, StoreWriteFailed, request_key

NO_REQUESTS_ENV = "HARNESS_NO_REQUESTS"  # set to 1: replay only, a missing response is an error
STATUSES = ("ok", "truncated", "empty", "no-answer-found", "refused", "failed-after-retries")
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
    budget: Budget
    sample: int


@dataclass
class Outcome:
    """A sample's raw result, before grading: the text the model produced and what it cost."""

    job: Job
    seed: int
    text: str = ""
    finish_reason: str | None = None
    refusal: str | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    prompt_tokens: int | None = None
    requests: int = 0
    latency_s: float = 0.0
    error: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)


class Missing(Exception):
    """Raised by a store-only fetch: this request has no stored response yet."""


# Rejections for this many different problems, with no answer at all: the request shape is wrong, not
# one problem's prompt.
REJECTIONS_BEFORE_STOP = 3


class RunRejected(RuntimeError):
    """Every request so far came back 4xx: stop before sending the rest (exit 2, the message says why)."""


class Interrupted(RuntimeError):
    """Ctrl-C: in-flight responses were stored; the message says how much is left."""


class NoAnswers(RuntimeError):
    """Every sample a stage asked for failed after its retries: the message says what, why, what to do."""


class Busy(Exception):
    """Another run has claimed this request and is asking for it now: wait for its response."""

    def __init__(self, owner: str):
        super().__init__(owner)
        self.owner = owner


class Halted(Exception):
    """The store cannot be written: no new request may be sent (money would be spent on nothing)."""


# How often a run waiting for another run's response looks at the store again.
CLAIM_POLL_S = 0.2


Fetch = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class GroupCommit:
    """Responses that arrive together are written with one fsync, off the event loop.

    `await commit(request, response)` returns only once that response is on disk, so nothing is used
    (or counted as done) before it is persisted; meanwhile the loop keeps receiving other responses.
    """

    def __init__(self, store: ResponseStore):
        self.store = store
        self.pending: list[tuple[dict[str, Any], dict[str, Any], asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None
        self.stored = 0
        self.unstored = 0  # responses received (paid for) that could not be written
        self.failure: StoreWriteFailed | None = None

    async def __call__(self, request: dict[str, Any], response: dict[str, Any]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((request, response, done))
        if self.flusher is None:
            self.flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await asyncio.to_thread(self.store.append_many, [(r, s) for r, s, _ in batch])
                except StoreWriteFailed as exc:  # the first exc.stored of the batch are on disk
                    self.failure = self.failure or exc
                    self.stored += exc.stored
                    self.unstored += len(batch) - exc.stored
                    for i, (*_, done) in enumerate(batch):
                        if i < exc.stored:
                            done.set_result(None)
                        else:
                            done.set_exception(exc)
                    continue
                except Exception as exc:  # noqa: BLE001 - handed to every waiter, each re-raises it
                    for *_, done in batch:
                        done.set_exception(exc)
                    continue
                self.stored += len(batch)
                for *_, done in batch:
                    done.set_result(None)
        finally:
            self.flusher = None


def plan(params: Params, problems: list[dict[str, str]], pool: Callable[[Budget], int]) -> list[Job]:
    """Problem-major order, so that consecutive requests share a prompt prefix (server-side KV reuse)."""
    return [
        Job(p["id"], p["problem"], p["answer"], budget, sample)
        for p in problems
        for budget in params.budgets.requested
        for sample in range(pool(budget))
    ]


def choices_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored response holds one choice flat, or several under `choices`."""
    return response.get("choices", [response])


def _choice_tokens(response: dict[str, Any], index: int, field_name: str) -> int | None:
    """Usage is per request; with several choices it is split in proportion to each choice's text."""
    total = response.get(field_name)
    choices = choices_of(response)
    if total is None or len(choices) == 1:
        return total
    lengths = [len(c["text"]) or 1 for c in choices]
    return round(total * lengths[index] / sum(lengths))


async def _pick_choice(first: dict[str, Any], index: int, fetch: Fetch, outcome: Outcome) -> dict[str, Any]:
    """Choice `index` of a request for n choices, topping up while the server returned fewer."""
    response = await fetch(first)
    collected = [(response, i) for i in range(len(choices_of(response)))]
    shares = [response]
    rounds = 0
    n = first.get("n", 1)
    while len(collected) <= index:
        rounds += 1
        if rounds > n + 2:
            raise RequestFailed(f"server returned no new choices after {rounds} top-up requests")
        extra = await fetch(budget_requests.top_up_request(first, n - len(collected), rounds))
        collected += [(extra, i) for i in range(len(choices_of(extra)))]
        shares.append(extra)
    source, at = collected[index]
    outcome.requests += len(shares)
    choice = dict(choices_of(source)[at])
    for name in ("completion_tokens", "reasoning_tokens", "prompt_tokens"):
        choice[name] = _choice_tokens(source, at, name)
    choice["latency_s"] = source.get("latency_s")
    return choice


async def run_job(params: Params, job: Job, fetch: Fetch) -> Outcome:
    """Walk one sample's requests (one for `prompt`; reasoning + forced answer for `forcing`)."""
    seed = budget_requests.sample_seed(params.sampling.seed, job.problem_id, job.sample)
    first = budget_requests.first_request(params, job.problem, job.problem_id, job.budget, job.sample)
    outcome = Outcome(job=job, seed=seed)
    part = await _pick_choice(first, job.sample % params.sampling.n_per_request, fetch, outcome)
    parts = [part]
    text = part["text"]
    used, waits = part.get("completion_tokens") or 0, 0
    while budget_requests.should_wait(params, parts[-1]["finish_reason"], used, job.budget, waits):
        waits += 1
        text += params.budgets.wait_cue
        more = await fetch(budget_requests.continue_request(first, text, int(job.budget) - used, seed))
        outcome.requests += 1
        parts.append(more)
        text += more["text"]
        used += more.get("completion_tokens") or 0
    if budget_requests.needs_forced_answer(params, parts[-1]["finish_reason"]):
        forced = await fetch(budget_requests.answer_request(params, first, text, seed))
        outcome.requests += 1
        parts.append(forced)
        text = text + params.budgets.answer_cue + forced["text"]
    outcome.text = text
    outcome.parts = parts
    outcome.finish_reason = parts[-1]["finish_reason"]
    outcome.refusal = next((p.get("refusal") for p in parts if p.get("refusal")), None)
    outcome.completion_tokens = _total(parts, "completion_tokens")
    outcome.reasoning_tokens = _total(parts, "reasoning_tokens")
    outcome.prompt_tokens = parts[0].get("prompt_tokens")
    outcome.latency_s = round(sum(p.get("latency_s") or 0.0 for p in parts), 3)
    return outcome


def _total(parts: list[dict[str, Any]], name: str) -> int | None:
    values = [p.get(name) for p in parts]
    return None if all(v is None for v in values) else sum(v or 0 for v in values)


def classify(outcome: Outcome, answer: str | None) -> str:
    """How a sample ended; failed samples are never graded as wrong answers."""
    if outcome.error is not None:
        return "failed-after-retries"
    if outcome.refusal or outcome.finish_reason == "content_filter":
        return "refused"
    if not outcome.text.strip():
        return "empty"
    if answer is None:
        return "no-answer-found"
    if outcome.finish_reason == "length":
        return "truncated"
    return "ok"


def sample_row(outcome: Outcome, integer: bool = False) -> dict[str, Any]:
    """Grade one finished sample (pure: text in, row out); `integer`: the task's answers are integers."""
    job = outcome.job
    answer = extract_answer(outcome.text) if outcome.error is None else None
    status = classify(outcome, answer)
    failed = status == "failed-after-retries"
    return {
        "problem_id": job.problem_id,
        "budget": job.budget,
        "sample": job.sample,
        "seed": outcome.seed,
        "completion_tokens": outcome.completion_tokens,
        "reasoning_tokens": outcome.reasoning_tokens,
        "prompt_tokens": outcome.prompt_tokens,
        "answer": normalize_answer(answer),
        "gold": job.gold,
        "correct": None if failed else bool(is_equivalent(answer, job.gold, integer)),
        "finish_reason": outcome.finish_reason,
        "status": status,
        "requests": outcome.requests,
        "latency_s": outcome.latency_s if not failed else None,
        "error": outcome.error,
    }


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
def model_endpoint(params: Params) -> Iterator[Router]:
    """Clients for the configured model: the embedded server (started here) or `model.base_url`'s
    endpoints, behind a router that keeps `sampling.concurrency` requests in flight on each."""
    m = params.model

    def client(url: str, key: str) -> Client:
        return Client(url, key, m.request_timeout, m.max_retries, m.backoff_base, m.backoff_max)

    if m.is_embedded:
        with embedded_server() as url:
            yield Router([client(url, "embedded")], params.sampling.concurrency)
        return
    key = api_key_for(m, m.base_url)
    alive = probe(m.base_url)
    yield Router([client(url, key) for url in alive], params.sampling.concurrency)


def collect(params: Params, jobs: list[Job], shard: str, desc: str) -> list[Outcome]:
    """Every job's outcome, from the store where possible and from the model otherwise."""
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
        outcomes = asyncio.run(_run_live(params, jobs, store, client, desc, set(todo)))
    asked = set(todo)
    failed = [o for o in outcomes if o.job in asked and o.error is not None]
    if failed and len(failed) == len(asked):
        raise NoAnswers(_no_answers(params, desc, len(failed), len(asked), failed[-1].error))
    if failed:
        print(f"{desc}: warning: {len(failed)} of {len(asked)} samples requested failed after retries (last "
              f"error: {failed[-1].error}); they are kept with status failed-after-retries and asked again by "
              "the next run", file=sys.stderr)
    return outcomes


def _no_answers(params: Params, desc: str, failed: int, total: int, last_error: str | None) -> str:
    """One line for a stage whose every request failed: what, how many, the last error, what to do."""
    if last_error is not None and "timeout" in last_error:
        hint = (f"every request timed out after model.request_timeout = {params.model.request_timeout:g}s: the "
                "server answers but does not complete requests (a wedged server, a proxy whose upstream is "
                "down); check its logs, or raise model.request_timeout if the model is only slow")
    else:
        hint = "check the server's logs, model.base_url and model.name"
    counted = f"all {failed} samples requested" if failed == total else f"the first {failed} of {total} samples"
    return (f"{desc}: {counted} failed after retries, with no response at all (last error: {last_error}); "
            f"{hint}; nothing was stored for them and no output was written, rerun `harness {desc}` once the "
            "server answers")


async def _gather(params: Params, jobs: list[Job], fetch: Fetch) -> list[Outcome]:
    return [await run_job(params, job, fetch) for job in jobs]


def _postfix(counters: Counters, elapsed: float) -> dict[str, str]:
    rate = f"{counters.completion_tokens / elapsed:.0f}" if elapsed else "-"
    return {"tok/s": rate, "retries": str(counters.retries), "failed": str(counters.failures)}


async def _run_live(
    params: Params, jobs: list[Job], store: ResponseStore, client: Router, desc: str, todo: set[Job]
) -> list[Outcome]:
    """`sampling.concurrency` workers, each carrying one sample through all its requests.

    Workers (rather than one task per request behind a semaphore) keep a sample's requests back to
    back, so a forced answer reuses the server's cached prefix, and finished samples show up at once.
    Identical requests in flight at the same time (samples sharing an `n`-choice request) are sent once.
    """
    bar = tqdm(total=len(todo), desc=desc, unit="sample", dynamic_ncols=True)
    results: list[Outcome | None] = [None] * len(jobs)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index, job in enumerate(jobs):
        if job in todo:
            queue.put_nowait(index)
        else:
            results[index] = await run_job(params, job, _store_only(store))
    inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}
    rejected_problems: set[str] = set()
    stop = asyncio.Event()
    commit = GroupCommit(store)
    claims = Claims(store.root)
    not_before: dict[int, float] = {}  # a job left for another run is retried from this time on
    others: set[str] = set()  # runs whose claims we waited for
    halted: list[StoreWriteFailed] = []  # the first store write that failed: nothing new is sent
    failed_samples = 0
    loop = asyncio.get_running_loop()

    async def send(key: str, request: dict[str, Any]) -> dict[str, Any]:
        """Claim the request, ask the model, store the response, release the claim (in that order, so a
        run that finds the claim gone finds the response in the store)."""
        owner = claims.take(key)
        store.refresh()  # stored by another run since we looked (before it released its claim)
        record = store.get(key)
        if record is not None:
            claims.release(key)
            return dict(record["response"])
        if owner is not None:
            raise Busy(owner)
        try:
            response = await client.complete(request)
            await commit(request, response)  # persisted before anything else happens to it
            return response
        finally:
            claims.release(key)

    async def fetch(request: dict[str, Any]) -> dict[str, Any]:
        key = request_key(request)
        record = store.get(key)
        if record is not None:
            return dict(record["response"])
        if key in inflight:
            return dict(await asyncio.shield(inflight[key]))
        if halted:
            raise Halted()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        inflight[key] = future
        try:
            response = await send(key, request)
            future.set_result(response)
            return response
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del inflight[key]

    def halt(exc: StoreWriteFailed) -> None:
        if not halted:
            halted.append(exc)
            stop.set()
            print(f"\n{desc}: stopping: cannot write {exc.what}; no new requests; waiting for the ones in "
                  "flight", file=sys.stderr)

    async def worker() -> None:
        nonlocal failed_samples
        while not stop.is_set() and not queue.empty():
            index = queue.get_nowait()
            wait = not_before.pop(index, 0.0) - loop.time()
            if wait > 0:  # every job left is being asked by another run: give it time to answer
                await asyncio.sleep(wait)
            job = jobs[index]
            try:
                results[index] = await run_job(params, job, fetch)
            except Busy as exc:
                if exc.owner not in others:
                    others.add(exc.owner)
                    print(f"\n{desc}: another run ({exc.owner}) is asking for some of these requests; "
                          "waiting for its responses instead of paying twice", file=sys.stderr)
                not_before[index] = loop.time() + CLAIM_POLL_S
                queue.put_nowait(index)
                continue
            except StoreWriteFailed as exc:
                halt(exc)
                continue
            except Halted:
                continue
            except RequestRejected as exc:
                rejected_problems.add(job.problem_id)
                if client.counters.responses == 0 and len(rejected_problems) >= REJECTIONS_BEFORE_STOP:
                    raise RunRejected(
                        f"{desc}: the server rejected the requests of the first {len(rejected_problems)} "
                        f"problems and answered none ({exc}); every request of this run has the same shape, so fix params.yaml "
                        "first (reasoning models: sampling.temperature: null, sampling.top_p: null, "
                        "budgets.cap_field: max_completion_tokens; check model.name). Nothing was stored "
                        "for the rejected requests."
                    ) from None
                outcome = Outcome(
                    job=job, seed=budget_requests.sample_seed(params.sampling.seed, job.problem_id, job.sample)
                )
                outcome.error = str(exc)
                results[index] = outcome
            except RequestFailed as exc:
                outcome = Outcome(
                    job=job, seed=budget_requests.sample_seed(params.sampling.seed, job.problem_id, job.sample)
                )
                outcome.error = str(exc)
                results[index] = outcome
                failed_samples += 1
                if client.counters.responses == 0 and failed_samples >= max(REJECTIONS_BEFORE_STOP, workers):
                    # a whole round of workers and not one answer: the server is down or wedged, stop
                    # instead of waiting out every remaining sample's timeouts
                    stop.set()
                    raise NoAnswers(_no_answers(params, desc, failed_samples, len(todo), outcome.error))
            bar.update(1)
            bar.set_postfix(_postfix(client.counters, bar.format_dict.get("elapsed") or 0), refresh=False)

    def on_sigint() -> None:
        if stop.is_set():  # second Ctrl-C: stop now, in-flight responses are abandoned
            for task in tasks:
                task.cancel()
            return
        stop.set()
        print(f"\n{desc}: stopping: no new requests; waiting for the ones in flight to land in the store "
              "(Ctrl-C again to stop now)", file=sys.stderr)

    async def heartbeat() -> None:
        while True:  # our claims stay fresh while their requests are in flight, however long they take
            await asyncio.sleep(claims.lease_s / 4)
            claims.heartbeat()

    workers = params.sampling.concurrency * len(client.clients)
    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    beating = asyncio.ensure_future(heartbeat())
    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):  # not the main thread: plain KeyboardInterrupt applies
        pass
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        pass
    except BaseException:
        stop.set()  # a stage-ending error: the other workers send nothing new, their requests land
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
        beating.cancel()
        claims.release_all()
        bar.close()
        await client.close()
    left = sum(1 for r in results if r is None)
    if halted:
        failure = halted[0]
        raise StoreWriteFailed(failure.path, failure.error, message=(
            f"{desc}: stopped spending: cannot write {failure.what}; {commit.unstored} response(s) received "
            f"could not be stored and will be requested again, {commit.stored} stored by this run will not "
            f"be; {left} of {len(jobs)} samples not done and no output written. {failure.advice}, then rerun "
            f"`harness {desc}` to resume"
        ))
    if left:
        raise Interrupted(
            f"{desc}: interrupted with {left} of {len(jobs)} samples left; every response received is in "
            f"{STORE_DIR}/, rerun to resume"
        )
    return [r for r in results if r is not None]


def samples_frame(outcomes: list[Outcome], integer: bool = False) -> pd.DataFrame:
    """Rows stay in plan order (problem as fetched, budget, sample): deterministic and readable."""
    frame = pd.DataFrame([sample_row(o, integer) for o in outcomes], columns=SAMPLE_COLUMNS)
    for col in ("completion_tokens", "reasoning_tokens", "prompt_tokens", "requests"):
        frame[col] = frame[col].astype("Int64")
    frame["correct"] = frame["correct"].astype("boolean")
    return frame


def run(params: Params) -> None:
    problems = read_problems()
    jobs = plan(params, problems, params.pool_size)
    outcomes = collect(params, jobs, shard="sample", desc="sample")
    frame = samples_frame(outcomes, integer_answers(params))
    write_csv(SAMPLES, frame)
    counts = frame["status"].value_counts().sort_index().to_dict()
    print(f"sample: {len(frame)} samples -> {SAMPLES} ({', '.join(f'{k}: {v}' for k, v in counts.items())})")
