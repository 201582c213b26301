"""`sampling.mode: batch`: the missing requests go through OpenAI's Batch API, at half the price.

How: the requests every sample still needs (chain.first_missing: the first request, or the top-up, Wait
continuation or forced answer that follows a stored response) are written to a JSONL file, uploaded with
`purpose=batch`, and submitted as one batch (24 h window) per endpoint; when the batch ends its output
file is downloaded and every answer is stored under the same key a live response would have (so a
batch-filled store replays with HARNESS_NO_REQUESTS=1 and a live run reuses it). Multi-request chains
(forcing, Wait) take one such round per step, until no sample needs anything.

Why a journal: a batch is paid for once it runs, and waiting for it takes hours. Before anything is
uploaded, `<store>/.batches/<token>.json` records the requests (custom_id = request key) and a token the
batch carries in its metadata; the batch id is added (fsynced) the moment the batch exists, before any
waiting. A killed run therefore resumes by polling the same batch, never by submitting it again; killed
between creating the batch and recording its id, the rerun finds the batch by its token. A finished
batch's journal moves to `.batches/done/` only after its answers are in the store.

Requests a batch did not answer (the batch failed validation, expired or was cancelled, or one request
failed with a 5xx/429) are resubmitted once in the next round and reported; a request that fails again,
or that the server rejects (4xx), leaves its sample `failed-after-retries`, asked again by the next run.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import openai
from openai.types import Completion
from openai.types.chat import ChatCompletion

from ..files import process_alive, write_json
from ..params import Params
from .chain import Job, Missing, Outcome, failed, first_missing, lean, walk
from .client import (
    AuthFailed,
    EmptyChoices,
    RequestFailed,
    RequestRejected,
    api_key_for,
    describe_error,
    response_record,
)
from .store import ResponseStore, StoreError, _locked, lease_seconds, request_key

JOURNAL_DIR = ".batches"
URLS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
WINDOW: Literal["24h"] = "24h"
TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_REQUESTS = 50_000  # OpenAI's limit per batch (and 200 MB per input file)
MAX_BYTES = 190 * 1024 * 1024
ATTEMPTS = 2  # a request is submitted at most this often per run: the first time, and resubmitted once
RETRYABLE = {408, 409, 429}


def batch_body(request: dict[str, Any]) -> dict[str, Any]:
    """What the SDK would send for this request: the body without our `endpoint`, `extra_body` merged in."""
    body = {k: v for k, v in request.items() if k not in ("endpoint", "extra_body")}
    return {**body, **request.get("extra_body", {})}


def input_line(request: dict[str, Any]) -> str:
    return json.dumps({"custom_id": request_key(request), "method": "POST", "url": URLS[request["endpoint"]],
                       "body": batch_body(request)}, sort_keys=True, ensure_ascii=False) + "\n"


def chunks(requests: dict[str, dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """The requests split into batches: one endpoint each, within OpenAI's count and size limits."""
    out: list[dict[str, dict[str, Any]]] = []
    for endpoint in sorted({r["endpoint"] for r in requests.values()}):
        current: dict[str, dict[str, Any]] = {}
        size = 0
        for key, request in requests.items():
            if request["endpoint"] != endpoint:
                continue
            line = len(input_line(request).encode())
            if current and (len(current) >= MAX_REQUESTS or size + line > MAX_BYTES):
                out.append(current)
                current, size = {}, 0
            current[key] = request
            size += line
        if current:
            out.append(current)
    return out


@dataclass
class Entry:
    """One submitted (or about to be submitted) batch, as its journal file holds it."""

    path: Path
    data: dict[str, Any]

    @property
    def requests(self) -> dict[str, dict[str, Any]]:
        return self.data["requests"]  # type: ignore[no-any-return]


