"""How one sample's requests follow each other: the first request, a top-up of choices the server left
out, "Wait" continuations, the forced answer; each built from params, none sent from here.

The chain is walked against a `fetch` (request -> response): the engine's (store first, else the model)
for a live run, or the store alone for a replay, the preflight and the estimate. Walked against the
store alone, the first absent response stops the walk with `Missing`, which names the request and its
step; so every caller agrees on what a sample still needs.

Ways to spend "about N tokens" (`budgets.method`):
- `prompt` (the seed's): ask in the prompt to "use around N tokens" and measure what the model spends.
  Works for any chat model, obeyed only in some range (o1-mini used ~8x the request between 2^4 and 2^11).
- `forcing` (s1-style budget forcing): let the model reason on the raw completions endpoint, cut the
  reasoning at N tokens, append an answer cue (``Final answer: \\boxed{``) and let it write the answer.
  Tokens then track N exactly, which makes small open models usable for scaling curves. With
  `budgets.wait` (s1's extension) a model that stops early is told "Wait" and goes on up to N. A think-tag
  template (`qwen3`, `deepseek-r1`) opens a `<think>` block, stops each reasoning request at `</think>`,
  and closes the block itself before the cue, so the thinking is exactly N tokens.
- `cap`: a hard `max_completion_tokens` (or `max_tokens`) of N; cut answers are counted as truncated.
- `thinking`: the provider's thinking budget passed through `extra_body`: a server's own field
  (`budgets.thinking_preset`, thinking.PRESETS) or the `budgets.thinking_body` template.
- `effort`: OpenAI's `reasoning_effort` level (low/medium/high...) is the budget; tokens are measured.

A request is a plain dict: ``endpoint`` ("chat" or "completions") plus the body the OpenAI API takes.
Its canonical JSON is the store key, so everything that changes the answer must be in it and nothing
else (no API key, no base URL: replicas of one model share responses).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..analysis.confidence import answer_logprob
from ..analysis.thinking_text import (
    COUNT_CHARS,
    COUNT_EXACT,
    COUNT_TOKENIZE,
    COUNT_USAGE,
    THINK_CLOSE,
    reasoning_tokens_by_chars,
    response_thinking,
    split_after_field,
    split_thinking,
)
from ..budget_axis import Budget
from ..files import store_dir
from ..params import Params
from .store import ResponseStore, StoreError, request_key
from .thinking import PRESETS, check_within_limits, choice_share

NO_REQUESTS_ENV = "HARNESS_NO_REQUESTS"  # set to 1: replay only, a missing response is an error

# What `walk` put into a sample's text, piece by piece (Outcome.segments): the model's own words and each
# insertion the harness made, recorded where `walk` makes it. A reader (the HTML report) marks the
# insertions from these, never by searching the text for a cue the model may also have written itself.
MODEL_TEXT = "model"  # what a response said, as appended to the sample's text
REASONING_FIELD = "reasoning"  # a server's separate reasoning field: the thinking, but never part of `text`
WAIT_CUE = "wait"  # budgets.wait_cue, appended when the model stopped before its budget
THINK_CLOSE_INSERTED = "think-close"  # the template's close tag, written by the harness at the budget
ANSWER_CUE = "answer-cue"  # budgets.answer_cue, appended before the forced answer
INSERTIONS = (WAIT_CUE, THINK_CLOSE_INSERTED, ANSWER_CUE)

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
    A think-tag family also has `think_open` (the prompt opens the thinking block, as its chat template
    does) and `think_close`, written by the harness when the budget is spent; its reasoning requests stop
    at `thinking.THINK_CLOSE`, so "the model stopped thinking" is seen the moment it closes the block.
    """

    system: str
    user: str
    assistant: str
    end_of_turn: str
    think_open: str = ""
    think_close: str = ""
    system_prompt: str = SYSTEM_PROMPT  # what the `system` turn says (when the family has one)

    @property
    def thinks(self) -> bool:
        return bool(self.think_open)

    def render(self, user: str, system: str | None = None) -> str:
        """The prompt a chat endpoint would build for one user message, ready for the assistant's reply."""
        system = self.system_prompt if system is None else system
        return self.system.format(system) + self.user.format(user) + self.assistant + self.think_open


# Prompted thinking: the system turn of `chatml-think`, for chat models never trained on think tags.
THINK_SYSTEM_PROMPT = (
    "You are a helpful assistant. Think through the problem step by step inside <think> </think> tags, "
    "checking your work; after </think>, give only the final answer in \\boxed{}."
)

