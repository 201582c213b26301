"""Planned samples in, their outcomes out: the store answers what it holds, the model the rest, concurrently.

Why it is built around the store: a response that was paid for must never be paid for again. Every
sample's chain is first walked through the store alone; only if something is missing is a model started
(the embedded server, or a probe of `model.base_url`) and asked, with bounded concurrency, each response
persisted the moment it arrives. A warm store therefore means zero requests, no API key and no model:
that is what makes `dvc repro` reproducible anywhere.

Ctrl-C stops sending new requests, lets the ones in flight land in the store, says what is left and
exits non-zero; a second Ctrl-C stops at once. A killed run loses at most the responses in flight. A
store that cannot be written (disk full) stops the spending the same way, and the stage fails. Runs
sharing a store claim each request before sending it; a request another run is asking is left for it
(the sample is retried later, its response read from the store). A stage whose requests all failed
stops with one line saying why, instead of writing a table of failures.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

from ..files import STORE_DIR, store_dir
from ..params import Params
from ..servers.embedded import embedded_server, model_for
from .chain import Job, Outcome, check_may_request, failed, lean, replay, stored_or_missing, walk
from .client import (
    Client,
    Counters,
    RequestFailed,
    RequestRejected,
    Router,
    api_key_for,
    generation_prompt,
    probe,
)
from .store import Claims, ResponseStore, StoreWriteFailed, request_key
from .thinking import check_thinking_prompt

# Rejections for this many different problems, with no answer at all: the request shape is wrong, not
# one problem's prompt.
REJECTIONS_BEFORE_STOP = 3
# How often a run waiting for another run's response looks at the store again.
CLAIM_POLL_S = 0.2


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


@contextmanager
def model_endpoint(params: Params) -> Iterator[Router]:
    """Clients for the configured model: the embedded server (started here) or `model.base_url`'s
    endpoints, behind a router that keeps `sampling.concurrency` requests in flight on each. With a
    native thinking budget on llama.cpp, its chat template is checked before the first request."""
    m = params.model
    thinking = params.budgets.method == "thinking"

    def client(url: str, key: str) -> Client:
        return Client(url, key, m.request_timeout, m.max_retries, m.backoff_base, m.backoff_max,
                      stream=params.sampling.stream)

    if m.is_embedded:
        # as many llama-server slots as requests in flight (the Python server serves them one by one)
        with embedded_server(model_for(m.name), slots=params.sampling.concurrency, thinking=thinking) as url:
            _check_template(params, [url])
            yield Router([client(url, "embedded")], params.sampling.concurrency)
        return
    key = api_key_for(m, m.base_url)
    alive = probe(m.base_url)
    _check_template(params, alive)
    yield Router([client(url, key) for url in alive], params.sampling.concurrency)


def _check_template(params: Params, urls: list[str]) -> None:
    """llama.cpp's native budget needs a template that opens `<think>` (thinking.check_thinking_prompt)."""
    preset = params.budgets.thinking_preset if params.budgets.method == "thinking" else None
    if preset == "llamacpp":
        for url in urls:
            check_thinking_prompt(generation_prompt(url), preset)


def collect(params: Params, jobs: list[Job], shard: str, desc: str) -> list[Outcome]:
    """Every job's outcome, from the store where possible and from the model otherwise; lean (chain.lean:
    what a stage's table needs, the text left in the store), so memory follows the number of samples."""
    store = ResponseStore(store_dir(), shard)
    try:
        return _collect(params, jobs, store, shard, desc)
    finally:
        store.close()  # saves the shard's key index: the next stage opens the store without reading it


def _collect(params: Params, jobs: list[Job], store: ResponseStore, shard: str, desc: str) -> list[Outcome]:
    if store.root != STORE_DIR:  # a shared store: the project's own shard (a DVC output) stays as it is
        STORE_DIR.mkdir(exist_ok=True)
        (STORE_DIR / f"{shard}.jsonl").touch(exist_ok=True)
    replayed, todo = asyncio.run(stored_or_missing(params, jobs, store))
    if not todo:
        print(f"{desc}: all {len(jobs)} samples are in the store; no requests sent")
        return replayed
    del replayed  # the live run replays the stored ones again, in plan order with the rest
    check_may_request(desc, len(todo), len(jobs))
    print(f"{desc}: {len(jobs) - len(todo)}/{len(jobs)} samples in the store; requesting {len(todo)}"
          + (" through the Batch API (sampling.mode: batch)" if params.sampling.mode == "batch" else ""))
    if params.sampling.mode == "batch":
        from .batch import collect as collect_batches

        outcomes = collect_batches(params, jobs, store, desc)
    else:
        with model_endpoint(params) as client:
            outcomes = asyncio.run(Engine(params, store, client, desc).run(jobs, set(todo)))
    asked = set(todo)
    failures = [o for o in outcomes if o.job in asked and o.error is not None]
    if failures and len(failures) == len(asked):
        raise NoAnswers(_no_answers(params, desc, len(failures), len(asked), failures[-1].error))
    if failures:
        print(f"{desc}: warning: {len(failures)} of {len(asked)} samples requested failed after retries (last "
              f"error: {failures[-1].error}); they are kept with status failed-after-retries and asked again "
              "by the next run", file=sys.stderr)
    return outcomes