class Journal:
    """`<store>/.batches/`: one JSON file per batch in flight, written atomically and fsynced.

    The run waiting for a batch touches its file at every poll; a file untouched for `stale_after`
    seconds (or whose process is gone, on this host) belongs to a run that is no more, and is adopted.
    """

    def __init__(self, root: Path, stale_after: float = 150.0):
        self.dir = root / JOURNAL_DIR
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self.stale_after = stale_after

    def new(self, endpoint: str, requests: dict[str, dict[str, Any]], attempt: int) -> Entry:
        token = secrets.token_hex(8)
        entry = Entry(self.dir / f"{token}.json", {"v": 1, "token": token, "owner": self.me, "endpoint": endpoint,
                                                   "attempt": attempt, "batch_id": None, "input_file_id": None,
                                                   "requests": requests})
        self.save(entry)
        return entry

    def save(self, entry: Entry) -> None:
        write_json(entry.path, entry.data)  # temp file, fsync, rename, fsync of the directory

    def done(self, entry: Entry) -> None:
        (self.dir / "done").mkdir(parents=True, exist_ok=True)
        try:
            os.replace(entry.path, self.dir / "done" / entry.path.name)
        except FileNotFoundError:
            pass  # another run adopted and finished it meanwhile: its answers are in the store

    def heartbeat(self, entry: Entry) -> None:
        try:
            os.utime(entry.path)
        except OSError:
            pass  # at worst another run adopts the entry and polls the same batch: nothing is paid twice

    def adopt(self) -> tuple[list[Entry], set[str]]:
        """Entries to finish: ours, and those of runs that are gone (a killed run's batches); and the
        request keys of batches another live run is waiting for (left to it)."""
        if not self.dir.is_dir():
            return [], set()
        mine, theirs = [], set()
        with _locked(self.dir / ".lock"):
            for path in sorted(self.dir.glob("*.json")):
                entry = Entry(path, json.loads(path.read_text(encoding="utf-8")))
                host, _, pid = str(entry.data.get("owner", "")).partition(":")
                fresh = time.time() - path.stat().st_mtime < self.stale_after
                if host == socket.gethostname():
                    alive = pid.isdigit() and process_alive(int(pid)) and fresh
                else:  # another machine sharing the store: alive while it keeps the entry fresh
                    alive = fresh
                if entry.data.get("owner") != self.me and alive:
                    theirs |= set(entry.requests)
                    continue
                if entry.data.get("owner") != self.me:
                    entry.data["owner"] = self.me
                    self.save(entry)
                mine.append(entry)
        return mine, theirs


@dataclass
class Result:
    """What one finished batch left to do: requests it did not answer, with the reason, and which of
    them may be resubmitted."""

    unanswered: dict[str, str] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)