# `model.chat_template` names one of these (params.py allows exactly these names).
CHAT_TEMPLATES = {
    "chatml": ChatTemplate(  # Qwen2.5 and many other open models
        system="<|im_start|>system\n{}<|im_end|>\n",
        user="<|im_start|>user\n{}<|im_end|>\n",
        assistant="<|im_start|>assistant\n",
        end_of_turn="<|im_end|>",
    ),
    # Qwen3 (thinking mode) and QwQ: chatml turns, no default system prompt, and the assistant turn opens
    # with "<think>\n" (Qwen3's tokenizer_config chat_template; with enable_thinking=false it would write an
    # empty "<think>\n\n</think>\n\n" instead). The harness closes the block with "\n</think>"; the answer
    # cue brings its own blank line.
    "qwen3": ChatTemplate(
        system="",
        user="<|im_start|>user\n{}<|im_end|>\n",
        assistant="<|im_start|>assistant\n",
        end_of_turn="<|im_end|>",
        think_open="<think>\n",
        think_close="\n</think>",
    ),
    # Prompted thinking on a chatml model whose own template has no <think> (Qwen2.5 and its Coder models):
    # the system turn asks for the reasoning inside <think> </think>, and "<think>\n" is prefilled in the
    # assistant turn, so the model writes its reasoning straight into an open block and closes it itself
    # (Qwen2.5-Coder-1.5B closed it in 6 of 6 tries; the tags are ordinary text to it, several tokens each).
    # Everything else is think-tag forcing as for Qwen3: stop at </think>, "\n</think>" written at N.
    "chatml-think": ChatTemplate(
        system="<|im_start|>system\n{}<|im_end|>\n",
        user="<|im_start|>user\n{}<|im_end|>\n",
        assistant="<|im_start|>assistant\n",
        end_of_turn="<|im_end|>",
        think_open="<think>\n",
        think_close="\n</think>",
        system_prompt=THINK_SYSTEM_PROMPT,
    ),
    # DeepSeek-R1 and its Qwen/Llama distills: "<｜User｜>...<｜Assistant｜>" (the chat_template in the
    # DeepSeek-R1-Distill-Qwen-7B GGUF, read for this), then "<think>\n", which DeepSeek's usage notes tell
    # callers to force (later template revisions write it themselves); no system prompt, as DeepSeek
    # advises. The BOS token "<｜begin▁of▁sentence｜>" is left out: that GGUF sets add_bos_token, so the server
    # adds it when it tokenizes a completions prompt.
    "deepseek-r1": ChatTemplate(
        system="",
        user="<｜User｜>{}",
        assistant="<｜Assistant｜>",
        end_of_turn="<｜end▁of▁sentence｜>",
        think_open="<think>\n",
        think_close="\n</think>",
    ),
}


def template_of(params: Params) -> ChatTemplate:
    return CHAT_TEMPLATES[params.model.chat_template]


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
            req["extra_body"] = fill_budget(thinking_body(params), budget)
    else:
        template = template_of(params)
        req = {
            "endpoint": "completions",
            "prompt": template.render(text),
            "max_tokens": budget,
            **_sampling_fields(params, seed),
        }
        if template.thinks:  # the reasoning ends where the model closes its thinking block
            req["stop"] = [THINK_CLOSE]
    req.update(logprob_fields(params, req["endpoint"]))
    if n > 1:
        req["n"] = n
    return req


def logprob_fields(params: Params, endpoint: str) -> dict[str, Any]:
    """`sampling.logprobs`: the OpenAI fields that return each generated token's log-probability (chat:
    `logprobs: true` with no alternatives; completions: `logprobs: 1`, the legacy API's count). Nothing
    under `effort`: OpenAI's reasoning models return none and reject the field (the vote stage says so).
    Every later request of the chain (Wait, forced answer) copies the first one's fields."""
    if not params.sampling.logprobs or params.budgets.method == "effort":
        return {}
    return {"logprobs": True, "top_logprobs": 0} if endpoint == "chat" else {"logprobs": 1}


def thinking_body(params: Params) -> dict[str, Any]:
    """Method `thinking`'s extra_body template: the preset's, else `budgets.thinking_body`."""
    preset = params.budgets.thinking_preset
    return PRESETS[preset].body if preset in PRESETS else params.budgets.thinking_body


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
    """Forcing: the reasoning hit the budget (finish_reason 'length'), so the answer must be forced.

    With a think-tag template the answer is always forced once the thinking ends, whether at the budget
    or because the model closed the block itself (its reasoning requests stop at the close tag).
    """
    if params.budgets.method != "forcing":
        return False
    return finish_reason in ("length", "stop") if template_of(params).thinks else finish_reason == "length"


