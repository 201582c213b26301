"""Batch mode end to end against tests/fake_batch.py (OpenAI's Files + Batch protocol), and the dollars.

Checked: a batch run fills the store with the responses a live run would have stored (it replays with
HARNESS_NO_REQUESTS=1 and live mode), chains take successive rounds, every request is paid once, a run
SIGKILLed while waiting resumes by polling the same batch (never submitting again), expired / failed
batches are resubmitted once and reported, and metrics.json's dollars equal tokens x prices (cached input,
batch discount) counted independently from what the server billed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from fake_batch import BatchAPI

from harness.cli import main

PRICES = {"input_per_million": 2.0, "cached_input_per_million": 0.5, "output_per_million": 8.0, "batch_discount": 0.5}
BATCH = {"mode": "batch", "batch_poll_s": 0.01}


@pytest.fixture
def batch_api(fake_model):
    fake_model.batch = BatchAPI(fake_model)
    return fake_model.batch


def _batch_inputs(api: BatchAPI) -> list[list[str]]:
    """The custom_ids of every batch created, in order."""
    return [[json.loads(line)["custom_id"] for line in api.contents[api.batches[b]["input_file_id"]].splitlines()]
            for b in api.order]


def _metrics() -> dict:
    return json.loads(Path("outputs/metrics.json").read_text())


def test_a_batch_run_stores_what_a_live_run_would_and_replays(project, fake_model, batch_api, capsys):
    project(fake_model.url, sampling=BATCH, prices=PRICES)
    assert main(["run"]) == 0
    assert fake_model.requests == [], "batch mode sent live requests"
    inputs = _batch_inputs(batch_api)
    assert len(inputs) >= 2, "forcing chains need a second round (the forced answers)"
    every = [key for batch in inputs for key in batch]
    assert len(every) == len(set(every)), "a request was submitted twice"
    assert set(fake_model.successes.values()) == {1}, "something was paid twice"
    samples = pd.read_csv("outputs/samples.csv")
    assert set(samples["billing"]) == {"batch"} and set(samples["status"]) <= {"ok", "truncated", "no-answer-found"}
    out = capsys.readouterr()
    assert "submitted" in out.err and "completed" in out.err
    assert _metrics()["cost"]["dollars_batch"] == _metrics()["cost"]["dollars"] > 0

    before = {p: Path(p).read_bytes() for p in ("outputs/samples.csv", "outputs/metrics.json")}
    project(fake_model.url, prices=PRICES)  # live mode now: the batch-filled store answers everything
    os.environ["HARNESS_NO_REQUESTS"] = "1"
    try:
        assert main(["run"]) == 0
    finally:
        del os.environ["HARNESS_NO_REQUESTS"]
    assert fake_model.requests == [] and len(batch_api.order) == len(inputs)
    assert {p: Path(p).read_bytes() for p in before} == before


def _expected_dollars(fake_model, store: Path, cached: int, batch: bool) -> float:
    """Independently of the harness's tables: every billable response the server sent, its usage as sent
    (prompt 10 tokens, `cached` of them cached; completion tokens as stored), times PRICES."""
    responses = sum(fake_model.successes.values())
    output = sum(json.loads(line)["response"]["completion_tokens"] for shard in store.glob("*.jsonl")
                 for line in shard.read_text().splitlines())
    full = ((10 - cached) * responses * PRICES["input_per_million"] + cached * responses * PRICES["cached_input_per_million"]
            + output * PRICES["output_per_million"]) / 1e6
    return full * (1 - PRICES["batch_discount"]) if batch else full


@pytest.mark.parametrize("mode", ["live", "batch"])
def test_dollars_in_metrics_are_tokens_times_prices_with_cached_input_and_the_batch_discount(
        mode, project, fake_model, batch_api, capsys):
    fake_model.cached_tokens = 4
    project(fake_model.url, sampling={**BATCH, "mode": mode}, prices=PRICES)
    assert main(["run"]) == 0
    cost = _metrics()["cost"]
    expected = _expected_dollars(fake_model, Path("store"), cached=4, batch=mode == "batch")
    assert cost["dollars"] == pytest.approx(expected, abs=1e-6)
    responses = sum(fake_model.successes.values())
    assert cost["input_tokens"] == 10 * responses and cost["cached_input_tokens"] == 4 * responses
    assert cost["prices"]["batch_discount"] == 0.5 and "tokens_paid" in cost  # today's token fields stay
    summary = capsys.readouterr().out.split("summary:\n", 1)[1]
    assert f"cost         ${expected:,.2f}" in summary, summary  # the run summary shows the same figure


def test_a_run_killed_while_waiting_resumes_the_same_batch_without_submitting_again(
        project, fake_model, batch_api, capsys):
    project(fake_model.url, sampling=BATCH, prices=PRICES)
    assert main(["fetch"]) == 0
    batch_api.hold = True  # the batch stays in progress: the run waits, and is killed while it waits
    run = subprocess.Popen([sys.executable, "-m", "harness.cli", "sample"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    journal = Path("store/.batches")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        entries = [json.loads(p.read_text()) for p in journal.glob("*.json")] if journal.is_dir() else []
        if entries and entries[0]["batch_id"] and batch_api.polls[entries[0]["batch_id"]] >= 3:
            break
        time.sleep(0.05)
    else:
        run.kill()
        pytest.fail(f"no batch was journaled: {run.communicate()}")
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert batch_api.created == 1
    first = batch_api.order[0]
    assert entries[0]["batch_id"] == first and set(entries[0]["requests"]) == set(_batch_inputs(batch_api)[0])

    batch_api.hold = False
    polls = batch_api.polls[first]
    assert main(["sample"]) == 0
    assert batch_api.polls[first] > polls, "the rerun did not poll the batch the killed run submitted"
    inputs = _batch_inputs(batch_api)
    every = [key for batch in inputs for key in batch]
    assert len(every) == len(set(every)), "the rerun submitted requests the killed run had already submitted"
    assert set(fake_model.successes.values()) == {1}
    assert not list(journal.glob("*.json")) and len(list((journal / "done").glob("*.json"))) == len(inputs)
    assert "failed-after-retries" not in set(pd.read_csv("outputs/samples.csv")["status"])


def test_a_run_killed_before_recording_the_batch_id_finds_its_batch_by_token(project, fake_model, batch_api):
    """The window between `batches.create` and the journal write: the batch carries the entry's token."""
    from harness.params import load_params
    from harness.requests.batch import BatchRunner, Journal
    from harness.requests.store import ResponseStore

    project(fake_model.url, sampling=BATCH)
    params = load_params()
    runner = BatchRunner(params, ResponseStore("store", "sample"), "sample")
    request = {"endpoint": "completions", "prompt": "What is 2 + 3?", "max_tokens": 64, "model": "fake", "seed": 1}
    from harness.requests.store import request_key

    entry = runner.journal.new("completions", {request_key(request): request}, 1)
    runner.api.create(entry)
    entry.data["batch_id"] = None  # as if killed before the id reached the journal
    runner.journal.save(entry)

    again = BatchRunner(params, ResponseStore("store", "sample"), "sample")
    mine, _ = Journal(Path("store")).adopt()
    again.finish(mine[0])
    assert batch_api.created == 1 and request_key(request) in again.store