def _no_answers(params: Params, desc: str, failures: int, total: int, last_error: str | None) -> str:
    """One line for a stage whose every request failed: what, how many, the last error, what to do."""
    if last_error is not None and "timeout" in last_error:
        hint = (f"every request timed out after model.request_timeout = {params.model.request_timeout:g}s: the "
                "server answers but does not complete requests (a wedged server, a proxy whose upstream is "
                "down); check its logs, or raise model.request_timeout if the model is only slow")
    else:
        hint = "check the server's logs, model.base_url and model.name"
    counted = f"all {failures} samples requested" if failures == total else f"the first {failures} of {total} samples"
    return (f"{desc}: {counted} failed after retries, with no response at all (last error: {last_error}); "
            f"{hint}; nothing was stored for them and no output was written, rerun `harness {desc}` once the "
            "server answers")


def _rejected(desc: str, problems: int, exc: RequestRejected) -> str:
    return (f"{desc}: the server rejected the requests of the first {problems} problems and answered none ({exc}); "
            "every request of this run has the same shape, so fix params.yaml first (reasoning models: "
            "sampling.temperature: null, sampling.top_p: null, budgets.cap_field: max_completion_tokens; check "
            "model.name). Nothing was stored for the rejected requests.")


def _postfix(counters: Counters, elapsed: float) -> dict[str, str]:
    rate = f"{counters.completion_tokens / elapsed:.0f}" if elapsed else "-"
    return {"tok/s": rate, "retries": str(counters.retries), "failed": str(counters.failures)}


class StoreFirstFetch:
    """The chain's fetch in a live run: the store first, then the same request already in flight, then the
    model. Each request sent is claimed first (another run asking for it waits for its response instead of
    paying twice) and its response committed to the store before anyone uses it. Once a store write fails
    (`halted`) nothing new is sent."""

    def __init__(self, store: ResponseStore, client: Router):
        self.store, self.client = store, client
        self.commit = GroupCommit(store)
        self.claims = Claims(store.root)
        self.inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.halted: StoreWriteFailed | None = None  # the first store write that failed: nothing new is sent

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        key = request_key(request)
        record = self.store.get(key)
        if record is not None:
            return dict(record["response"])
        if key in self.inflight:
            return dict(await asyncio.shield(self.inflight[key]))
        if self.halted:
            raise Halted()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            response = await self.send(key, request)
            future.set_result(response)
            return response
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del self.inflight[key]

    async def send(self, key: str, request: dict[str, Any]) -> dict[str, Any]:
        """Claim the request, ask the model, store the response, release the claim (in that order, so a
        run that finds the claim gone finds the response in the store)."""
        owner = self.claims.take(key)
        self.store.refresh()  # stored by another run since we looked (before it released its claim)
        record = self.store.get(key)
        if record is not None:
            self.claims.release(key)
            return dict(record["response"])
        if owner is not None:
            raise Busy(owner)
        try:
            response = await self.client.complete(request)
            await self.commit(request, response)  # persisted before anything else happens to it
            return response
        finally:
            self.claims.release(key)

    async def heartbeat(self) -> None:
        while True:  # our claims stay fresh while their requests are in flight, however long they take
            await asyncio.sleep(self.claims.lease_s / 4)
            self.claims.heartbeat()