def answer_request(params: Params, first: dict[str, Any], reasoning: str, seed: int) -> dict[str, Any]:
    """Forcing's second request: the cut reasoning plus the answer cue; the model writes only the answer.

    Always one choice, seeded by the sample itself (the first request may have served several samples).
    """
    base = {k: v for k, v in first.items() if k != "n"}
    template = template_of(params)
    return {
        **base,
        "seed": seed,
        "prompt": first["prompt"] + reasoning + template.think_close + params.budgets.answer_cue,
        "max_tokens": params.budgets.answer_tokens,
        "stop": ["\n", template.end_of_turn],
    }


@dataclass(frozen=True)
class Job:
    """One planned sample: problem `problem_id` at `budget`, the `sample`-th draw of its pool."""

    problem_id: str
    problem: str
    gold: str
    budget: Budget
    sample: int


@dataclass
class Outcome:
    """A sample's raw result, before grading: the text the model produced and what it cost."""

    job: Job
    seed: int
    text: str = ""
    finish_reason: str | None = None
    refusal: str | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    prompt_tokens: int | None = None
    input_tokens: int | None = None  # prompt tokens of every request of the chain (what is billed as input)
    cached_input_tokens: int | None = None  # of those, served from the provider's prompt cache
    billing: str = "live"  # batch: every request of the chain was answered through a Batch API
    requests: int = 0
    latency_s: float = 0.0
    error: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str = ""  # the thinking: a server's separate reasoning field, or the text's think block
    answer: str = ""  # the part of `text` after the thinking: the only part graded and voted on
    reasoning_count: str | None = None  # how reasoning_tokens was counted (thinking.COUNT_*)
    tokens_counted: str | None = None  # an imported response: how its tokens were counted (interop.rundir)
    answer_logprob: float | None = None  # mean log-probability of the answer tokens (confidence.answer_logprob)
    # (kind, text) in the order `walk` produced them: MODEL_TEXT, REASONING_FIELD or one of INSERTIONS;
    # the texts of every kind but REASONING_FIELD join to `text`
    segments: list[tuple[str, str]] = field(default_factory=list)


def seed_of(params: Params, job: Job) -> int:
    return sample_seed(params.sampling.seed, job.problem_id, job.sample)


def failed(params: Params, job: Job, error: Exception) -> Outcome:
    """A sample whose chain ended without a response (kept with status failed-after-retries)."""
    return Outcome(job=job, seed=seed_of(params, job), error=str(error))


class Missing(Exception):
    """A store-only walk reached a request with no stored response: `step` says which one it is."""

    def __init__(self, request: dict[str, Any], step: str = "first"):
        super().__init__(step)
        self.request = request
        self.step = step  # first, top-up, wait or answer


Fetch = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def _ask(fetch: Fetch, request: dict[str, Any], step: str) -> dict[str, Any]:
    try:
        return await fetch(request)
    except Missing:
        raise Missing(request, step) from None


def choices_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored response holds one choice flat, or several under `choices`."""
    return response.get("choices", [response])


def _choice_tokens(response: dict[str, Any], index: int, field_name: str) -> int | None:
    """Usage is per request; with several choices it is split in proportion to each choice's characters."""
    return choice_share(response, index, response.get(field_name))


async def _pick_choice(first: dict[str, Any], index: int, fetch: Fetch, outcome: Outcome) -> dict[str, Any]:
    """Choice `index` of a request for n choices, topping up while the server returned fewer."""
    response = await _ask(fetch, first, "first")
    collected = [(response, i) for i in range(len(choices_of(response)))]
    shares = [response]
    rounds = 0
    n = first.get("n", 1)
    while len(collected) <= index:
        rounds += 1
        if rounds > n + 2:
            from .client import RequestFailed  # only a live server can leave choices out

            raise RequestFailed(f"server returned no new choices after {rounds} top-up requests")
        extra = await _ask(fetch, top_up_request(first, n - len(collected), rounds), "top-up")
        collected += [(extra, i) for i in range(len(choices_of(extra)))]
        shares.append(extra)
    source, at = collected[index]
    outcome.requests += len(shares)
    choice = dict(choices_of(source)[at])
    for name in ("completion_tokens", "reasoning_tokens", "prompt_tokens", "cached_tokens"):
        choice[name] = _choice_tokens(source, at, name)
    choice["latency_s"] = source.get("latency_s")
    choice["batch_id"] = source.get("batch_id")
    return choice