def test_an_expired_batch_is_resubmitted_once_and_reported(project, fake_model, batch_api, capsys):
    project(fake_model.url, sampling=BATCH)
    batch_api.expire_next = 1  # the first batch answers half its requests, then expires
    assert main(["run"]) == 0
    err = capsys.readouterr().err
    assert "expired" in err and "resubmitted" in err
    first, second = (set(ids) for ids in _batch_inputs(batch_api)[:2])
    expired = batch_api.batches[batch_api.order[0]]
    assert expired["status"] == "expired"
    answered = {json.loads(line)["custom_id"] for line in batch_api.contents[expired["output_file_id"]].splitlines()}
    assert 0 < len(answered) < len(first)
    # the next round resubmits the unanswered ones (with the forced answers the answered ones now need)
    assert first - answered <= second and not (answered & second)
    assert set(fake_model.successes.values()) == {1}
    assert "failed-after-retries" not in set(pd.read_csv("outputs/samples.csv")["status"])


def test_requests_failing_twice_are_failed_samples_and_the_next_run_asks_again(project, fake_model, batch_api, capsys):
    project(fake_model.url, sampling=BATCH)
    batch_api.error_rate = 1.0  # every request of every batch fails with a 500
    assert main(["fetch"]) == 0
    assert main(["calibrate"]) == 2  # every sample failed: the stage stops with one line, nothing written
    err = capsys.readouterr().err
    assert "resubmitted" in err and "HTTP 500" in err
    assert batch_api.created == 2, "submitted, resubmitted once, then given up"
    batch_api.error_rate = 0.0
    assert main(["calibrate"]) == 0  # the next run asks again
    assert set(fake_model.successes.values()) == {1}


def test_a_batch_that_fails_validation_is_resubmitted(project, fake_model, batch_api, capsys):
    project(fake_model.url, sampling=BATCH)
    batch_api.fail_next = 1
    assert main(["run"]) == 0
    assert batch_api.batches[batch_api.order[0]]["status"] == "failed"
    assert "failed" in capsys.readouterr().err
    assert set(fake_model.successes.values()) == {1}


def test_batch_mode_needs_one_http_endpoint(project, capsys):
    project("embedded", sampling=BATCH)
    assert main(["estimate"]) == 2
    assert "sampling.mode = 'batch'" in capsys.readouterr().err


def test_a_batch_of_another_machine_is_left_to_it_while_fresh_and_adopted_once_stale(tmp_path):
    """A store on a shared filesystem: another host's journal entry is its own while that host keeps it
    fresh (touched at every poll); untouched for longer than the stale time, its batch is adopted."""
    from harness.requests.batch import Journal

    other = Journal(tmp_path)
    other.me = "another-host:4242"
    entry = other.new("completions", {"k1": {"endpoint": "completions"}}, 1)
    mine, theirs = Journal(tmp_path, stale_after=60).adopt()
    assert mine == [] and theirs == {"k1"}
    old = time.time() - 120
    os.utime(entry.path, (old, old))
    mine, theirs = Journal(tmp_path, stale_after=60).adopt()
    assert [e.data["token"] for e in mine] == [entry.data["token"]] and theirs == set()


def test_estimate_prices_batch_mode_at_the_discount_and_names_the_other_mode(project, fake_model, capsys):
    totals = {}
    dear = {"input_per_million": 1e6, "output_per_million": 1e6}  # $1 a token: totals far above rounding
    for mode in ("live", "batch"):
        project(fake_model.url, sampling={**BATCH, "mode": mode}, prices=dear)
        assert main(["estimate"]) == 0
        out = capsys.readouterr().out
        totals[mode] = float(next(line for line in out.splitlines() if line.startswith("total")).split()[-1])
        other = "batch" if mode == "live" else "live"
        assert out.splitlines()[-1].startswith(f"sampling.mode: {mode}; in {other} mode the total would be $")
    assert totals["live"] > 100
    assert totals["batch"] == pytest.approx(totals["live"] * 0.5, abs=0.011)  # the default batch_discount
    assert fake_model.requests == [] and fake_model.batch is None
