"""A sample's transcript as the report shows it: the pieces `chain.walk` recorded (the model's words and
every insertion the harness made), each placed in the thinking or the answer exactly where the grader
split them.

Why from the chain's segments: a "Wait," or a `</think>` in a transcript may have been written by the model
or inserted by the harness, and only the walk knows which. Searching the text for the cue would mark the
model's own "Wait," too, and miss a cue that differs from the configured one. Pure: segments in, pieces out.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from ..analysis.thinking_text import thinking_bounds
from ..requests.chain import INSERTIONS, REASONING_FIELD

THINKING, ANSWER, BETWEEN = "thinking", "answer", "between"  # BETWEEN: the tags, and an insertion across both

Piece = tuple[str, str, str]  # (region, kind, text); kind as in chain.Outcome.segments


def chain_text(segments: Sequence[tuple[str, str]]) -> str:
    """The sample's text as `walk` built it: every segment but the server's separate reasoning fields."""
    return "".join(piece for kind, piece in segments if kind != REASONING_FIELD)


def pieces(segments: Sequence[tuple[str, str]]) -> list[Piece]:
    """The segments in order, each with its region: THINKING or ANSWER as `thinking.split_thinking` cuts the
    text, BETWEEN for the tags themselves. A segment of the model's text that crosses a boundary is cut
    there; an insertion is kept whole (it is one mark), in the region that holds all of it, else BETWEEN
    (the forced "\\n</think>" starts in the thinking and ends past it). A server's separate reasoning field
    is thinking. Joined, the pieces that are not reasoning fields are the sample's text, byte for byte."""
    text = chain_text(segments)
    thinking, answer = thinking_bounds(text)
    out: list[Piece] = []
    at = 0
    for kind, piece in segments:
        if kind == REASONING_FIELD:
            out.append((THINKING, kind, piece))
            continue
        start, end = at, at + len(piece)
        at = end
        if kind in INSERTIONS:
            out.append((_region(start, end, thinking, answer), kind, piece))
            continue
        bounds = (thinking.start, thinking.stop, answer.start, answer.stop)
        cuts = sorted({start, end, *(b for b in bounds if start < b < end)})
        out += [(_region(a, b, thinking, answer), kind, text[a:b]) for a, b in pairwise(cuts)]
    return out


def _region(start: int, end: int, thinking: slice, answer: slice) -> str:
    if thinking.start <= start and end <= thinking.stop and thinking.stop > thinking.start:
        return THINKING
    if answer.start <= start and end <= answer.stop and answer.stop > answer.start:
        return ANSWER
    return BETWEEN