def checked(params: Params, job: Job, fetch: Fetch) -> Fetch:
    """`fetch`, with every response held to the limits its request set (thinking.check_within_limits):
    live, the run stops at the first response that shows the server ignored one; replayed, such a
    stored response stops the stage instead of being plotted at a budget it never had."""
    preset = params.budgets.thinking_preset if params.budgets.method == "thinking" else None
    thinking_budget = int(job.budget) if preset in PRESETS else None
    tolerance = PRESETS[preset].tolerance if preset in PRESETS else None

    async def fetch_checked(request: dict[str, Any]) -> dict[str, Any]:
        response = await fetch(request)
        check_within_limits(request, response, thinking_budget, tolerance, preset)
        return response

    return fetch_checked


def _thinking_part(params: Params, part: dict[str, Any]) -> dict[str, Any]:
    """A think-tag reasoning request's response, cut at the close tag if the server ignored `stop`."""
    text = part["text"]
    if template_of(params).thinks and THINK_CLOSE in text:
        return {**part, "text": text[: text.index(THINK_CLOSE)], "finish_reason": "stop"}
    return part


async def walk(params: Params, job: Job, fetch: Fetch) -> Outcome:
    """Walk one sample's requests (one for `prompt`; reasoning + forced answer for `forcing`)."""
    fetch = checked(params, job, fetch)
    seed = seed_of(params, job)
    first = first_request(params, job.problem, job.problem_id, job.budget, job.sample)
    outcome = Outcome(job=job, seed=seed)
    part = await _pick_choice(first, job.sample % params.sampling.n_per_request, fetch, outcome)
    parts = [_thinking_part(params, part)]
    segments = _said(parts[0])
    text = parts[0]["text"]
    used, waits = part.get("completion_tokens") or 0, 0
    while should_wait(params, parts[-1]["finish_reason"], used, job.budget, waits):
        waits += 1
        text += params.budgets.wait_cue
        segments.append((WAIT_CUE, params.budgets.wait_cue))
        more = await _ask(fetch, continue_request(first, text, int(job.budget) - used, seed), "wait")
        outcome.requests += 1
        parts.append(_thinking_part(params, more))
        segments += _said(parts[-1])
        text += parts[-1]["text"]
        used += more.get("completion_tokens") or 0
    forced = needs_forced_answer(params, parts[-1]["finish_reason"])
    if forced:
        answer = await _ask(fetch, answer_request(params, first, text, seed), "answer")
        outcome.requests += 1
        parts.append(answer)
        close, cue = template_of(params).think_close, params.budgets.answer_cue
        segments += [(THINK_CLOSE_INSERTED, close), (ANSWER_CUE, cue), *_said(answer)]
        text = text + close + cue + answer["text"]
    outcome.text = text
    outcome.segments = [(kind, piece) for kind, piece in segments if piece]
    outcome.parts = parts
    outcome.finish_reason = parts[-1]["finish_reason"]
    outcome.refusal = next((p.get("refusal") for p in parts if p.get("refusal")), None)
    outcome.completion_tokens = _total(parts, "completion_tokens")
    outcome.prompt_tokens = parts[0].get("prompt_tokens")
    outcome.tokens_counted = parts[0].get("tokens_counted")
    outcome.input_tokens = _total(parts, "prompt_tokens")
    outcome.cached_input_tokens = _total(parts, "cached_tokens")
    outcome.billing = "batch" if all(p.get("batch_id") for p in parts) else "live"
    outcome.latency_s = round(sum(p.get("latency_s") or 0.0 for p in parts), 3)
    _separate_thinking(params, outcome, forced)
    outcome.answer_logprob = _answer_logprob(parts[-1])
    return outcome


def _said(part: dict[str, Any]) -> list[tuple[str, str]]:
    """One response's segments: its separate reasoning field (if the server sent one), then its text."""
    return [(REASONING_FIELD, part.get("reasoning") or ""), (MODEL_TEXT, part["text"])]


def _answer_logprob(part: dict[str, Any]) -> float | None:
    """The answer's confidence from the final request's stored log-probabilities (None: none stored)."""
    stored = part.get("logprobs")
    if not stored:
        return None
    return answer_logprob(stored.get("tokens") or [], stored.get("token_logprobs") or [])