class BatchAPI:
    """One journal entry's batch at the provider: upload and create it (its id journaled the moment it
    exists), find it again by its token, wait for it, download its answers into the store."""

    def __init__(self, sdk: openai.OpenAI, journal: Journal, store: ResponseStore, poll_s: float,
                 say: Callable[[str], None]):
        self.sdk, self.journal, self.store, self.poll_s, self.say = sdk, journal, store, poll_s, say
        self.batches = 0

    def create(self, entry: Entry) -> None:
        data = "".join(input_line(r) for r in entry.requests.values()).encode("utf-8")
        uploaded = self.sdk.files.create(file=(f"{entry.data['token']}.jsonl", data, "application/jsonl"),
                                         purpose="batch")
        entry.data["input_file_id"] = uploaded.id
        self.journal.save(entry)
        batch = self.sdk.batches.create(input_file_id=uploaded.id, endpoint=URLS[entry.data["endpoint"]],  # type: ignore[arg-type]
                                        completion_window=WINDOW,
                                        metadata={"harness_token": entry.data["token"]})
        entry.data["batch_id"] = batch.id
        self.journal.save(entry)
        self.batches += 1
        self.say(f"batch {batch.id} submitted: {len(entry.requests)} requests (attempt {entry.data['attempt']}); "
                 f"polling every {self.poll_s:g} s. Killed, a rerun waits for this batch instead of submitting "
                 "again")

    def find(self, entry: Entry) -> str | None:
        """A batch created for this journal entry whose id was not recorded (killed in between)."""
        for batch in self.sdk.batches.list(limit=100):
            if (batch.metadata or {}).get("harness_token") == entry.data["token"]:
                return batch.id
        return None

    def wait(self, entry: Entry) -> Any:
        batch_id, last = entry.data["batch_id"], None
        while True:
            self.journal.heartbeat(entry)
            batch = self.sdk.batches.retrieve(batch_id)
            counts = batch.request_counts
            state = (batch.status, counts.completed if counts else None, counts.failed if counts else None)
            if state != last:
                done = f" ({counts.completed}/{counts.total} done, {counts.failed} failed)" if counts else ""
                self.say(f"batch {batch_id}: {batch.status}{done}")
                last = state
            if batch.status in TERMINAL:
                return batch
            time.sleep(self.poll_s)

    def store_results(self, entry: Entry, batch: Any) -> Result:
        requests, result = entry.requests, Result()
        answers = self.read(batch.output_file_id) + self.read(batch.error_file_id)
        pairs = []
        for line in answers:
            key = line.get("custom_id")
            if key not in requests:
                continue
            response = line.get("response") or {}
            status = response.get("status_code")
            if status == 200:
                try:
                    record = parse(entry.data["endpoint"], response.get("body") or {})
                except (EmptyChoices, ValueError) as exc:
                    result.unanswered[key] = f"batch {batch.id}: unusable answer ({type(exc).__name__})"
                    continue
                record["batch_id"] = batch.id
                if key not in self.store:  # a rerun downloads a stored batch again: store nothing twice
                    pairs.append((requests[key], record))
                continue
            error = line.get("error") or (response.get("body") or {}).get("error") or {}
            message = error.get("message") or error.get("code") or "no response"
            result.unanswered[key] = f"batch {batch.id}: {f'HTTP {status}: ' if status else ''}{message}"[:300]
            if status is not None and 400 <= status < 500 and status not in RETRYABLE:
                result.rejected.add(key)
        if pairs:
            self.store.append_many(pairs)
        for key in requests:
            if key not in self.store and key not in result.unanswered:
                reason = batch.status if batch.status != "completed" else "no line in the output"
                result.unanswered[key] = f"batch {batch.id} {reason}; request not run"
        if batch.status != "completed":
            errors = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
            self.say(f"batch {batch.id} {batch.status}{f' ({errors})' if errors else ''}: "
                     f"{len(result.unanswered)} of {len(requests)} requests unanswered")
        return result

    def read(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        text = self.sdk.files.content(file_id).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class BatchRunner:
    """Rounds of batches until every job's chain is in the store (or failed): each round submits the next
    request every unfinished chain needs, resumes a killed run's batches first, resubmits what a batch left
    unanswered once."""

    def __init__(self, params: Params, store: ResponseStore, desc: str, sdk: openai.OpenAI | None = None):
        self.params, self.store, self.desc = params, store, desc
        m = params.model
        sdk = sdk or openai.OpenAI(base_url=str(m.base_url), api_key=api_key_for(m, m.base_url),
                                   timeout=m.request_timeout, max_retries=m.max_retries)
        self.journal = Journal(store.root, stale_after=max(lease_seconds(), 5 * params.sampling.batch_poll_s))
        self.api = BatchAPI(sdk, self.journal, store, params.sampling.batch_poll_s, self.say)
        self.attempts: Counter[str] = Counter()
        self.errors: dict[str, str] = {}  # request key -> why it has no response (final for this run)
        self.rejected: set[str] = set()
        self.resubmitted = 0

    def say(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=sys.stderr, flush=True)

    def run(self, jobs: list[Job]) -> list[Outcome]:
        while True:
            mine, theirs = self.journal.adopt()
            for entry in mine:  # a killed run's batches first: they are paid for, or about to be
                for key in entry.requests:
                    self.attempts[key] = max(self.attempts[key], int(entry.data.get("attempt", 1)))
                self.finish(entry)
            self.store.refresh()
            needed = self.next_round(jobs)
            waiting = {k for k in needed if k in theirs}
            todo = {k: r for k, r in needed.items() if k not in theirs}
            if not todo and not waiting:
                break
            if not todo:  # only requests another live run has in a batch: wait for its answers
                time.sleep(self.params.sampling.batch_poll_s)
                continue
            for key in todo:
                self.attempts[key] += 1
            for part in chunks(todo):
                self.finish(self.submit(part))
        if self.resubmitted or self.errors:
            self.say(f"{self.resubmitted} requests resubmitted after an unfinished batch; {len(self.errors)} "
                     "still without a response (their samples are failed-after-retries, asked again by the "
                     "next run)")
        return asyncio.run(self.outcomes(jobs))

    def next_round(self, jobs: list[Job]) -> dict[str, dict[str, Any]]:
        """The next request of every sample whose chain is not stored yet (deduplicated by key), leaving
        out the ones that have failed for good in this run."""

        async def gather() -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for job in jobs:
                missing = await first_missing(self.params, job, self.store)
                if missing is not None and request_key(missing.request) not in self.errors:
                    out.setdefault(request_key(missing.request), missing.request)
            return out

        return asyncio.run(gather())

    def submit(self, requests: dict[str, dict[str, Any]]) -> Entry:
        """Journal first, then upload and create: the batch id is on disk before anyone waits for it."""
        endpoint = next(iter(requests.values()))["endpoint"]
        attempt = max(self.attempts[k] for k in requests)
        entry = self.journal.new(endpoint, requests, attempt)
        self.api.create(entry)
        return entry

    def finish(self, entry: Entry) -> None:
        """Wait for the entry's batch, store its answers, note what it left unanswered, close the entry."""
        if entry.data.get("batch_id") is None:
            found = self.api.find(entry)
            if found is None:
                self.api.create(entry)  # never created: nothing was paid, submit it now
            else:
                entry.data["batch_id"] = found
                self.journal.save(entry)
        result = self.api.store_results(entry, self.api.wait(entry))
        for key, reason in result.unanswered.items():
            if key in result.rejected or self.attempts[key] >= ATTEMPTS:
                self.errors[key] = reason
                if key in result.rejected:
                    self.rejected.add(key)
            else:
                self.resubmitted += 1
        self.journal.done(entry)

    async def outcomes(self, jobs: list[Job]) -> list[Outcome]:
        """Every job from the store; a job whose chain stops at a request the batches could not answer
        is failed with the batch's reason (a 4xx as a rejection)."""

        async def fetch(request: dict[str, Any]) -> dict[str, Any]:
            key = request_key(request)
            record = self.store.get(key)
            if record is not None:
                return dict(record["response"])
            reason = self.errors.get(key, "no response from the batches")
            raise (RequestRejected if key in self.rejected else RequestFailed)(reason)

        out = []
        for job in jobs:
            try:
                out.append(lean(await walk(self.params, job, fetch)))  # the text stays in the store
            except (RequestFailed, Missing) as exc:
                out.append(failed(self.params, job, exc))
        return out


def parse(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """A batch output body as the record a live response would have been (same SDK types, same parser)."""
    raw = ChatCompletion.model_validate(body) if endpoint == "chat" else Completion.model_validate(body)
    return response_record(endpoint, raw)


def collect(params: Params, jobs: list[Job], store: ResponseStore, desc: str) -> list[Outcome]:
    """Every job's outcome, the missing requests answered through batches (see the module docstring)."""
    if not params.model.endpoints[0].startswith(("http://", "https://")):
        raise StoreError(f"{desc}: sampling.mode batch needs an http(s) model.base_url")
    try:
        return BatchRunner(params, store, desc).run(jobs)
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise AuthFailed(f"{describe_error(exc)}; check the key in the variable named by model.api_key_env") from None
    except openai.APIError as exc:  # the Files/Batches API itself, after the SDK's retries
        raise RequestFailed(
            f"{desc}: the Batch API failed ({describe_error(exc)}); batches already submitted are in "
            f"{store.root / JOURNAL_DIR}/ and a rerun waits for them instead of submitting again"
        ) from None
