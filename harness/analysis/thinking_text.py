"""Where a generated text's thinking ends and its answer starts, and how its reasoning tokens were counted.

Why apart from the servers' presets (requests/thinking.py): the grader, the thinking measures and the
report read thinking text with no server in sight, and a pure module must not import the request layer.
The grader grades only the answer part (a `\\boxed{}` inside the thinking is a draft, never the answer).
"""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def split_thinking(text: str) -> tuple[str, str]:
    """(thinking, answer) of one generated text.

    `<think>…</think>` inline in the content (DeepSeek-R1, QwQ, Qwen3 without a reasoning parser): the
    answer is what follows the last `</think>`. A `</think>` with no opening tag is the R1 distills' and
    our forced think-tag prompts' shape (the template opened the block). An opening tag that never
    closes is thinking cut off by the token limit: there is no answer part at all.
    """
    thinking, answer = thinking_bounds(text)
    return text[thinking], text[answer]


def thinking_bounds(text: str) -> tuple[slice, slice]:
    """Where `split_thinking` finds the thinking and the answer in `text`, as (thinking, answer) slices: the
    report lays a sample's pieces out by these, so it splits exactly where the grader did."""
    close = text.rfind(THINK_CLOSE)
    if close >= 0:
        start = text.find(THINK_OPEN, 0, close)
        return slice(start + len(THINK_OPEN) if start >= 0 else 0, close), slice(close + len(THINK_CLOSE), len(text))
    start = text.find(THINK_OPEN)
    if start >= 0:
        return slice(start + len(THINK_OPEN), len(text)), slice(0, start)
    return slice(0, 0), slice(0, len(text))


def split_after_field(text: str) -> tuple[str, str]:
    """(thinking, answer) of the content a server sent *beside* a separate reasoning field.

    What llama-server sends when its budget closes the block (measured, docs/servers.md): the field holds
    the start of the thinking, and the content goes on with the rest of it up to the `</think>` the
    sampler forced, then the answer. So a close tag with no open tag before it ends the thinking: what
    precedes it is thinking, never the graded answer. After that the content is the answer, except for
    the `<think>…</think>` pairs a small model writes later (llama.cpp re-arms the budget on each new
    `<think>`): thinking; an unclosed `<think>` was cut off by the token limit; any other lone tag is
    dropped. `split_thinking` would take everything before the *last* `</think>` for thinking, so a pair
    written after the real answer would hide it from the grader and inflate the thinking count.
    """
    thinking, answer, at = [], [], 0
    close, start = text.find(THINK_CLOSE), text.find(THINK_OPEN)
    if close >= 0 and (start < 0 or close < start):  # the field's block, continued and closed here
        thinking.append(text[:close])
        at = close + len(THINK_CLOSE)
    while at < len(text):
        start, close = text.find(THINK_OPEN, at), text.find(THINK_CLOSE, at)
        if start < 0 and close < 0:
            answer.append(text[at:])
            break
        if close >= 0 and (start < 0 or close < start):  # a stray close tag: dropped
            answer.append(text[at:close])
            at = close + len(THINK_CLOSE)
            continue
        answer.append(text[at:start])
        end = text.find(THINK_CLOSE, start)
        end = len(text) if end < 0 else end
        thinking.append(text[start + len(THINK_OPEN):end])
        at = end + len(THINK_CLOSE)
    return "".join(thinking), "".join(answer)


def think_blocks(reasoning: str | None, text: str) -> list[str]:
    """Each thinking block of a response beside a reasoning field, in order: the field with its
    continuation up to the forced close tag, then every `<think>…</think>` pair after it (as
    split_after_field reads them). llama.cpp grants each block the budget afresh."""
    close, start = text.find(THINK_CLOSE), text.find(THINK_OPEN)
    head = text[:close] if close >= 0 and (start < 0 or close < start) else ""
    blocks = [(reasoning or "") + head]
    at = len(head)
    while (start := text.find(THINK_OPEN, at)) >= 0:
        end = text.find(THINK_CLOSE, start)
        end = len(text) if end < 0 else end
        blocks.append(text[start + len(THINK_OPEN):end])
        at = end
    return blocks


def response_thinking(reasoning: str | None, text: str) -> tuple[str, str]:
    """(thinking, answer) of one response: its separate reasoning field (when the server sent one) and any
    think blocks inline in its text, against the rest of its text."""
    if reasoning:
        inline, answer = split_after_field(text)
        return reasoning + inline, answer
    return split_thinking(text)


# How `reasoning_tokens` was obtained, in the sample table's `reasoning_count` column.
COUNT_USAGE = "usage"  # the server's usage.completion_tokens_details.reasoning_tokens
COUNT_TOKENIZE = "tokenize"  # the server's own tokenizer on the reasoning text (llama-server's /tokenize)
COUNT_EXACT = "requests"  # forcing: the thinking filled whole requests, whose completion_tokens are exact
COUNT_CHARS = "chars"  # a request held thinking and answer: its completion_tokens split by character share


def reasoning_tokens_by_chars(completion_tokens: int | None, thinking: str, answer: str) -> int | None:
    """A response's tokens split in proportion to characters, when the server sent the reasoning text but
    no count of it. Approximate (tokens per character differ between prose and LaTeX), hence marked."""
    if completion_tokens is None:
        return None
    total = len(thinking) + len(answer)
    return round(completion_tokens * len(thinking) / total) if total else 0
