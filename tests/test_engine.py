"""The sampling engine under faults, kills and interrupts, against real local HTTP servers."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fake_server import FakeModel, body_key, serve

from harness.cli import main
from harness.requests.client import backoff_seconds, retry_after_seconds
from harness.requests.store import shard_files
from harness.stages.sample import STATUSES

TESTS = Path(__file__).resolve().parent


# The request timeout is far above what an honest answer takes even on a loaded machine (milliseconds
# idle, a few seconds at worst): at 1.0 s a slow but honest answer was timed out, billed by the server
# all the same and asked again, and the test failed on a double payment the harness did not cause.
# Only the injected `timeout` fault (hang_s, above it) may time out; each costs this many seconds.
ROBUST = {"request_timeout": 5.0, "max_retries": 8, "backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture
def faulty_model():
    model = FakeModel(fault_rate=0.3, hang_s=ROBUST["request_timeout"] + 1.0)  # an injected hang outlasts the timeout
    server, url = serve(model)
    model.url = url
    yield model
    server.shutdown()
    server.server_close()


def _stored_lines(root: Path) -> list[str]:
    """Every stored record's line, from JSON-lines shards and sealed ones (a writer's own shard is sealed when
    it closes) alike: what `zcat -f store/*` would print."""
    lines = []
    for shard in shard_files(root / "store"):
        data = shard.read_bytes()
        lines += (gzip.decompress(data) if shard.suffix == ".gz" else data).decode("utf-8").splitlines()
    return lines


def _stored_bodies(root: Path) -> list[dict]:
    requests = (json.loads(line)["request"] for line in _stored_lines(root))
    return [{k: v for k, v in request.items() if k != "endpoint"} for request in requests]


def _assert_complete(samples: pd.DataFrame, expected: int) -> None:
    assert len(samples) == expected
    assert not samples.duplicated(["problem_id", "budget", "sample"]).any()
    assert set(samples["status"]) <= set(STATUSES)


@pytest.mark.parametrize(
    ("method", "n_per_request"),
    [("forcing", 1), ("prompt", 4)],
)
def test_every_fault_at_30_percent_completes_without_paying_twice(project, faulty_model, tmp_path, method,
                                                                  n_per_request):
    project(faulty_model.url, model=ROBUST,
            budgets={"method": method, "requested": [8, 32, 64]},
            sampling={"samples": 4, "vote_samples": 8, "concurrency": 8, "n_per_request": n_per_request})
    assert main(["run"]) == 0
    samples = pd.read_csv("outputs/samples.csv")
    _assert_complete(samples, 6 * (4 + 4 + 8))
    # the server never sent a second billable answer to a request whose answer is in the store
    for body in _stored_bodies(tmp_path):
        assert faulty_model.successes[body_key(body)] == 1, body
    if n_per_request == 1:  # ~250 requests: every kind of fault has been injected
        transient = {"429", "500", "503", "timeout", "reset", "malformed", "no_choices"}
        assert transient <= set(faulty_model.injected), faulty_model.injected
    elif faulty_model.injected["fewer"]:  # (test_fewer_choices_than_asked_are_topped_up forces this case)
        assert any(r["body"].get("n", 1) < n_per_request for r in faulty_model.requests), "no top-up sent"
    billable = {"empty": "empty", "refusal": "refused"}
    for fault, status in billable.items():
        if faulty_model.injected[fault]:
            assert (samples["status"] == status).any(), (fault, samples["status"].value_counts())
    assert not samples["correct"][samples["status"] == "refused"].any()


def test_requests_failing_after_all_retries_are_kept_and_never_scored(project, fake_model, capsys):
    fake_model.fault_rate, fake_model.faults = 0.4, ("500",)
    project(fake_model.url, model={**ROBUST, "max_retries": 0}, budgets={"requested": [8, 64]},
            sampling={"samples": 1, "vote_samples": 2})
    assert main(["fetch"]) == 0
    assert main(["sample"]) == 0
    assert "failed after retries" in capsys.readouterr().err  # said, not only written in the table
    samples = pd.read_csv("outputs/samples.csv")
    _assert_complete(samples, 6 * 3)
    failed = samples[samples["status"] == "failed-after-retries"]
    assert 0 < len(failed) < len(samples)
    assert failed["error"].str.contains("HTTP 500").all()
    assert failed["correct"].isna().all()
    assert samples["correct"].notna().sum() == len(samples) - len(failed)


def test_a_stage_whose_requests_all_fail_stops_with_one_line_and_writes_nothing(project, fake_model, capsys):
    fake_model.fault_rate, fake_model.faults = 1.0, ("500",)
    project(fake_model.url, model={**ROBUST, "max_retries": 2}, budgets={"requested": [8, 64]},
            sampling={"samples": 1, "vote_samples": 2, "concurrency": 4})
    assert main(["fetch"]) == 0
    assert main(["sample"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("harness: sample: the first 4 of 18 samples failed after retries"), err
    assert "HTTP 500" in err and "rerun `harness sample`" in err
    # about one round of workers (1 try + 2 retries each), then it stops instead of trying all 18
    assert len(fake_model.requests) <= (4 + 4) * 3
    assert not Path("outputs/samples.csv").exists()
    assert Path("store/sample.jsonl").read_text() == ""
    # the vote stage says what is missing instead of building a curve on nothing
    assert main(["vote"]) == 2
    assert "run `harness sample`" in capsys.readouterr().err


def test_fewer_choices_than_asked_are_topped_up(project, fake_model):
    fake_model.fault_rate, fake_model.faults = 1.0, ("fewer",)
    project(fake_model.url, budgets={"method": "prompt", "requested": [16]},
            sampling={"samples": 4, "vote_samples": 4, "n_per_request": 4})
    assert main(["run"]) == 0
    samples = pd.read_csv("outputs/samples.csv")
    _assert_complete(samples, 6 * 4)
    ns = [r["body"].get("n", 1) for r in fake_model.requests]
    assert 4 in ns and 2 in ns, ns  # the first request asked for 4 and got 2; the top-up asked for 2


def test_retry_after_and_backoff_are_parsed_and_bounded():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "99999"}) == 120.0
    assert retry_after_seconds({}) is None
    rng = random.Random(0)
    waits = [backoff_seconds(a, 0.5, 8.0, rng) for a in range(10) for _ in range(20)]
    assert all(0 <= w <= 8.0 for w in waits)
    assert max(waits) > 4  # it grows with the attempt number (full jitter below the cap)


def _start_server(tmp_path: Path, delay: float) -> tuple[subprocess.Popen, str, Path]:
    log = tmp_path / "billable.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "fake_server.py"), "--delay", str(delay), "--log", str(log)],
        stdout=subprocess.PIPE, text=True,
    )
    url = proc.stdout.readline().strip()
    return proc, url, log


def _harness(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(path: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


def _billable_counts(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines():
        key = json.loads(line)["key"]
        counts[key] = counts.get(key, 0) + 1
    return counts


def _sample_in_a_subprocess(project, tmp_path: Path, url: str, concurrency: int, stored: int) -> subprocess.Popen:
    """`harness sample` in its own process, returned once `stored` responses are in the store."""
    project(url, budgets={"requested": [8, 32, 64]}, sampling={"samples": 4, "vote_samples": 6,
                                                                "concurrency": concurrency})
    assert main(["fetch"]) == 0
    proc = _harness("sample", cwd=tmp_path)
    _wait_for_lines(tmp_path / "store" / "sample.jsonl", stored)
    return proc


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(project, tmp_path):
    server, url, log = _start_server(tmp_path, delay=0.02)
    try:
        proc = _sample_in_a_subprocess(project, tmp_path, url, concurrency=3, stored=25)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = {body_key(b) for b in _stored_bodies(tmp_path)}
        assert 25 <= len(at_kill)
        assert not Path("outputs/samples.csv").exists()
        assert main(["sample"]) == 0
        resumed = pd.read_csv("outputs/samples.csv")
        billable = _billable_counts(log)
        # nothing that was stored before the kill was requested again
        assert all(billable[k] == 1 for k in at_kill)
        # at most the requests in flight at the kill were paid twice
        assert sum(c - 1 for c in billable.values()) <= 3
    finally:
        server.kill()

    # the same plan run uninterrupted in a fresh directory gives the same table
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("params.yaml", "problems.jsonl"):
        (fresh / name).write_text((tmp_path / name).read_text())
    server, url2, _ = _start_server(fresh, delay=0.0)
    try:
        text = (fresh / "params.yaml").read_text().replace(url, url2)
        (fresh / "params.yaml").write_text(text)
        os.chdir(fresh)
        assert main(["fetch"]) == 0
        assert main(["sample"]) == 0
        straight = pd.read_csv("outputs/samples.csv")
    finally:
        server.kill()
    columns = [c for c in straight.columns if c != "latency_s"]
    pd.testing.assert_frame_equal(resumed[columns], straight[columns])


def test_ctrl_c_stops_sending_lets_in_flight_land_and_exits_nonzero(project, tmp_path):
    server, url, log = _start_server(tmp_path, delay=0.05)
    try:
        proc = _sample_in_a_subprocess(project, tmp_path, url, concurrency=2, stored=10)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "left" in err and "rerun to resume" in err
        stored = {body_key(b) for b in _stored_bodies(tmp_path)}
        billable = _billable_counts(log)
        assert set(billable) == stored, "a response that arrived after Ctrl-C was not stored"
        assert main(["sample"]) == 0
        assert all(c == 1 for c in _billable_counts(log).values()), "something was paid twice"
    finally:
        server.kill()


def test_estimate_prices_what_is_missing_and_is_zero_for_a_warm_store(project, fake_model, capsys):
    project(fake_model.url, prices={"input_per_million": 1.0, "output_per_million": 10.0})
    assert main(["estimate"]) == 0
    before = capsys.readouterr().out
    total = next(line for line in before.splitlines() if line.startswith("total")).split()
    assert int(total[1]) == 6 * (3 + 3 + 6)  # every planned sample is missing
    assert float(total[-1]) > 0
    assert fake_model.requests == [] and not Path("store").exists()
    assert main(["run"]) == 0
    capsys.readouterr()
    assert main(["estimate"]) == 0
    after = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("total")).split()
    assert after[1:] == ["0", "0", "0", "0", "0.00"]


def test_estimate_uses_calibration_where_it_has_the_budget_and_the_guess_for_a_new_one(
    project, fake_model, capsys
):
    """Calibrated budgets are priced from what the model spent; a budget added since, from the guess."""
    project(fake_model.url, budgets={"method": "prompt", "requested": [16, 64]},
            prices={"input_per_million": 0.0, "output_per_million": 1e6})  # $1 per output token
    assert main(["fetch"]) == 0 and main(["calibrate"]) == 0
    project(fake_model.url, budgets={"method": "prompt", "requested": [16, 64, 4096]},
            prices={"input_per_million": 0.0, "output_per_million": 1e6})
    capsys.readouterr()
    assert main(["estimate"]) == 0
    out = capsys.readouterr().out
    assert "estimated from outputs/calibration.csv" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    # calibrate: sample 0 at the new budget, 6 problems; sample: samples 1-2 at 16 and 64, and samples
    # 1-5 of the vote pool at 4096 (sample 0 there is calibration's)
    assert int(rows["calibrate"][1]) == 6 and int(rows["sample"][1]) == 6 * (2 + 2 + 5)
    # the toy chat model answers in 5 tokens (calibrated at 16 and 64); 4096 is priced at the guess
    assert float(rows["calibrate"][3]) == 6 * 4096
    assert float(rows["sample"][3]) == 6 * (2 + 2) * 5 + 6 * 5 * 4096


def test_requests_spread_over_replicas_and_a_failing_replica_loses_no_sample(project):
    healthy, broken = FakeModel(), FakeModel(fault_rate=1.0, faults=("500",))
    servers = [serve(m) for m in (healthy, broken)]
    try:
        urls = [url for _, url in servers]
        project(urls, model={**ROBUST, "max_retries": 1},
                budgets={"requested": [8, 64]}, sampling={"samples": 4, "vote_samples": 4, "concurrency": 2})
        assert main(["run"]) == 0
        samples = pd.read_csv("outputs/samples.csv")
        _assert_complete(samples, 6 * 8)
        assert (samples["status"] != "failed-after-retries").all()
        # the broken replica was tried, then rested: the healthy one did the work
        assert 0 < len(broken.requests) < len(healthy.requests)
    finally:
        for server, _ in servers:
            server.shutdown()
            server.server_close()


def test_replicas_share_the_load_and_an_unreachable_one_is_left_out(project, capsys):
    import socket

    first, second = FakeModel(), FakeModel()
    servers = [serve(m) for m in (first, second)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    try:
        project([servers[0][1], servers[1][1], dead], budgets={"requested": [8, 64]},
                sampling={"samples": 4, "vote_samples": 4, "concurrency": 2})
        assert main(["run"]) == 0
        assert "left out of rotation" in capsys.readouterr().err
        assert first.requests and second.requests
        _assert_complete(pd.read_csv("outputs/samples.csv"), 6 * 8)
    finally:
        for server, _ in servers:
            server.shutdown()
            server.server_close()