class Engine:
    """`sampling.concurrency` workers per endpoint, each carrying one sample through its whole chain, and
    how the run stops: Ctrl-C, a full disk, a server that rejects or never answers.

    Workers (rather than one task per request behind a semaphore) keep a sample's requests back to
    back, so a forced answer reuses the server's cached prefix, and finished samples show up at once.
    Identical requests in flight at the same time (samples sharing an `n`-choice request) are sent once
    (StoreFirstFetch).
    """

    def __init__(self, params: Params, store: ResponseStore, client: Router, desc: str):
        self.params, self.store, self.client, self.desc = params, store, client, desc
        self.fetch = StoreFirstFetch(store, client)
        self.stop = asyncio.Event()
        self.rejected_problems: set[str] = set()
        self.not_before: dict[int, float] = {}  # a job left for another run is retried from this time on
        self.others: set[str] = set()  # runs whose claims we waited for
        self.failures = 0
        self.workers = params.sampling.concurrency * len(client.clients)
        self.tasks: list[asyncio.Future[None]] = []

    async def run(self, jobs: list[Job], todo: set[Job]) -> list[Outcome]:
        """Every job's outcome (those not in `todo` replayed from the store); raises if the run stops early."""
        self.jobs, self.todo = jobs, todo
        self.results: list[Outcome | None] = await self._replayed()
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        for index, job in enumerate(jobs):
            if job in todo:
                self.queue.put_nowait(index)
        self.bar = tqdm(total=len(todo), desc=self.desc, unit="sample", dynamic_ncols=True)
        loop = asyncio.get_running_loop()
        self.tasks = [asyncio.ensure_future(self.worker()) for _ in range(self.workers)]
        beating = asyncio.ensure_future(self.fetch.heartbeat())
        try:
            loop.add_signal_handler(signal.SIGINT, self.on_sigint)
        except (NotImplementedError, RuntimeError):  # not the main thread: plain KeyboardInterrupt applies
            pass
        try:
            await asyncio.gather(*self.tasks)
        except asyncio.CancelledError:
            pass
        except BaseException:
            self.stop.set()  # a stage-ending error: the other workers send nothing new, their requests land
            await asyncio.gather(*self.tasks, return_exceptions=True)
            raise
        finally:
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError):
                pass
            beating.cancel()
            self.fetch.claims.release_all()
            self.bar.close()
            await self.client.close()
        return self.finished()

    async def _replayed(self) -> list[Outcome | None]:
        done = [job for job in self.jobs if job not in self.todo]
        outcomes = iter(await replay(self.params, done, self.store, slim=True))
        return [None if job in self.todo else next(outcomes) for job in self.jobs]

    async def worker(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop.is_set() and not self.queue.empty():
            index = self.queue.get_nowait()
            wait = self.not_before.pop(index, 0.0) - loop.time()
            if wait > 0:  # every job left is being asked by another run: give it time to answer
                await asyncio.sleep(wait)
            if await self.carry(index):
                self.bar.update(1)
                self.bar.set_postfix(_postfix(self.client.counters, self.bar.format_dict.get("elapsed") or 0),
                                     refresh=False)

    async def carry(self, index: int) -> bool:
        """One sample through its chain; False when it is not done (left for later, or the run halted)."""
        job = self.jobs[index]
        try:
            self.results[index] = lean(await walk(self.params, job, self.fetch))  # the text stays in the store
        except Busy as exc:
            self.wait_for_other_run(index, exc.owner)
            return False
        except StoreWriteFailed as exc:
            self.halt(exc)
            return False
        except Halted:
            return False
        except RequestRejected as exc:
            self.results[index] = failed(self.params, job, exc)
            self.rejected(job, exc)
        except RequestFailed as exc:
            self.results[index] = failed(self.params, job, exc)
            self.failures += 1
            if self.client.counters.responses == 0 and self.failures >= max(REJECTIONS_BEFORE_STOP, self.workers):
                # a whole round of workers and not one answer: the server is down or wedged, stop instead of
                # waiting out every remaining sample's timeouts
                self.stop.set()
                raise NoAnswers(_no_answers(self.params, self.desc, self.failures, len(self.todo), str(exc))) from None
        return True

    def rejected(self, job: Job, exc: RequestRejected) -> None:
        """A 4xx for this sample; for the first problems with no answer at all, the request shape is wrong."""
        self.rejected_problems.add(job.problem_id)
        if self.client.counters.responses == 0 and len(self.rejected_problems) >= REJECTIONS_BEFORE_STOP:
            raise RunRejected(_rejected(self.desc, len(self.rejected_problems), exc)) from None

    def wait_for_other_run(self, index: int, owner: str) -> None:
        if owner not in self.others:
            self.others.add(owner)
            print(f"\n{self.desc}: another run ({owner}) is asking for some of these requests; waiting for its "
                  "responses instead of paying twice", file=sys.stderr)
        self.not_before[index] = asyncio.get_running_loop().time() + CLAIM_POLL_S
        self.queue.put_nowait(index)

    def halt(self, exc: StoreWriteFailed) -> None:
        if not self.fetch.halted:
            self.fetch.halted = exc
            self.stop.set()
            print(f"\n{self.desc}: stopping: cannot write {exc.what}; no new requests; waiting for the ones in "
                  "flight", file=sys.stderr)

    def on_sigint(self) -> None:
        if self.stop.is_set():  # second Ctrl-C: stop now, in-flight responses are abandoned
            for task in self.tasks:
                task.cancel()
            return
        self.stop.set()
        print(f"\n{self.desc}: stopping: no new requests; waiting for the ones in flight to land in the store "
              "(Ctrl-C again to stop now)", file=sys.stderr)

    def finished(self) -> list[Outcome]:
        """The outcomes, or why the run stopped before every sample was done."""
        left = sum(1 for r in self.results if r is None)
        failure, commit = self.fetch.halted, self.fetch.commit
        if failure:
            raise StoreWriteFailed(failure.path, failure.error, message=(
                f"{self.desc}: stopped spending: cannot write {failure.what}; {commit.unstored} response(s) "
                f"received could not be stored and will be requested again, {commit.stored} stored by this "
                f"run will not be; {left} of {len(self.jobs)} samples not done and no output written. "
                f"{failure.advice}, then rerun `harness {self.desc}` to resume"
            ))
        if left:
            raise Interrupted(
                f"{self.desc}: interrupted with {left} of {len(self.jobs)} samples left; every response received "
                f"is in {store_dir()}/, rerun to resume"
            )
        return [r for r in self.results if r is not None]
