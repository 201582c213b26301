"""How a token budget becomes a request. Pure: no HTTP, no files.

Ways to spend "about N tokens" (`budgets.method`):
- `prompt` (the seed's): ask in the prompt to "use around N tokens" and measure what the model spends.
  Works for any chat model, obeyed only in some range (o1-mini used ~8x the request between 2^4 and 2^11).
- `forcing` (s1-style budget forcing): let the model reason on the raw completions endpoint, cut the
  reasoning at N tokens, append an answer cue (``Final answer: \\boxed{``) and let it write the answer.
  Tokens then track N exactly, which makes small open models usable for scaling curves. With
  `budgets.wait` (s1's extension) a model that stops early is told "Wait" and goes on up to N.
- `cap`: a hard `max_completion_tokens` (or `max_tokens`) of N; cut answers are counted as truncated.
- `thinking`: the provider's thinking budget (Anthropic/Qwen3-style) passed through `extra_body`.
- `effort`: OpenAI's `reasoning_effort` level (low/medium/high...) is the budget; tokens are measured.

A request is a plain dict: ``endpoint`` ("chat" or "completions") plus the body the OpenAI API takes.
Its canonical JSON is the store key, so everything that changes the answer must be in it and nothing
else (no API key, no base URL: replicas of one model share responses).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .budget_axis import Budget
from .params import Params

SYSTEM_PROMPT = "You are a helpful assistant."


def sample_seed(base_seed: int, problem_id: str, sample: int | str) -> int:
    """A per-sample seed, stable across runs and machines.

    It does not depend on the budget on purpose: with the same seed a forced run at 64 tokens starts
    with the same reasoning as the one at 32, so budgets are compared on common random numbers.
    """
    digest = hashlib.sha256(f"{base_seed}:{problem_id}:{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


@dataclass(frozen=True)
class ChatTemplate:
    """How a model family writes a chat turn, for the raw completions endpoint that `forcing` needs.

    `end_of_turn` stops the forced answer: a model that closes its turn has finished answering.
    """

    system: str
    user: str
    assistant: str
    end_of_turn: str

    def render(self, user: str, system: str = SYSTEM_PROMPT) -> str:
        """The prompt a chat endpoint would build for one user message, ready for the assistant's reply."""
        return self.system.format(system) + self.user.format(user) + self.assistant


# `model.chat_template` names one of these (params.py allows exactly these names).
CHAT_TEMPLATES = {
    "chatml": ChatTemplate(  # Qwen2.5 and many other open models
        system="<|im_start|>system\n{}<|im_end|>\n",
        user="<|im_start|>user\n{}<|im_end|>\n",
        assistant="<|im_start|>assistant\n",
        end_of_turn="<|im_end|>",
    ),
}


def fill_budget(template: Any, budget: Budget) -> Any:
    """Copy of a JSON-like template with every "{budget}" string leaf replaced by the integer budget."""
    if isinstance(template, dict):
        return {k: fill_budget(v, budget) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_budget(v, budget) for v in template]
    if template == "{budget}":
        return budget
    return template


def render_prompt(template: str, problem: str, budget: Budget) -> str:
    # str.replace, not str.format: problems are full of LaTeX braces.
    return template.replace("{problem}", problem).replace("{budget}", str(budget))


def _sampling_fields(params: Params, seed: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"model": params.model.name}
    # left out when null: reasoning models reject them (and their absence keeps the store key honest)
    if params.sampling.temperature is not None:
        fields["temperature"] = params.sampling.temperature
    if params.sampling.top_p is not None:
        fields["top_p"] = params.sampling.top_p
    fields["seed"] = seed
    return fields


def first_request(params: Params, problem: str, problem_id: str, budget: Budget, sample: int) -> dict[str, Any]:
    """The first (for `prompt`, the only) request of one sample.

    With `sampling.n_per_request` = n > 1, samples are asked for n at a time: every sample of a group
    maps to the group's request (seeded by its first sample) and takes its own choice from it.
    """
    n = params.sampling.n_per_request
    group_first = sample - sample % n
    seed = sample_seed(params.sampling.seed, problem_id, group_first)
    text = render_prompt(params.prompt_template, problem, budget)
    method = params.budgets.method
    if method in ("prompt", "cap", "thinking", "effort"):
        req: dict[str, Any] = {
            "endpoint": "chat",
            "messages": [{"role": "user", "content": text}],
            **_sampling_fields(params, seed),
        }
        if method == "cap":  # a hard limit: the model is cut at N, truncations are counted
            req[params.budgets.cap_field] = budget
        elif method == "effort":  # the level is the budget; reasoning models take only this kind of cap
            req["reasoning_effort"] = budget
            if params.budgets.max_tokens is not None:
                req[params.budgets.cap_field] = params.budgets.max_tokens
        elif params.budgets.max_tokens is not None:
            req["max_tokens"] = params.budgets.max_tokens
        if method == "thinking":  # the provider's own thinking budget, passed through the request body
            req["extra_body"] = fill_budget(params.budgets.thinking_body, budget)
    else:
        req = {
            "endpoint": "completions",
            "prompt": CHAT_TEMPLATES[params.model.chat_template].render(text),
            "max_tokens": budget,
            **_sampling_fields(params, seed),
        }
    if n > 1:
        req["n"] = n
    return req


def top_up_request(first: dict[str, Any], missing: int, round_: int) -> dict[str, Any]:
    """A server returned fewer choices than `n` (llama.cpp ignores `n`): ask again for the rest.

    The seed is derived from the original one and the round, so the top-up is itself reproducible and
    stored under its own key.
    """
    req = {**first, "seed": sample_seed(first["seed"], "top-up", round_)}
    if missing > 1:
        req["n"] = missing
    else:
        req.pop("n", None)
    return req


def should_wait(params: Params, finish_reason: str | None, used: int, budget: Budget, waits: int) -> bool:
    """s1's extension: the model ended its reasoning before the budget, so suppress the end and go on."""
    b = params.budgets
    return (b.method == "forcing" and b.wait and finish_reason == "stop" and isinstance(budget, int)
            and used < budget and waits < b.max_waits)


def continue_request(first: dict[str, Any], text: str, remaining: int, seed: int) -> dict[str, Any]:
    """Forcing with "Wait": the reasoning so far (ending in the wait cue) continued for the rest of the budget."""
    base = {k: v for k, v in first.items() if k != "n"}
    return {**base, "seed": seed, "prompt": first["prompt"] + text, "max_tokens": remaining}


def needs_forced_answer(params: Params, finish_reason: str | None) -> bool:
    """Forcing: the reasoning hit the budget (finish_reason 'length'), so the answer must be forced."""
    return params.budgets.method == "forcing" and finish_reason == "length"


def answer_request(params: Params, first: dict[str, Any], reasoning: str, seed: int) -> dict[str, Any]:
    """Forcing's second request: the cut reasoning plus the answer cue; the model writes only the answer.

    Always one choice, seeded by the sample itself (the first request may have served several samples).
    """
    base = {k: v for k, v in first.items() if k != "n"}
    return {
        **base,
        "seed": seed,
        "prompt": first["prompt"] + reasoning + params.budgets.answer_cue,
        "max_tokens": params.budgets.answer_tokens,
        "stop": ["\n", CHAT_TEMPLATES[params.model.chat_template].end_of_turn],
    }