def _separate_thinking(params: Params, outcome: Outcome, forced: bool) -> None:
    """Thinking apart from the answer, and how many tokens the thinking took (and how we know)."""
    fields = [p.get("reasoning") or "" for p in outcome.parts]
    split = split_after_field if any(fields) else split_thinking
    inline, outcome.answer = split(outcome.text)
    outcome.reasoning = "".join(fields) + inline
    outcome.reasoning_tokens = _total(outcome.parts, "reasoning_tokens")
    if outcome.reasoning_tokens is not None:
        tokenized = any(p.get("reasoning_count") == COUNT_TOKENIZE for p in outcome.parts)
        outcome.reasoning_count = COUNT_TOKENIZE if tokenized else COUNT_USAGE
    elif not outcome.reasoning:
        return
    elif forced and template_of(params).thinks:  # every request but the forced answer was thinking
        outcome.reasoning_tokens = _total(outcome.parts[:-1], "completion_tokens")
        outcome.reasoning_count = COUNT_EXACT
    else:
        shares = []
        for part in outcome.parts:
            thinking, answer = response_thinking(part.get("reasoning"), part["text"])
            shares.append(reasoning_tokens_by_chars(part.get("completion_tokens"), thinking, answer))
        outcome.reasoning_tokens = None if all(v is None for v in shares) else sum(v or 0 for v in shares)
        outcome.reasoning_count = COUNT_CHARS


def _total(parts: list[dict[str, Any]], name: str) -> int | None:
    values = [p.get(name) for p in parts]
    return None if all(v is None for v in values) else sum(v or 0 for v in values)


def stored(store: ResponseStore) -> Fetch:
    """The store as a fetch: a stored response, or `Missing` (nothing is ever sent)."""

    async def fetch(request: dict[str, Any]) -> dict[str, Any]:
        record = store.get(request_key(request))
        if record is None:
            raise Missing(request)
        return dict(record["response"])

    return fetch


async def first_missing(params: Params, job: Job, store: ResponseStore) -> Missing | None:
    """The first request of the job's chain the store lacks, or None when the whole chain is stored."""
    try:
        await walk(params, job, stored(store))
    except Missing as missing:
        return missing
    return None


async def _missing(params: Params, jobs: list[Job], store: ResponseStore) -> list[Job]:
    return [job for job in jobs if await first_missing(params, job, store) is not None]


async def stored_or_missing(params: Params, jobs: list[Job], store: ResponseStore) -> tuple[list[Outcome], list[Job]]:
    """One walk of every job over the store: the lean outcomes of those stored whole, and the jobs that are
    not. Why one walk: a store reads each record from disk when it is used, so walking to find what is
    missing and then again to replay read every record twice."""
    fetch = stored(store)
    outcomes: list[Outcome] = []
    missing: list[Job] = []
    for job in jobs:
        try:
            outcomes.append(lean(await walk(params, job, fetch)))
        except Missing:
            missing.append(job)
    return outcomes, missing


def missing_jobs(params: Params, jobs: list[Job], store: ResponseStore) -> list[Job]:
    """The jobs whose request chain is not fully in the store (walked offline, nothing is sent)."""
    return asyncio.run(_missing(params, jobs, store))


async def replay(params: Params, jobs: list[Job], store: ResponseStore, slim: bool = False) -> list[Outcome]:
    """Every job's outcome from the store alone (each chain must be stored whole); `slim`: each one `lean`,
    as a stage that only writes a table holds them."""
    fetch = stored(store)
    keep = lean if slim else (lambda outcome: outcome)
    return [keep(await walk(params, job, fetch)) for job in jobs]


GIST = 512  # characters kept from each end of a lean outcome's text and thinking


def lean(outcome: Outcome) -> Outcome:
    """The outcome as a stage's table needs it, without the text it was read from.

    Why: a stage holds every sample's outcome until it writes its table, and a forced sample's responses,
    segments, text and thinking are four copies of up to tens of kilobytes; at 57,600 samples that was
    gigabytes. The table needs the answer (kept whole), token counts, and whether the text and the thinking
    are empty: text and thinking keep their first and last GIST characters (stripped, so empty stays
    empty). The text itself stays in the store, where the report reads it again.
    """
    return replace(outcome, parts=[], segments=[], text=_gist(outcome.text), reasoning=_gist(outcome.reasoning))


def _gist(text: str) -> str:
    kept = text.strip()
    return kept if len(kept) <= 2 * GIST else kept[:GIST] + kept[-GIST:]


def check_may_request(desc: str, missing: int, planned: int) -> None:
    """Replay only (`HARNESS_NO_REQUESTS` set): a missing response is an error, not a request."""
    if missing and os.environ.get(NO_REQUESTS_ENV):
        raise StoreError(
            f"{desc}: {missing} of {planned} samples are missing from {store_dir()}/ and {NO_REQUESTS_ENV} "
            "is set, so nothing may be requested; unset it to run the model, or restore the store"
        )
