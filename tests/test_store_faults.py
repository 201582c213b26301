"""Nothing paid is lost or paid twice: a full disk, two runs on one store, a server that never answers.

Each test drives `harness` against a local server that counts what it charged (per request body), so
"paid twice" is measured, not inferred.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fake_server import body_key
from test_engine import (
    _assert_complete,
    _billable_counts,
    _harness,
    _start_server,
    _stored_bodies,
    _wait_for_lines,
)

from harness.cli import main
from harness.requests.store import ResponseStore, shard_files

SMALL_RUN = {"budgets": {"requested": [8, 32, 64]},
             "sampling": {"samples": 4, "vote_samples": 8, "concurrency": 8}}
PLANNED = 6 * (4 + 4 + 8)


def _store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "store").glob("*.jsonl"))


def _stored_keys(root: Path) -> list[str]:
    return [body_key(b) for b in _stored_bodies(root)]


def _assert_readable_and_whole(root: Path) -> None:
    """Every shard ends on a whole record (no torn tail to warn about) and reads without error."""
    for shard in (root / "store").glob("*.jsonl"):
        data = shard.read_bytes()
        assert not data or data.endswith(b"\n"), f"{shard} ends in a partial record"
    ResponseStore(root / "store", "check", readonly=True)


def _unstored(err: str) -> int:
    found = re.search(r"(\d+) response\(s\) received could not be stored", err)
    assert found, err
    return int(found.group(1))


class SmallDisk:
    """A fault-injecting file layer: the store's shards live on a `capacity`-byte disk.

    `os.write` to a shard writes what still fits and returns the short count (no exception), and raises
    ENOSPC once nothing fits, exactly as a nearly full filesystem does; truncating a shard frees space.
    Every other write passes through.
    """

    def __init__(self, root: Path, capacity: int):
        self.root, self.capacity = root, capacity
        self.real = os.write
        self.short_writes = 0

    def write(self, fd: int, data: bytes) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.endswith(".jsonl"):
            return self.real(fd, data)
        free = self.capacity - _store_bytes(self.root)
        if free <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if free < len(data):
            self.short_writes += 1
        return self.real(fd, bytes(data[:free]))


def _full_disk_then_resume(project, fake_model, tmp_path, capsys, fill) -> None:
    """calibrate with space; sample on a disk that fills mid-run (`fill` sets it up, returns an undo);
    then, with space again, sample resumes and pays only for what was never stored."""
    project(fake_model.url, **SMALL_RUN)
    assert main(["fetch"]) == 0 and main(["calibrate"]) == 0
    capsys.readouterr()
    undo = fill()
    try:
        assert main(["sample"]) == 2
    finally:
        undo()
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("harness: sample: stopped spending: cannot write store/sample.jsonl: disk full"), err
    assert "Traceback" not in err and "rerun" in last
    assert not Path("outputs/samples.csv").exists(), ("a table written as if the store were complete", err)
    _assert_readable_and_whole(tmp_path)
    stored = _stored_keys(tmp_path)
    assert len(stored) == len(set(stored))
    unstored = _unstored(last)
    assert unstored <= SMALL_RUN["sampling"]["concurrency"]  # at most the responses in flight
    charged_before = sum(fake_model.successes.values())
    assert charged_before == len(stored) + unstored, "a response received was neither stored nor counted"

    assert main(["sample"]) == 0  # space again: resume
    _assert_complete(pd.read_csv("outputs/samples.csv"), PLANNED)
    for key in stored:  # nothing stored before the failure was paid for again
        assert fake_model.successes[key] == 1, key
    assert sum(c - 1 for c in fake_model.successes.values()) <= unstored
    assert not list((tmp_path / "store" / ".claims").glob("[0-9a-f]*")), "claims outlived the run"


def test_full_disk_mid_run_stops_spending_and_resume_pays_only_for_the_unstored(
    project, fake_model, tmp_path, capsys, monkeypatch
):
    """Fault-injecting layer (runs everywhere): short writes, then ENOSPC."""
    disk: list[SmallDisk] = []

    def fill():
        disk.append(SmallDisk(tmp_path, _store_bytes(tmp_path) + 12_000))
        monkeypatch.setattr(os, "write", disk[0].write)
        return lambda: monkeypatch.setattr(os, "write", disk[0].real)  # (undo() would also undo the chdir)

    _full_disk_then_resume(project, fake_model, tmp_path, capsys, fill)
    assert disk[0].short_writes >= 1  # the case that used to pass silently


def test_full_disk_on_a_real_small_tmpfs(project, fake_model, tmp_path, capsys):
    """The same on a real filesystem: a size-limited tmpfs mounted over store/ (needs root)."""
    store = tmp_path / "store"

    def fill():
        aside = tmp_path / "store-aside"
        store.rename(aside)
        store.mkdir()
        size_k = (_store_bytes_of(aside) + 16_000) // 4096 * 4 + 4
        probe = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", str(store)],
                               check=False, capture_output=True, text=True)
        if probe.returncode != 0:
            store.rmdir()
            aside.rename(store)
            reason = probe.stderr.strip() or f"mount exited {probe.returncode}"
            print(f"SKIP reason: cannot mount a tmpfs here: {reason}")
            pytest.skip(f"cannot mount a tmpfs here ({reason}); the fault-injecting test covers this path")
        try:
            for f in aside.glob("*.jsonl"):
                shutil.copy2(f, store / f.name)
        except BaseException:
            subprocess.run(["umount", str(store)], check=True)
            raise

        def undo():  # "with space": the same files, back on the big disk
            shutil.rmtree(aside)
            shutil.copytree(store, aside, symlinks=True)
            subprocess.run(["umount", str(store)], check=True)
            store.rmdir()
            aside.rename(store)

        return undo

    _full_disk_then_resume(project, fake_model, tmp_path, capsys, fill)


def _store_bytes_of(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.jsonl"))


def test_two_runs_at_once_on_one_store_pay_once_per_request(project, tmp_path):
    # slow enough answers that the two runs overlap even when one of them starts seconds later (a
    # loaded machine): otherwise they never meet and the test would prove nothing
    server, url, log = _start_server(tmp_path, delay=0.1)
    try:
        project(url, **SMALL_RUN)
        assert main(["fetch"]) == 0
        runs = [_harness("sample", cwd=tmp_path) for _ in range(2)]
        outs = [run.communicate(timeout=120) for run in runs]
        for run, (_, err) in zip(runs, outs):
            assert run.returncode == 0, err
        billable = _billable_counts(log)
        paid_twice = {k: c for k, c in billable.items() if c > 1}
        assert not paid_twice, f"{len(paid_twice)} requests paid twice"
        stored = _stored_keys(tmp_path)
        assert len(stored) == len(set(stored)) == len(billable)
        assert any("another run" in err for _, err in outs), "the runs never met: the test proves nothing"
        _assert_complete(pd.read_csv("outputs/samples.csv"), PLANNED)
    finally:
        server.kill()


def test_two_hosts_sharing_a_store_write_their_own_shards_and_pay_once(project, tmp_path):
    """Two `harness sample` runs that report different host names (two machines on a shared directory):
    each appends only to its own file (the second finds the stage's shard taken and writes
    sample@<host>@<pid>@<token>.jsonl), nothing is lost and nothing is paid twice."""
    server, url, log = _start_server(tmp_path, delay=0.1)
    try:
        project(url, **SMALL_RUN)
        assert main(["fetch"]) == 0
        runs = []
        for host in ("alpha", "beta"):
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_HOST": host}
            runs.append(subprocess.Popen([sys.executable, "-m", "harness.cli", "sample"], cwd=tmp_path, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [run.communicate(timeout=180) for run in runs]
        for run, (_, err) in zip(runs, outs):
            assert run.returncode == 0, err
        shards = sorted(p.name for p in shard_files(tmp_path / "store") if p.name.startswith("sample"))
        own = [name for name in shards if name != "sample.jsonl"]  # sealed when its writer ended
        assert len(own) == 1 and own[0].split("@")[1] in {"alpha", "beta"} and own[0].endswith(".jsonl.gz"), shards
        assert (tmp_path / "store" / own[0]).stat().st_size > 0, "the second writer stored nothing: no overlap"
        billable = _billable_counts(log)
        assert not {k: c for k, c in billable.items() if c > 1}, "paid twice"
        stored = _stored_keys(tmp_path)
        assert len(stored) == len(set(stored)) == len(billable)  # every response paid for is stored, once
        _assert_complete(pd.read_csv("outputs/samples.csv"), PLANNED)
    finally:
        server.kill()


def test_a_killed_claimers_claims_are_taken_over_at_once(project, tmp_path):
    """SIGKILL leaves claims behind; the next run sees their process is gone and does not wait out the
    lease (set to an hour here), paying again for at most what was in flight."""
    server, url, log = _start_server(tmp_path, delay=0.05)
    try:
        project(url, **SMALL_RUN)
        assert main(["fetch"]) == 0
        proc = _harness("sample", cwd=tmp_path)
        _wait_for_lines(tmp_path / "store" / "sample.jsonl", 20)
        proc.kill()
        proc.wait()
        left = list((tmp_path / "store" / ".claims").glob("[0-9a-f]*"))
        assert left, "the kill left no claims: the test proves nothing"
        stored = set(_stored_keys(tmp_path))
        env = {**os.environ, "HARNESS_CLAIM_LEASE_S": "3600"}
        started = time.monotonic()
        resumed = subprocess.run([sys.executable, "-m", "harness.cli", "sample"], cwd=tmp_path,
                                 env=env, check=False, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert time.monotonic() - started < 60
        billable = _billable_counts(log)
        assert all(billable[k] == 1 for k in stored)
        assert sum(c - 1 for c in billable.values()) <= SMALL_RUN["sampling"]["concurrency"]
    finally:
        server.kill()


WEDGED = {"request_timeout": 0.5, "max_retries": 1, "backoff_base": 0.01, "backoff_max": 0.05}


def test_a_server_that_never_answers_ends_each_stage_with_one_line_and_exit_2(project, fake_model, capsys):
    fake_model.hang_forever = True  # answers GET /models, never a completion
    project(fake_model.url, model=WEDGED, **SMALL_RUN)
    assert main(["fetch"]) == 0
    for stage in ("calibrate", "sample"):
        capsys.readouterr()
        assert main([stage]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"harness: {stage}: "), err
        assert "failed after retries" in last and "timed out" in last and "model.request_timeout" in last
    assert _store_bytes(Path.cwd()) == 0
    for stage in ("vote", "plot"):  # nothing upstream was written: they say so, in one line
        assert main([stage]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("harness: "), err
    assert main(["estimate"]) == 0
    assert main(["run"]) == 2


def test_mostly_failed_samples_go_through_every_stage_without_a_traceback(project, fake_model, capsys):
    fake_model.fault_rate, fake_model.faults = 0.6, ("500",)
    project(fake_model.url, model={**WEDGED, "max_retries": 0}, **SMALL_RUN)
    for stage in ("fetch", "calibrate", "sample", "vote", "plot", "estimate"):
        code = main([stage])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert code == 0 or (code == 2 and err.strip().splitlines()[-1].startswith("harness: ")), (stage, err)
        if stage in ("calibrate", "sample"):  # failures are said, not only left in a table
            assert re.search(rf"{stage}: warning: \d+ of \d+ samples requested failed after retries", err), err
    samples = pd.read_csv("outputs/samples.csv")
    assert (samples["status"] == "failed-after-retries").sum() > len(samples) / 2
