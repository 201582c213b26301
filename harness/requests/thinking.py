"""Each server's thinking-budget field, and the check that a server obeyed the limit a request set.

Why: the chain builds requests from these presets, and every response is checked against its request's
limits before it is used, so a knob the server silently ignored stops the run instead of being plotted at
a budget it never had. Reading the thinking out of a text is pure and lives in analysis/thinking_text.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..analysis.thinking_text import COUNT_TOKENIZE, THINK_OPEN, reasoning_tokens_by_chars, response_thinking


@dataclass(frozen=True)
class Preset:
    """One server family's thinking-budget knob: the request fields it reads, its documented rules, and
    how far past the budget its reasoning may go before we call the budget ignored (None: no promise)."""

    body: dict[str, Any]  # `extra_body` template; "{budget}" leaves become the budget
    source: str  # where the field name and its rules are documented
    tolerance: int | None  # reasoning tokens allowed beyond the budget; None = the budget is only a target
    min_budget: int = 0
    max_budget: int | None = None
    needs_max_tokens_above_budget: bool = False
    no_temperature: bool = False
    single_choice: bool = False


# `budgets.thinking_preset` for method `thinking`. Each body was checked against the cited source; the
# fake server (tests/fake_server.py) implements the same fields and the same rejections.
PRESETS: dict[str, Preset] = {
    # vLLM: `thinking_token_budget` is a top-level sampling parameter; once the reasoning reaches it vLLM
    # forces the end-of-reasoning string. Honoured only with `--reasoning-parser` (and `--reasoning-config`
    # or a parser that knows its think tokens). docs/features/reasoning_outputs.md, "Thinking Budget
    # Control" (github.com/vllm-project/vllm, PR #20859). The forced end delimiter is a few tokens long.
    "vllm": Preset(body={"thinking_token_budget": "{budget}"}, tolerance=16,
                   source="https://docs.vllm.ai/en/latest/features/reasoning_outputs.html#thinking-budget-control"),
    # SGLang: the per-request budget is `custom_params.thinking_budget`, which its ThinkingBudgetLogitProcessor
    # reads (python/sglang/srt/sampling/custom_logit_processor.py: once that many tokens follow the think
    # start token it forces a newline, then the end token). Enforced by the server flag
    # `--enable-strict-thinking`, or by `--enable-custom-logit-processor` plus the processor's serialized
    # `custom_logit_processor` string (then write the whole body in `budgets.thinking_body`, no preset):
    # docs.sglang.io, Thinking Budget.
    "sglang": Preset(body={"custom_params": {"thinking_budget": "{budget}"}}, tolerance=16,
                     source="https://docs.sglang.io/docs/advanced_features/thinking_budget"),
    # llama.cpp server: per request `thinking_budget_tokens` (or its alias `reasoning_budget_tokens`, read
    # first) on /v1/chat/completions; the request wins over the launch flag `--reasoning-budget N`, which
    # only fills in for a request that sends neither (tools/server/server-common.cpp, "Reasoning budget:
    # pass parameters through to sampling layer", in the llama.cpp vendored by llama-cpp-python 0.3.36).
    # Applied only when the chat template is recognised as a thinking one and the prompt's tokens end with
    # its start tag; at the budget the sampler forces the end tag, and every later `<think>` in the same
    # response gets the budget afresh. Verified on llama-server (docs/servers.md).
    "llamacpp": Preset(body={"thinking_budget_tokens": "{budget}"}, tolerance=16,
                       source="https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md"),
    # Anthropic's OpenAI SDK compatibility layer: `thinking: {type: enabled, budget_tokens: N}` in the body;
    # extended thinking needs budget_tokens >= 1024 and < max_tokens, is incompatible with temperature
    # changes, and the layer requires n = 1. The budget is a target Claude may not exhaust.
    "anthropic": Preset(body={"thinking": {"type": "enabled", "budget_tokens": "{budget}"}}, tolerance=None,
                        min_budget=1024, needs_max_tokens_above_budget=True, no_temperature=True,
                        single_choice=True,
                        source="https://docs.anthropic.com/en/api/openai-sdk ; "
                               "https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking"),
    # Gemini's OpenAI compatibility: the thinking budget goes in the body's own `extra_body.google.
    # thinking_config.thinking_budget` (so the request carries extra_body twice); it may not be combined
    # with `reasoning_effort`. Ranges are per model (2.5 Pro 128-32768, Flash 0-24576, Flash-Lite
    # 512-24576); the budget guides, it does not cap exactly.
    "gemini": Preset(body={"extra_body": {"google": {"thinking_config": {"thinking_budget": "{budget}"}}}},
                     tolerance=None, max_budget=32768,
                     source="https://ai.google.dev/gemini-api/docs/openai#thinking ; "
                            "https://ai.google.dev/gemini-api/docs/thinking"),
}
# `budgets.thinking_preset` for method `effort`: the level is `reasoning_effort` (OpenAI's field, which
# Gemini's compatibility layer also reads); the request body is the one method `effort` always sent.
EFFORT_PRESETS = {
    "openai": "https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort",
    "gemini": "https://ai.google.dev/gemini-api/docs/openai#thinking",
}
PRESET_NAMES = tuple(PRESETS) + ("openai",)


class TemplateWithoutThinking(RuntimeError):
    """llama-server's chat template does not open a thinking block: every budget field would be dropped."""


