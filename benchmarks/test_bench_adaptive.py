"""pytest-benchmark: the stopping rules (harness/analysis/adaptive.py) on a 30-problem grid of 64-sample pools, four
rules (`nox -s bench`; not in `pytest`'s default run). Target: well under a second per grid on 2 cores
(benchmarks/README.md has the measured figure)."""

from __future__ import annotations

import numpy as np

from harness.analysis import adaptive
from harness.analysis.adaptive import Rule

RULES = [Rule("unanimity", window=2), Rule("unanimity", window=3), Rule("posterior", threshold=0.9),
         Rule("posterior", threshold=0.95)]


def _pools() -> list[tuple[list[str], list[bool], list[int]]]:
    rng = np.random.default_rng(0)
    pools = []
    for _ in range(30):
        p = rng.uniform(0.2, 0.8)
        answers = ["right" if rng.random() < p else f"w{rng.integers(0, 6)}" for _ in range(64)]
        pools.append((answers, [a == "right" for a in answers], rng.integers(100, 900, size=64).tolist()))
    return pools


def test_stopping_rules_over_a_thirty_problem_grid_of_64_sample_pools(benchmark):
    pools = _pools()
    adaptive.leader_is_majority(64, 1.0)  # the table is cached per pool size: built once per run

    def grid() -> list:
        return [adaptive.stop_early(*pool, RULES, seed=[0, i]) for i, pool in enumerate(pools)]

    results = benchmark(grid)
    assert len(results) == 30 and all(len(r) == len(RULES) for r in results)
    assert all(0 <= s.accuracy <= 1 and 1 <= s.samples <= 64 for r in results for s in r)
