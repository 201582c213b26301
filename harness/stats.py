"""Pure statistics for scaling curves: majority vote, the controllable range, the regions of the figure.

No I/O: everything takes lists/arrays and returns numbers, so the property tests can hammer it.
Unbiased estimators and bootstrap intervals belong here too (see the scaling-curves issue).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_SUBSET_LIMIT = 5000
SAMPLED_SUBSETS = 2000


def vote_score(answers: Sequence[str | None], correct_answers: frozenset[str]) -> float:
    """Score of one majority vote, the seed's tie rule: 1/(number of tied modes) if the truth is a mode.

    That is the expected score of breaking the tie at random. Samples without an answer do not vote;
    if nobody answered, the vote is wrong.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    modes = [a for a, c in counts.items() if c == top]
    hits = sum(1 for a in modes if a in correct_answers)
    return hits / len(modes)


@dataclass(frozen=True)
class MajAtK:
    value: float
    method: str  # "exact" (all subsets) or "sampled" (seeded random subsets)
    subsets: int


def maj_at_k(
    answers: Sequence[str | None], correct: Sequence[bool], k: int, seed: int = 0
) -> MajAtK:
    """Expected majority-vote accuracy of k samples drawn without replacement from the pool.

    Exact (mean over all C(n, k) subsets) when that is at most EXACT_SUBSET_LIMIT subsets, otherwise the
    mean over SAMPLED_SUBSETS seeded random subsets; the method is reported with the value.
    """
    n = len(answers)
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} must be between 1 and the pool size {n}")
    truth = frozenset(a for a, ok in zip(answers, correct) if ok and a is not None)
    total = math.comb(n, k)
    if total <= EXACT_SUBSET_LIMIT:
        scores = [vote_score([answers[i] for i in idx], truth) for idx in itertools.combinations(range(n), k)]
        return MajAtK(sum(scores) / total, "exact", total)
    rng = random.Random(seed)
    scores = [vote_score([answers[i] for i in rng.sample(range(n), k)], truth) for _ in range(SAMPLED_SUBSETS)]
    return MajAtK(sum(scores) / SAMPLED_SUBSETS, "sampled", SAMPLED_SUBSETS)


def vote_ks(pool: int) -> list[int]:
    """k = 1, 2, 4, ... up to the pool size (and the pool size itself), as the seed's doubling axis."""
    ks = [2**i for i in range(pool.bit_length()) if 2**i <= pool]
    if ks[-1] != pool:
        ks.append(pool)
    return ks


def controllable_range(
    requested: Sequence[int], mean_tokens: Sequence[float], min_growth: float = 1.15
) -> tuple[int, int]:
    """The longest run of consecutive budgets over which tokens actually used keep growing.

    A step counts as obeyed when mean tokens grow by at least `min_growth` (15%) from one budget to the
    next. The seed found o1-mini obeying between 2^4 and 2^11 by eye; this finds it from the data.
    """
    if len(requested) != len(mean_tokens) or not requested:
        raise ValueError("requested and mean_tokens must be non-empty and of equal length")
    best = (0, 0)
    start = 0
    for i in range(1, len(requested)):
        if mean_tokens[i] >= mean_tokens[i - 1] * min_growth and mean_tokens[i - 1] > 0:
            if i - start > best[1] - best[0]:
                best = (start, i)
        else:
            start = i
    return requested[best[0]], requested[best[1]]


@dataclass(frozen=True)
class Regions:
    """Shading of the main figure, in log2(tokens): [start, vote_start) budget control,
    [vote_start, saturation) majority vote, [saturation, end] no gains."""

    start: float
    vote_start: float
    saturation: float
    end: float


def regions(
    budget_x: Sequence[float], vote_x: Sequence[float], vote_y: Sequence[float], tolerance: float
) -> Regions:
    """Where the data puts the regions: voting starts at the single-sample point of the vote budget, and
    stops paying at the first vote point within `tolerance` of the best vote accuracy."""
    best = max(vote_y)
    sat_index = next(i for i, y in enumerate(vote_y) if y >= best - tolerance)
    sat_index = max(sat_index, 0)
    start = min(min(budget_x), min(vote_x))
    end = max(max(budget_x), max(vote_x))
    return Regions(start=start, vote_start=vote_x[0], saturation=vote_x[sat_index], end=end)