def check_thinking_prompt(prompt: str | None, preset: str | None) -> None:
    """Refuse, before any request, a llama.cpp server whose chat template cannot apply a thinking budget.

    llama.cpp's budget sampler starts counting when the prompt's tokens end with the template's start tag,
    and matches tokens, not text (Qwen2.5's `<think>` and `<think>\n` are different tokens), so the
    generation prompt must end exactly at `<think>`. A template that does not (the Qwen2.5 GGUFs' own) makes
    the server drop every budget field silently: the run would plot one answer at every budget. `prompt`
    is the server's rendering of one user message (client.generation_prompt); None (a server without
    /apply-template) cannot be checked here, and the limit check after each response still applies.
    """
    if preset != "llamacpp" or prompt is None or prompt.endswith(THINK_OPEN):
        return
    raise TemplateWithoutThinking(
        f"budgets.thinking_preset: llamacpp, but the server's chat template ends its generation prompt with "
        f"{prompt[-40:]!r}, not {THINK_OPEN!r}, so llama.cpp would ignore every thinking budget; start "
        "llama-server with `--jinja --chat-template-file harness/servers/templates/chatml-think.jinja "
        "--reasoning-format deepseek` (or a template of your model that ends with <think>), or use "
        "budgets.method: forcing")


class LimitIgnored(RuntimeError):
    """A response longer than its request allowed: the server ignored the field. The run stops at once
    (the responses received are stored; nothing more is spent on a knob that does nothing)."""


def _cap_hint(field: str) -> str:
    if field == "max_completion_tokens":
        return "set `budgets.cap_field: max_tokens` (llama.cpp's server and some proxies read only max_tokens)"
    return "set `budgets.cap_field: max_completion_tokens`"


def check_within_limits(request: dict[str, Any], response: dict[str, Any], thinking_budget: int | None,
                        tolerance: int | None, preset: str | None) -> None:
    """Raise `LimitIgnored` when the response exceeds a limit its request set.

    Usage is per request; with several choices the limit applies to each, so the total may reach
    choices x limit. A thinking budget is checked only where the server reports reasoning tokens and its
    documentation promises a cap (`tolerance` not None).
    """
    choices = len(response.get("choices", [response]))
    used = response.get("completion_tokens")
    for field in ("max_completion_tokens", "max_tokens"):
        limit = request.get(field)
        if limit is not None and used is not None and used > limit * choices:
            where = "the request" if request["endpoint"] == "completions" else f"`{field}`"
            raise LimitIgnored(
                f"the server ignored {where}: asked for at most {limit} tokens, it returned {used} "
                f"(finish_reason {response.get('finish_reason', 'per choice')!r}); nothing at this budget would "
                f"measure what it claims, so the run stopped before spending the rest. "
                + (_cap_hint(field) if request["endpoint"] == "chat" else
                   "check that the server honours max_tokens on /v1/completions")
            )
    if thinking_budget is None or tolerance is None:
        return
    reasoning, how = response.get("reasoning_tokens"), "reported"
    allowed = (thinking_budget + tolerance) * choices
    if response.get("reasoning_count") == COUNT_TOKENIZE:  # its own tokenizer on the text: exact, per block
        how = "sent (counted by its /tokenize)"
        allowed = (thinking_budget + tolerance) * thinking_blocks(response)
    elif reasoning is None:  # no count: estimate each choice from its text, flag only what no estimate error explains
        reasoning, how = _estimated_reasoning(response), "sent in one choice (estimated from its reasoning text)"
        allowed = (thinking_budget + tolerance) * ESTIMATE_SLACK * max(1, thinking_blocks(response) // choices)
    if reasoning is not None and reasoning > allowed:
        raise LimitIgnored(
            f"the server ignored the thinking budget (`budgets.thinking_preset: {preset}`): asked for at most "
            f"{thinking_budget} reasoning tokens, it {how} {reasoning}; start the server with the flag "
            "its preset names (docs/servers.md), or pick the preset of the server you run"
        )


def thinking_blocks(response: dict[str, Any]) -> int:
    """How many thinking blocks a response holds (at least one per choice): the separate reasoning field and
    each `<think>` in the text. llama.cpp grants every block the budget afresh (its budget sampler re-arms
    on each new `<think>`), and a small model writes several, so the limit is the budget per block."""
    blocks = 0
    for choice in response.get("choices", [response]):
        blocks += max(1, bool(choice.get("reasoning")) + (choice.get("text") or "").count(THINK_OPEN))
    return blocks


# A character-share estimate of reasoning tokens may be off by this factor (prose vs. LaTeX tokenizes very
# differently); beyond it the budget was not applied at all.
ESTIMATE_SLACK = 2


def choice_share(response: dict[str, Any], index: int, total: int | None) -> int | None:
    """One choice's part of a per-request usage count: servers report usage once per request, so with
    several choices it is split in proportion to each choice's characters (reasoning field and text)."""
    choices = response.get("choices", [response])
    if total is None or len(choices) == 1:
        return total
    lengths = [len(c.get("reasoning") or "") + len(c.get("text") or "") or 1 for c in choices]
    return round(total * lengths[index] / sum(lengths))


def _estimated_reasoning(response: dict[str, Any]) -> int | None:
    """Reasoning tokens of the most-reasoning choice of a response that sent reasoning text (field or
    think tags) but no count. Each choice is credited its own share of the request's completion tokens
    (choice_share), never the whole: n choices each credited the total would look n times over budget."""
    most = None
    choices = response.get("choices", [response])
    for index, choice in enumerate(choices):
        thinking, answer = response_thinking(choice.get("reasoning"), choice.get("text") or "")
        if not thinking:
            continue
        own = choice_share(response, index, response.get("completion_tokens"))
        share = reasoning_tokens_by_chars(own, thinking, answer) or 0
        most = share if most is None else max(most, share)
    return most
