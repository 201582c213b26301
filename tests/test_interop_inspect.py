"""inspect_ai logs out and in, checked with inspect_ai itself (`nox -s interop`: inspect-ai is not in the main
lock): the exporter's logs open with read_eval_log, give one samples_df row per sample, and `inspect score
--scorer match` gives our k = 1 accuracy; logs inspect_ai wrote import as a pool; export then import keeps the
curve."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from inspect_ai.analysis import samples_df
from inspect_ai.log import read_eval_log
from test_interop import LM_EVAL_SAMPLES, replay

from harness.cli import main

INSPECT = REPO / "tests" / "fixtures" / "inspect"
INSPECT_BIN = Path(sys.executable).parent / "inspect"


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory) -> Path:
    """lm-eval's fixture imported and replayed: a finished run (budgets 32 and 64, pools of 3, 4 problems)."""
    run = tmp_path_factory.mktemp("lm") / "run"
    assert main(["import", "lm-eval", *map(str, LM_EVAL_SAMPLES), "--into", str(run)]) == 0
    with pytest.MonkeyPatch.context() as mp:
        replay(run, mp)
        assert main(["export", "inspect", "--out", "logs"]) == 0
    return run


def test_exported_logs_open_in_inspect_with_one_row_per_sample(imported_run):
    logs = sorted((imported_run / "logs").glob("*.eval"))
    assert [p.name for p in logs] == ["toy-arith_cap_32.eval", "toy-arith_cap_64.eval"]
    curve = pd.read_csv(imported_run / "outputs" / "curve.csv")
    for path in logs:
        log = read_eval_log(str(path))
        assert log.status == "success" and log.eval.config.epochs == 3
        assert len(log.samples) == 12 and len(samples_df(str(path))) == 12
        budget = log.eval.metadata["token_budget"]
        at = curve[curve["budget"] == budget]
        assert log.results.scores[0].metrics["accuracy"].value == pytest.approx(at.query("k == 1")["maj_at_k"].item())
        assert log.results.metadata["maj_at_k"]["3"] == pytest.approx(at.query("k == 3")["maj_at_k"].item())
        sample = log.samples[0]
        assert sample.metadata["budget"] == budget and sample.metadata["method"] == "cap"
        assert len(sample.metadata["store_keys"]) == 1 and len(sample.metadata["store_keys"][0]) == 64
        assert sample.scores["match"].value in ("C", "I") and sample.scores["match"].answer
        assert sample.model_usage and sample.output.usage.output_tokens == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, deadline: float) -> bytes:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_inspect_view_lists_and_serves_the_exported_logs(imported_run):
    """`inspect view` on loopback: its log list names both logs, and it serves each whole (what its page
    reads); the page's rendering in a browser is not checked here."""
    port = _free_port()
    logs = imported_run / "logs"
    view = subprocess.Popen([str(INSPECT_BIN), "view", "--log-dir", str(logs), "--host", "127.0.0.1", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/logs"
        listed = json.loads(_get(base, time.monotonic() + 120))
        names = sorted(Path(f["name"]).name for f in listed["files"])
        assert names == ["toy-arith_cap_32.eval", "toy-arith_cap_64.eval"]
        served = json.loads(_get(f"{base}/{(logs / names[0]).as_uri()}", time.monotonic() + 30))
        assert served["status"] == "success" and len(served["samples"]) == 12
    finally:
        view.terminate()
        view.wait(timeout=30)


def test_inspect_score_match_reproduces_our_k1_accuracy(imported_run, tmp_path):
    """`--model mockllm/model`: the match scorer calls no model, but `inspect score` resolves one; mockllm is
    inspect's own offline provider, so nothing is sent anywhere."""
    path = imported_run / "logs" / "toy-arith_cap_32.eval"
    out = tmp_path / "rescored.eval"
    done = subprocess.run([str(INSPECT_BIN), "score", str(path), "--scorer", "match", "--model", "mockllm/model",
                           "--action", "overwrite", "--output-file", str(out), "--display", "none"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    ours = read_eval_log(str(path))
    theirs = read_eval_log(str(out))
    assert [s.scores["match"].value for s in theirs.samples] == [s.scores["match"].value for s in ours.samples]
    assert theirs.results.scores[0].metrics["accuracy"].value == pytest.approx(7 / 12)


def test_export_then_import_gives_the_same_curve(imported_run, tmp_path, monkeypatch):
    back = tmp_path / "back"
    logs = sorted(str(p) for p in (imported_run / "logs").glob("*.eval"))
    assert main(["import", "inspect", *logs, "--into", str(back)]) == 0
    samples = replay(back, monkeypatch)
    assert (samples["tokens_counted"] == "logged").all()
    columns = ["budget", "k", "maj_at_k", "pass_at_k", "mean_tokens", "samples"]
    assert pd.read_csv(back / "outputs" / "curve.csv")[columns].equals(
        pd.read_csv(imported_run / "outputs" / "curve.csv")[columns])


@pytest.mark.parametrize("name", ["toy_arith.eval", "toy_arith.json"])
def test_a_log_inspect_wrote_imports_as_a_pool(tmp_path, monkeypatch, capsys, name):
    run = tmp_path / "run"
    assert main(["import", "inspect", str(INSPECT / name), "--into", str(run)]) == 0
    assert "12 samples of 4 problems at budgets [32] (openai-api/local/toy-arith, task toy_arith)" \
        in capsys.readouterr().out
    samples = replay(run, monkeypatch)
    log = read_eval_log(str(INSPECT / name))
    assert samples["sample"].max() == 2  # epochs 1..3 are the pool 0..2
    assert samples["completion_tokens"].tolist() == [5] * 12  # ModelUsage output tokens
    assert samples["reasoning_tokens"].tolist() == [3] * 12  # ModelUsage reasoning tokens
    # inspect's match(numeric=True) and our grading agree on every sample of the toy model
    theirs = {(s.id, s.epoch - 1): s.scores["match"].value == "C" for s in log.samples}
    ours = {(r.problem_id, r.sample): bool(r.correct) for r in samples.itertuples()}
    assert ours == theirs


def test_inspect_import_bad_input(tmp_path, capsys):
    stray = tmp_path / "notes.json"
    stray.write_text('{"hello": 1}')
    assert main(["import", "inspect", str(stray), "--into", str(tmp_path / "run")]) == 2
    assert "notes.json: cannot be read as an inspect log" in capsys.readouterr().err
    both = tmp_path / "other.json"
    shutil.copy(INSPECT / "toy_arith.json", both)
    text = both.read_text().replace('"task": "toy_arith"', '"task": "toy_other"', 1)
    both.write_text(text)
    assert main(["import", "inspect", str(INSPECT / "toy_arith.eval"), str(both), "--into", str(tmp_path / "r")]) == 2
    assert "the logs hold 2 tasks (toy_arith, toy_other)" in capsys.readouterr().err
    assert main(["import", "inspect", str(INSPECT / "toy_arith.eval"), str(both), "--into", str(tmp_path / "r"),
                 "--task", "toy_arith"]) == 0
