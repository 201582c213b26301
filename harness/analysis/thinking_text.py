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


# How `reasoning_tokens` was obtained, in the sample table's `reasoning_count` column.
COUNT_USAGE = "usage"  # the server's usage.completion_tokens_details.reasoning_tokens
COUNT_EXACT = "requests"  # forcing: the thinking filled whole requests, whose completion_tokens are exact
COUNT_CHARS = "chars"  # a request held thinking and answer: its completion_tokens split by character share


def reasoning_tokens_by_chars(completion_tokens: int | None, thinking: str, answer: str) -> int | None:
    """A response's tokens split in proportion to characters, when the server sent the reasoning text but
    no count of it. Approximate (tokens per character differ between prose and LaTeX), hence marked."""
    if completion_tokens is None:
        return None
    total = len(thinking) + len(answer)
    return round(completion_tokens * len(thinking) / total) if total else 0
