"""`sampling.stream: true` on the fault-injecting test server (real HTTP, server-sent events): the record a
streamed response stores is exactly a non-streamed one's (same key, same fields), reasoning and answer
deltas stay apart, and a stream cut midway is asked again with nothing partial stored. The same on the
real llama-server: tests/test_native_thinking.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fake_server import STREAM_BREAK, FakeModel, serve

from harness.cli import main


def _store(path: Path) -> dict[str, dict]:
    """key -> {request, response without latency_s} of every stored line (the wall time is the only field
    that may differ between two runs of the same requests)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["response"].pop("latency_s", None)
        out[record["key"]] = {"request": record["request"], "response": record["response"]}
    return out


def _run_into(project, tmp_path, name: str, fake: FakeModel, stream: bool, **sections) -> dict[str, dict]:
    """One whole run in its own directory; its store's records."""
    where = tmp_path / name
    where.mkdir()
    os.chdir(where)
    (where / "problems.jsonl").write_text((tmp_path / "problems.jsonl").read_text())
    project(fake.url, sampling={"samples": 2, "vote_samples": 2, "stream": stream, "logprobs": True},
            **sections)
    (tmp_path / "params.yaml").replace(where / "params.yaml")
    assert main(["run"]) == 0
    return {**_store(where / "store" / "calibrate.jsonl"), **_store(where / "store" / "sample.jsonl")}


RUNS = {
    "chat, reasoning field": {"budgets": {"method": "thinking", "requested": [16, 64], "thinking_preset": "vllm"}},
    "completions, forcing": {"model": {"chat_template": "qwen3"},
                             "budgets": {"method": "forcing", "requested": [4, 16, 64]}},
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_a_streamed_response_stores_exactly_the_non_streamed_record(project, tmp_path, run):
    records = {}
    for stream in (False, True):
        model = FakeModel()
        model.reasoning_field = "reasoning_content"
        server, model.url = serve(model)
        try:
            records[stream] = _run_into(project, tmp_path, f"stream-{stream}", model, stream, **RUNS[run])
        finally:
            server.shutdown()
            server.server_close()
        sent = [r["body"] for r in model.requests]
        assert all(bool(b.get("stream")) is stream for b in sent)
    assert records[True] == records[False]  # same keys, same requests, same fields and values
    if run.startswith("chat"):
        responses = [r["response"] for r in records[True].values()]
        assert all(r["reasoning"].startswith("\\boxed{") and "</think>" not in r["text"] for r in responses)
        assert all(r["logprobs"]["tokens"] for r in responses)


def test_a_stream_broken_midway_is_asked_again_and_nothing_partial_is_stored(project, tmp_path):
    whole = FakeModel()
    whole.reasoning_field = "reasoning_content"
    server, whole.url = serve(whole)
    try:
        expected = _run_into(project, tmp_path, "whole", whole, False, **RUNS["chat, reasoning field"])
    finally:
        server.shutdown()
        server.server_close()
    broken = FakeModel(fault_rate=0.5, faults=(STREAM_BREAK,))
    broken.reasoning_field = "reasoning_content"
    server, broken.url = serve(broken)
    try:
        got = _run_into(project, tmp_path, "broken", broken, True, model={"max_retries": 12, "backoff_base": 0.01},
                        **RUNS["chat, reasoning field"])
    finally:
        server.shutdown()
        server.server_close()
    assert broken.injected[STREAM_BREAK] > 0
    assert got == expected  # every stored record whole, and one per request
    lines = (tmp_path / "broken" / "store" / "sample.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(line)["key"] for line in lines})
