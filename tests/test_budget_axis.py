"""Budgets are token counts or reasoning-effort levels; every stage orders and prints them alike."""

from __future__ import annotations

import numpy as np
import pytest

from harness.budget_axis import as_budget, budget_rank, largest, ordered


def test_values_as_csv_readers_and_pandas_make_them_come_back_as_params_spell_them():
    assert as_budget(np.int64(16)) == 16 and type(as_budget(np.int64(16))) is int
    assert as_budget(16.0) == 16 and type(as_budget(16.0)) is int
    assert as_budget("256") == 256
    assert as_budget(" high ") == "high"


def test_levels_order_least_to_most_effort_and_numbers_by_size():
    assert ordered(["high", "low", "medium", "low"]) == ["low", "medium", "high"]
    assert ordered([256, 16, np.int64(64)]) == [16, 64, 256]
    assert largest(["medium", "xhigh", "minimal"]) == "xhigh"
    assert largest([16.0, 512, 64]) == 512


def test_an_unknown_level_is_named_in_the_error():
    with pytest.raises(ValueError, match="'extreme'"):
        budget_rank("extreme")
