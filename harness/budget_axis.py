"""What a budget is on the x-axis of the experiment: a token count, or a reasoning-effort level.

Why a module of its own: most methods spend "about N tokens" (an integer), but OpenAI's reasoning models
take a level (`reasoning_effort`: low < medium < high) instead. Every stage orders, groups and prints
budgets, and must do it the same way for both kinds, so that one sample table, one curve and one figure
serve every method. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

Budget = int | str

# OpenAI's `reasoning_effort` values, least to most thinking (gpt-5.x added `none`, `minimal`, `xhigh`).
EFFORT_LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh")


def is_effort(budget: Any) -> bool:
    return isinstance(budget, str) and budget in EFFORT_LEVELS


def as_budget(value: Any) -> Budget:
    """A budget as params spell it, from whatever a CSV reader or pandas made of it.

    pandas turns 16 into numpy.int64, or into 16.0 when a row mixes it with floats; a level stays a string.
    """
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if hasattr(value, "item"):  # numpy scalars
        return as_budget(value.item())
    return value  # type: ignore[no-any-return]


def budget_rank(budget: Any) -> float:
    """A number that orders budgets of one kind: the token count, or the effort level's position."""
    budget = as_budget(budget)
    if isinstance(budget, str):
        if budget not in EFFORT_LEVELS:
            raise ValueError(f"unknown budget {budget!r}: not a token count nor one of {', '.join(EFFORT_LEVELS)}")
        return float(EFFORT_LEVELS.index(budget))
    return float(budget)


def ordered(budgets: Iterable[Any]) -> list[Budget]:
    """Distinct budgets, least to most."""
    return sorted({as_budget(b) for b in budgets}, key=budget_rank)


def largest(budgets: Iterable[Any]) -> Budget:
    return max((as_budget(b) for b in budgets), key=budget_rank)
