"""A sweep on DVC's own queue sharing one response store (HARNESS_STORE, docs/sweeps.md).

A fresh git + DVC repository (this package, dvc.yaml, a local dataset, the local fake OpenAI server as the
model) queues experiments with `dvc exp run --queue -S ...` and runs them with `dvc queue start`. DVC runs
each in its own temporary copy (`.dvc/tmp/exps/tmp*`); HARNESS_STORE=shared-store (relative: resolved
against the repository root, not the copy) makes every copy use one store. Two experiments whose requests
overlap: the second sends zero requests for the overlap, and nothing is ever paid twice, run one after the
other or by two workers at once (claims).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import REPO, arithmetic_problems
from gitrepo import GIT, run

from harness.files import STORE_ENV, repository_root
from harness.requests.store import count_records


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1", STORE_ENV: "shared-store", **extra}


@pytest.fixture
def sweep_repo(tmp_path, fake_model) -> Iterator[Path]:
    repo = tmp_path / "sweep"
    repo.mkdir()
    shutil.copytree(REPO / "harness", repo / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", repo / "dvc.yaml")
    shutil.copytree(REPO / "data" / "references", repo / "data" / "references")  # the plot stage's published curves
    (repo / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in arithmetic_problems(4)))
    params = yaml.safe_load((REPO / "params.yaml").read_text())  # every key the stages name
    params["model"].update(base_url=fake_model.url, name="fake")
    params["data"].update(source="problems.jsonl", limit=None, config={})
    params["budgets"].update(method="forcing", requested=[4, 16])
    params["sampling"].update(samples=2, vote_samples=3, concurrency=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / ".gitignore").write_text("/shared-store/\n")
    (repo / "store").mkdir()
    (repo / "store" / ".gitignore").write_text(".lock\n.claims/\n.batches/\n")
    for shard in ("calibrate", "sample"):  # the stages' declared outputs: the project's own (empty) shards
        (repo / "store" / f"{shard}.jsonl").touch()
    run(*GIT, "init", "-q", cwd=repo)
    run("dvc", "init", "-q", cwd=repo, environ=_env())
    run(*GIT, "add", "-A", cwd=repo)
    run(*GIT, "commit", "-qm", "sweep", cwd=repo)
    yield repo
    # a queue worker that hangs in its own shutdown must not outlive the test (only this repository's
    # workers: a pid is killed only while its command line still names a worker writing into this repo)
    for pid_file in (repo / ".dvc" / "tmp" / "exps" / "celery").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
            if b"queue-worker" in Path(f"/proc/{pid}/cmdline").read_bytes() and \
                    str(repo) in os.readlink(f"/proc/{pid}/fd/1"):
                os.kill(pid, signal.SIGKILL)
        except (ValueError, IndexError, OSError):
            pass  # gone already (the usual case)


def _drain(repo: Path, workers: int, timeout: float = 300) -> None:
    """`dvc queue start -j N`, then wait until every queued experiment has finished.

    The workers it forks inherit its stdout and stderr: captured through pipes, the call would last as long
    as they live, and a celery worker can hang in its own shutdown after "shutting down due to empty queue"
    (seen once in CI: the test then never returned). Its output goes to a file beside the repository."""
    with open(repo.parent / "queue-start.log", "a") as log:
        subprocess.run(["dvc", "queue", "start", "-j", str(workers)], cwd=repo, env=_env(), stdout=log,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run("dvc", "queue", "status", cwd=repo, environ=_env())
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(1)
    else:
        pytest.fail(f"the queue did not finish: {status}")
    failed = [line.split()[1] for line in status.splitlines() if line.endswith("Failed")]
    assert not failed, "\n".join(run("dvc", "queue", "logs", name, cwd=repo, environ=_env()) for name in failed)


def _experiments(repo: Path) -> dict[str, dict]:
    rows = {}
    for entry in json.loads(run("dvc", "exp", "show", "--json", cwd=repo, environ=_env())):
        for exp in entry.get("experiments") or []:
            for rev in exp["revs"]:
                rows[rev["name"]] = {**rev["data"], "sha": rev["rev"]}
    return rows


def _requests_used(repo: Path, exp: str) -> int:
    """How many requests an experiment's samples rest on (sent or read from the store)."""
    import io

    import pandas as pd

    sha = _experiments(repo)[exp]["sha"]
    text = subprocess.run([*GIT, "show", f"{sha}:outputs/samples.csv"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout
    return int(pd.read_csv(io.StringIO(text))["requests"].sum())


def _queue(repo: Path, name: str, budgets: list[int]) -> None:
    run("dvc", "exp", "run", "--queue", "-n", name, "-S", f"budgets.requested={json.dumps(budgets)}", cwd=repo,
        environ=_env())


def test_two_queued_experiments_share_one_store_and_the_second_pays_nothing_for_the_overlap(sweep_repo, fake_model):
    _queue(sweep_repo, "small", [4, 16])
    _drain(sweep_repo, workers=1)
    first = len(fake_model.requests)
    assert first == _requests_used(sweep_repo, "small") > 0  # a cold store: everything was sent

    _queue(sweep_repo, "large", [4, 16, 64])  # budgets 4 and 16 overlap with "small"
    _drain(sweep_repo, workers=1)
    second = len(fake_model.requests) - first
    used = _requests_used(sweep_repo, "large")
    # the overlap: "large" samples 0-1 at 4 and 16 are exactly "small"'s samples 0-1 there (same seeds)
    overlap = used - second
    assert overlap > 0 and second > 0
    assert set(fake_model.successes.values()) == {1}, "a response was paid twice"
    shared = sweep_repo / "shared-store"
    assert count_records(shared) == len(fake_model.requests)
    assert not (sweep_repo / "store" / "sample.jsonl").read_text()  # the project's own shard stays as committed

    rows = _experiments(sweep_repo)
    assert {"small", "large"} <= set(rows)
    assert sorted(rows["large"]["metrics"]["outputs/metrics.json"]["data"]["accuracy_by_budget"], key=int) == [
        "4", "16", "64"]


def test_two_workers_at_once_never_pay_twice(sweep_repo, fake_model):
    # requests in flight long enough for the two workers to meet on claims, even when one starts seconds
    # after the other (a loaded machine): otherwise they never overlap and the test proves nothing
    fake_model.delay_s = 0.25
    _queue(sweep_repo, "a", [4, 16])
    _queue(sweep_repo, "b", [4, 16, 32])
    _drain(sweep_repo, workers=2)
    concurrency = yaml.safe_load((sweep_repo / "params.yaml").read_text())["sampling"]["concurrency"]
    assert fake_model.max_in_flight > concurrency, "the two workers never sent at once: the test proves nothing"
    assert set(fake_model.successes.values()) == {1}, "a response was paid twice"
    assert len(fake_model.requests) < _requests_used(sweep_repo, "a") + _requests_used(sweep_repo, "b")


def test_a_relative_store_resolves_to_the_repository_not_the_experiment_copy(tmp_path):
    copy = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc123"
    copy.mkdir(parents=True)
    assert repository_root(copy) == (tmp_path / "repo").resolve()
    assert repository_root(tmp_path) == tmp_path.resolve()
