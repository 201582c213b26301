"""Reasoning models: the answer is read apart from the thinking, s1 forcing on think-tag templates, each
server's thinking-budget field, and a limit the server ignored stops the run (real HTTP, fake_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.thinking_text import split_thinking
from harness.cli import main
from harness.params import BudgetParams, ModelParams
from harness.requests.chain import CHAT_TEMPLATES, Job, Outcome, _choice_tokens
from harness.requests.thinking import LimitIgnored, _estimated_reasoning, check_within_limits
from harness.stages.sample import sample_row

CUE = "\n\nFinal answer: \\boxed{"


def _outcome(text: str, finish: str = "stop", reasoning: str = "") -> Outcome:
    job = Job("p0", "What is 1 + 6?", "7", 64, 0)
    answer = split_thinking(text)[1]
    return Outcome(job=job, seed=0, text=text, finish_reason=finish, answer=answer,
                   reasoning=reasoning + split_thinking(text)[0])


def test_a_boxed_answer_inside_the_thinking_is_never_the_final_answer():
    row = sample_row(_outcome("<think>\nmaybe \\boxed{5}? no.\n</think>\n\nSo \\boxed{7}."))
    assert (row["answer"], row["correct"], row["status"]) == ("7", True, "ok")
    # no opening tag (the prompt opened the block, R1 distills): same rule
    assert sample_row(_outcome("first \\boxed{5}\n</think>\n\n\\boxed{7}"))["answer"] == "7"


def test_thinking_cut_off_by_the_limit_has_no_answer_even_with_a_boxed_draft():
    row = sample_row(_outcome("<think>\nguess \\boxed{7} then check", finish="length"))
    assert row["answer"] is None and row["correct"] is False and row["status"] == "truncated"


def test_the_templates_params_allow_are_exactly_the_chains():
    allowed = ModelParams.model_fields["chat_template"].annotation.__args__
    assert set(allowed) == set(CHAT_TEMPLATES)
    assert {"qwen3", "deepseek-r1"} <= {n for n, t in CHAT_TEMPLATES.items() if t.thinks}


def _run(project, fake_model, **sections) -> pd.DataFrame:
    project(fake_model.url, **sections)
    assert main(["run"]) == 0
    return pd.read_csv("outputs/samples.csv", keep_default_na=False)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "inline"])
def test_reasoning_returned_apart_is_kept_apart_and_only_the_answer_graded(project, fake_model, field):
    fake_model.reasoning_field = field  # its thinking starts with a wrong \boxed{} draft, its answer is right
    samples = _run(project, fake_model, budgets={"method": "prompt", "requested": [4, 16]})
    assert samples["correct"].astype(str).eq("True").all(), samples[["answer", "gold"]]
    assert (samples["reasoning_count"] == "usage").all()
    assert (samples["reasoning_tokens"].astype(int) == 40).all()
    lines = Path("store/sample.jsonl").read_text(encoding="utf-8").splitlines()
    stored = [json.loads(line)["response"] for line in lines]
    if field == "inline":  # the store keeps the text as sent, thinking included
        assert all("</think>" in r["text"] for r in stored)
    else:  # the store keeps the separate field beside the answer
        assert all(r["reasoning"].startswith("\\boxed{") and "\\boxed{" in r["text"] for r in stored)


def test_reasoning_text_without_a_count_is_split_by_characters_and_marked(project, fake_model):
    fake_model.reasoning_field = "reasoning_content"
    fake_model.report_reasoning_tokens = False
    samples = _run(project, fake_model, budgets={"method": "prompt", "requested": [4, 16]})
    assert (samples["reasoning_count"] == "chars").all()
    tokens = samples["reasoning_tokens"].astype(int)
    assert ((tokens > 0) & (tokens < samples["completion_tokens"].astype(int))).all()


def _forced(fake_model, budget: int) -> list[dict]:
    return [r["body"] for r in fake_model.requests if r["body"].get("max_tokens") == budget
            and r["body"]["prompt"].endswith("<think>\n")]


@pytest.mark.parametrize("template", ["qwen3", "deepseek-r1"])
def test_forcing_on_a_think_template_closes_the_thinking_at_exactly_the_budget(project, fake_model, template):
    samples = _run(project, fake_model, model={"chat_template": template},
                   budgets={"method": "forcing", "requested": [4, 16, 64]})
    firsts = _forced(fake_model, 4)
    assert firsts and all(b["stop"] == ["</think>"] for b in firsts)
    answers = [r["body"] for r in fake_model.requests if r["body"]["prompt"].endswith(CUE)]
    assert answers and all(f"\n</think>{CUE}" in b["prompt"] for b in answers)
    assert (samples["reasoning_count"] == "requests").all()
    thought = samples["reasoning_tokens"].astype(int)
    budget = samples["budget"].astype(int)
    assert (thought[budget == 4] == 4).all()  # the toy model needs 8..47 tokens: cut at exactly B
    assert (thought <= budget).all() and (thought[budget == 64] < 64).all()  # it closed early by itself
    # the wrong draft \boxed{} in the thinking is never graded: a finished thought answers right
    finished = samples[thought < budget]
    assert finished["correct"].astype(str).eq("True").all()


def test_wait_strips_the_close_tag_and_extends_the_thinking_to_the_budget(project, fake_model):
    samples = _run(project, fake_model, model={"chat_template": "qwen3"},
                   budgets={"method": "forcing", "requested": [4, 16, 64], "wait": True})
    assert (samples["reasoning_tokens"].astype(int) == samples["budget"].astype(int)).all()
    waited = [r["body"] for r in fake_model.requests if r["body"]["prompt"].endswith("\nWait,")]
    assert waited and all("</think>" not in b["prompt"] and b["stop"] == ["</think>"] for b in waited)


PRESET_BODIES = {
    "vllm": lambda b: {"thinking_token_budget": b},
    "sglang": lambda b: {"custom_params": {"thinking_budget": b}},
    "llamacpp": lambda b: {"thinking_budget_tokens": b},
    "anthropic": lambda b: {"thinking": {"type": "enabled", "budget_tokens": b}},
    "gemini": lambda b: {"extra_body": {"google": {"thinking_config": {"thinking_budget": b}}}},
}
BASE_FIELDS = {"messages", "model", "seed", "max_tokens", "temperature", "top_p"}


@pytest.mark.parametrize("preset", sorted(PRESET_BODIES))
def test_each_preset_sends_its_servers_documented_field_and_nothing_else(project, fake_model, preset):
    fake_model.reasoning_field = "reasoning_content"
    fake_model.provider = preset if preset in ("anthropic", "gemini") else None
    budgets = [1024, 2048] if preset == "anthropic" else [16, 64]
    sampling = {"samples": 1, "vote_samples": 1}
    if preset == "anthropic":
        sampling |= {"temperature": None}
    samples = _run(project, fake_model, budgets={"method": "thinking", "requested": budgets,
                                                 "thinking_preset": preset, "max_tokens": 4096},
                   sampling=sampling)
    for request in fake_model.requests:
        body = request["body"]
        extra = {k: v for k, v in body.items() if k not in BASE_FIELDS}
        assert extra in [PRESET_BODIES[preset](b) for b in budgets], extra
    assert samples["correct"].astype(str).eq("True").all()


@pytest.mark.parametrize(
    ("budgets", "sampling", "message"),
    [
        ({"thinking_preset": "anthropic", "requested": [512, 2048], "max_tokens": 4096}, {"temperature": None},
         "below 1024"),
        ({"thinking_preset": "anthropic", "requested": [1024, 2048], "max_tokens": 2048}, {"temperature": None},
         "above the largest budget"),
        ({"thinking_preset": "anthropic", "requested": [1024], "max_tokens": 2048}, {}, "temperature: null"),
        ({"thinking_preset": "anthropic", "requested": [1024], "max_tokens": 2048},
         {"temperature": None, "n_per_request": 2}, "n = 1"),
        ({"thinking_preset": "gemini", "requested": [1024, 40000]}, {}, "32768"),
        ({"thinking_preset": "openai", "requested": [1024]}, {}, "budgets.method: effort"),
        ({"thinking_preset": "vllm", "requested": [64], "thinking_body": {"x": "{budget}"}}, {},
         "delete budgets.thinking_body"),
    ],
)
def test_a_preset_the_server_would_reject_fails_before_any_request(project, fake_model, capsys, budgets,
                                                                     sampling, message):
    project(fake_model.url, budgets={"method": "thinking", **budgets},
            sampling={"samples": 1, "vote_samples": 2, **sampling})
    assert main(["run"]) == 2
    assert message in capsys.readouterr().err
    assert fake_model.requests == []


def test_the_fake_anthropic_endpoint_rejects_what_the_preset_check_forbids(project, fake_model, capsys):
    """Without the preset (a hand-written thinking_body) the same request reaches the server: its 400."""
    fake_model.provider = "anthropic"
    project(fake_model.url, budgets={"method": "thinking", "requested": [512]},
            sampling={"samples": 1, "vote_samples": 2, "temperature": None})
    assert main(["run"]) == 2
    assert "greater than or equal to 1024" in capsys.readouterr().err


def test_effort_presets_keep_the_reasoning_effort_body(project, fake_model):
    project(fake_model.url, budgets={"method": "effort", "requested": ["low", "high"], "thinking_preset": "openai"},
            sampling={"samples": 1, "vote_samples": 1, "temperature": None, "top_p": None})
    assert main(["run"]) == 0
    assert {r["body"]["reasoning_effort"] for r in fake_model.requests} == {"low", "high"}
    assert BudgetParams(method="effort", requested=["low"], thinking_preset="gemini").thinking_preset == "gemini"


def test_a_cap_the_server_ignores_stops_the_run_and_names_the_field_to_use(project, fake_model, capsys):
    fake_model.ignored = {"max_completion_tokens"}  # llama.cpp's server: returns 5 tokens for a cap of 2
    project(fake_model.url, budgets={"method": "cap", "requested": [2, 8]},
            sampling={"samples": 2, "vote_samples": 4, "concurrency": 1})
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "ignored `max_completion_tokens`" in err and "budgets.cap_field: max_tokens" in err
    assert len(fake_model.requests) == 1, "nothing more is spent once the knob is known to do nothing"
    assert main(["run"]) == 2, "the stored over-long response is never plotted either"
    assert len(fake_model.requests) == 1

    project(fake_model.url, budgets={"method": "cap", "requested": [2, 8], "cap_field": "max_tokens"},
            sampling={"samples": 2, "vote_samples": 4, "concurrency": 1})
    assert main(["run"]) == 0


def test_a_thinking_budget_the_server_ignores_stops_the_run(project, fake_model, capsys):
    fake_model.reasoning_field = "reasoning"
    fake_model.ignored = {"thinking_token_budget"}  # vLLM started without --reasoning-parser
    project(fake_model.url, budgets={"method": "thinking", "requested": [16, 64], "thinking_preset": "vllm"},
            sampling={"samples": 1, "vote_samples": 1, "concurrency": 1})
    assert main(["run"]) == 2
    assert "ignored the thinking budget" in capsys.readouterr().err
    assert len(fake_model.requests) == 1


def test_a_thinking_budget_ignored_by_a_server_that_sends_no_count_is_caught_from_the_text(project, fake_model,
                                                                                            capsys):
    fake_model.reasoning_field = "reasoning_content"
    fake_model.report_reasoning_tokens = False
    fake_model.ignored = {"custom_params"}  # SGLang without --enable-strict-thinking
    project(fake_model.url, budgets={"method": "thinking", "requested": [16, 64], "thinking_preset": "sglang"},
            sampling={"samples": 1, "vote_samples": 1, "concurrency": 1})
    assert main(["run"]) == 2
    assert "estimated from its reasoning text" in capsys.readouterr().err
    fake_model.ignored = set()  # the budget applied: 16 tokens of thinking pass, estimated or not
    project(fake_model.url, budgets={"method": "thinking", "requested": [16, 64], "thinking_preset": "sglang"},
            sampling={"samples": 1, "vote_samples": 1, "concurrency": 1, "seed": 1})
    assert main(["run"]) == 0


def _choices(reasoning_chars: int, answer: str, n: int, completion_tokens: int) -> dict:
    """A stored response of n choices that sent reasoning text but no reasoning count (usage is per request)."""
    return {"completion_tokens": completion_tokens, "reasoning_tokens": None,
            "choices": [{"text": answer, "reasoning": "x" * reasoning_chars, "finish_reason": "stop"}] * n}


def test_n_choices_are_each_credited_their_own_share_of_the_tokens_not_the_whole_response():
    """Four choices that each thought ~100 tokens (a 128 budget obeyed): the request reports 4 x 110
    completion tokens. Crediting each choice the whole 440 would estimate ~1,600 reasoning tokens and stop
    the run for an ignored budget; per choice it is ~100."""
    obeyed = _choices(400, "so the answer is 42", 4, 440)
    assert 90 <= _estimated_reasoning(obeyed) <= 110
    request = {"endpoint": "chat", "max_tokens": None}
    check_within_limits(request, obeyed, thinking_budget=128, tolerance=16, preset="vllm")  # no false alarm
    ignored = _choices(4000, "so the answer is 42", 4, 4 * 1010)  # ~1,000 reasoning tokens each
    with pytest.raises(LimitIgnored, match="estimated"):
        check_within_limits(request, ignored, thinking_budget=128, tolerance=16, preset="vllm")


def test_usage_of_several_choices_is_split_by_each_choice_s_reasoning_and_text():
    response = {"completion_tokens": 300, "choices": [{"text": "a" * 10, "reasoning": "r" * 90},
                                                      {"text": "b" * 200, "reasoning": None}]}
    assert [_choice_tokens(response, i, "completion_tokens") for i in (0, 1)] == [100, 200]


def test_prompted_thinking_asks_for_the_block_in_the_system_turn_and_opens_it_for_the_model():
    """`chatml-think`: a chat model never trained on think tags (Qwen2.5) is told in its system turn to
    reason inside <think> </think>, and the assistant turn is prefilled with "<think>\\n"; the reasoning
    request then stops at </think> like any think-tag family, and the forced answer follows "\\n</think>"."""
    from harness.params import Params
    from harness.requests.chain import THINK_SYSTEM_PROMPT, answer_request, first_request

    params = Params.model_validate({"model": {"chat_template": "chatml-think"},
                                    "budgets": {"method": "forcing", "requested": [32, 64], "wait": True}})
    first = first_request(params, "What is 17 * 23?", "p0", 64, 0)
    assert first["prompt"] == (f"<|im_start|>system\n{THINK_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
                               + params.prompt_template.replace("{problem}", "What is 17 * 23?")
                               + "<|im_end|>\n<|im_start|>assistant\n<think>\n")
    assert "<think>" in THINK_SYSTEM_PROMPT and "</think>" in THINK_SYSTEM_PROMPT
    assert first["stop"] == ["</think>"] and first["max_tokens"] == 64
    answer = answer_request(params, first, "17 * 23 = 391.", 0)
    assert answer["prompt"].endswith("<think>\n17 * 23 = 391.\n</think>" + CUE)
    assert CHAT_TEMPLATES["chatml"].render("x").startswith("<|im_start|>system\nYou are a helpful assistant.")


# --- native budgets on llama.cpp: what its server returns, read without being fooled ---------------------

# The shape llama-server sends when its budget closes the block (Qwen2.5-Coder-1.5B at budget 32, the
# first response of examples/native-thinking): the field holds the first line of the thinking, the content
# the rest of it up to the forced close tag, then the answer; a 0.5B model writes further pairs after it.
STRAY = ("1. 11\n2. 1</think>\n\nThe sum is \\boxed{42}.\n\n<think>Let me double-check: 20 + 22 = 42.</think>"
         "\n\nSo the answer is \\boxed{42}.")


def test_the_forced_close_tag_ends_the_thinking_and_later_pairs_are_thinking_not_the_answer():
    from harness.analysis.thinking_text import response_thinking, split_after_field

    thinking, answer = split_after_field(STRAY)
    assert thinking == "1. 11\n2. 1Let me double-check: 20 + 22 = 42."
    assert "</think>" not in answer and "<think>" not in answer
    assert answer.startswith("\n\nThe sum is \\boxed{42}.") and answer.endswith("So the answer is \\boxed{42}.")
    assert split_after_field("first \\boxed{3} <think>cut off by the limit") == ("cut off by the limit",
                                                                                  "first \\boxed{3} ")
    assert split_after_field("a</think>b</think>c") == ("a", "bc")  # a second lone tag is stray: dropped
    from harness.analysis.thinking_text import think_blocks

    assert think_blocks("field ", STRAY) == ["field 1. 11\n2. 1", "Let me double-check: 20 + 22 = 42."]
    assert response_thinking("the field", "x</think>y") == ("the fieldx", "y")
    assert response_thinking(None, "a</think>b") == split_thinking("a</think>b")  # no field: as before
    job = Job("p0", "What is 20 + 22?", "42", 64, 0)
    # the thinking tail before the forced tag is never graded: here it holds the only \boxed{}
    cut = "so \\boxed{41}</think>\n\n"
    row = sample_row(Outcome(job=job, seed=0, text=cut, finish_reason="stop",
                             answer=split_after_field(cut)[1], reasoning="x"))
    assert row["answer"] is None and row["status"] == "no-answer-found"
    after = "<think>maybe \\boxed{41}</think>The answer is \\boxed{42}. <think>or \\boxed{40}</think>"
    assert sample_row(Outcome(job=job, seed=0, text=after, finish_reason="stop",
                              answer=split_after_field(after)[1], reasoning="x"))["answer"] == "42"


def test_the_budget_check_counts_the_reasoning_field_not_an_answer_full_of_stray_tags():
    """A response measured on llama-server (0.5B): 177 characters of reasoning (~45 tokens) and 246 completion tokens at budget 64
    were once estimated at 172 reasoning tokens and stopped the run."""
    response = {"reasoning": ("step " * 36)[:177], "text": STRAY * 3, "completion_tokens": 246,
                "finish_reason": "stop"}
    request = {"endpoint": "chat", "messages": []}
    check_within_limits(request, response, 64, 16, "llamacpp")  # no LimitIgnored
    assert _estimated_reasoning(response) < 172
    counted = {**response, "reasoning_tokens": 70, "reasoning_count": "tokenize"}  # 4 blocks: 1 field + 3 pairs
    check_within_limits(request, counted, 16, 16, "llamacpp")  # 70 <= (16 + 16) x 4 blocks
    with pytest.raises(LimitIgnored, match="counted by its /tokenize"):
        check_within_limits(request, {**counted, "text": "plain answer"}, 16, 16, "llamacpp")


def test_reasoning_tokens_are_counted_by_the_servers_tokenizer_where_it_has_one(project, fake_model):
    fake_model.reasoning_field = "reasoning_content"
    fake_model.report_reasoning_tokens = False
    fake_model.tokenize = True  # llama-server's POST /tokenize
    samples = _run(project, fake_model, budgets={"method": "prompt", "requested": [4, 16]})
    assert (samples["reasoning_count"] == "tokenize").all()
    assert (samples["reasoning_tokens"].astype(int) == 40).all()  # the toy model's 40 words of thinking
    assert {r["path"] for r in fake_model.helper_requests} == {"/tokenize"}
    stored = [json.loads(line)["response"] for line in Path("store/sample.jsonl").read_text().splitlines()]
    assert all(r["reasoning_count"] == "tokenize" and r["reasoning_tokens"] == 40 for r in stored)


def test_a_llama_cpp_template_that_does_not_open_think_stops_before_any_request(project, fake_model, capsys):
    fake_model.reasoning_field = "reasoning_content"
    fake_model.generation_prompt_end = "<|im_start|>assistant\n"  # the Qwen2.5 GGUF's own template
    project(fake_model.url, budgets={"method": "thinking", "requested": [16, 64], "thinking_preset": "llamacpp"},
            sampling={"samples": 1, "vote_samples": 1})
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "not '<think>'" in err and "--chat-template-file" in err and len(err.strip().splitlines()) == 1
    assert fake_model.requests == []
    fake_model.generation_prompt_end = "<|im_start|>assistant\n<think>"
    assert main(["run"]) == 0 and fake_model.requests


def test_a_thinking_budget_that_changed_nothing_is_flagged_in_metrics_and_the_summary(project, fake_model, capsys):
    """A server that drops the budget field answers every budget alike: the run completes, but says so."""
    project(fake_model.url, budgets={"method": "thinking", "requested": [16, 64], "thinking_preset": "llamacpp"},
            sampling={"samples": 1, "vote_samples": 1})
    assert main(["run"]) == 0
    flagged = json.loads(Path("outputs/metrics.json").read_text())["thinking"]["budget_ignored"]
    assert "the budget changed nothing" in flagged
    assert "WARNING: every sample spent the same completion tokens" in capsys.readouterr().out
    fake_model.reasoning_field = "reasoning_content"  # a server that applies it: nothing flagged
    Path("store/sample.jsonl").unlink()
    Path("store/calibrate.jsonl").unlink()
    assert main(["run"]) == 0
    assert json.loads(Path("outputs/metrics.json").read_text())["thinking"]["budget_ignored"] is None


def test_method_thinking_on_the_embedded_python_server_stops_before_any_request(project, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_EMBEDDED_SERVER", "python")
    project("embedded", budgets={"method": "thinking", "requested": [16, 64], "thinking_preset": "llamacpp"},
            sampling={"samples": 1, "vote_samples": 1})
    assert main(["run"]) == 2
    assert "needs llama.cpp's llama-server" in capsys.readouterr().err
