"""pytest-benchmark: maj@k (harness/analysis/majority.py), the vote stage's hot loop, on the committed samples
(`nox -s bench`; not in `pytest`'s default run, which collects tests/ only). Every (problem, budget) pool
of outputs/samples.csv, every k."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from harness.analysis import majority

SAMPLES = Path(__file__).resolve().parents[1] / "outputs" / "samples.csv"


def _pools() -> list[tuple[list[str | None], list[bool]]]:
    pools: dict[tuple[str, str], tuple[list[str | None], list[bool]]] = defaultdict(lambda: ([], []))
    with SAMPLES.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            answers, correct = pools[row["problem_id"], row["budget"]]
            answers.append(row["answer"] or None)
            correct.append(row["correct"] in {"True", "true", "1"})
    return list(pools.values())


def test_maj_at_k_over_every_pool(benchmark):
    pools = _pools()

    def vote_all() -> float:
        return sum(majority.maj_at_k(a, c, k).value for a, c in pools for k in majority.vote_ks(len(a)))

    total = benchmark(vote_all)
    assert 0 < total <= sum(len(majority.vote_ks(len(a))) for a, _ in pools)
