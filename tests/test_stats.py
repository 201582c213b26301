"""Majority vote and the regions: checked against brute force and hand-computed cases."""

import itertools
import random
from collections import Counter

import pytest

from harness import stats


def test_vote_score_tie_rule_is_one_over_number_of_modes():
    truth = frozenset({"5"})
    assert stats.vote_score(["5", "5", "3"], truth) == 1.0
    assert stats.vote_score(["5", "3"], truth) == 0.5
    assert stats.vote_score(["5", "3", "2"], truth) == pytest.approx(1 / 3)
    assert stats.vote_score(["3", "3", "5"], truth) == 0.0
    assert stats.vote_score([None, None], truth) == 0.0
    assert stats.vote_score([None, "5"], truth) == 1.0


def _brute(answers, correct, k):
    truth = frozenset(a for a, c in zip(answers, correct) if c and a is not None)
    subsets = list(itertools.combinations(range(len(answers)), k))
    total = 0.0
    for idx in subsets:
        counts = Counter(answers[i] for i in idx if answers[i] is not None)
        if not counts:
            continue
        top = max(counts.values())
        modes = [a for a, c in counts.items() if c == top]
        total += sum(a in truth for a in modes) / len(modes)
    return total / len(subsets)


@pytest.mark.parametrize("seed", range(20))
def test_maj_at_k_equals_brute_force_enumeration(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 10)
    answers = [rng.choice(["1", "2", "3", None]) for _ in range(n)]
    correct = [a == "1" for a in answers]
    for k in range(1, n + 1):
        result = stats.maj_at_k(answers, correct, k)
        assert result.method == "exact"
        assert result.value == pytest.approx(_brute(answers, correct, k), abs=1e-12)


def test_maj_at_1_is_the_fraction_correct():
    answers = ["1", "2", "1", "3"]
    assert stats.maj_at_k(answers, [a == "1" for a in answers], 1).value == 0.5


def test_maj_at_k_falls_back_to_seeded_sampling_for_huge_pools():
    answers = ["1"] * 30 + ["2"] * 34
    correct = [a == "1" for a in answers]
    first = stats.maj_at_k(answers, correct, 16, seed=3)
    assert first.method == "sampled"
    assert first == stats.maj_at_k(answers, correct, 16, seed=3)
    assert 0.2 < first.value < 0.5


def test_maj_at_k_rejects_k_larger_than_pool():
    with pytest.raises(ValueError, match="pool size"):
        stats.maj_at_k(["1"], [True], 2)


def test_vote_ks_doubles_up_to_the_pool():
    assert stats.vote_ks(1) == [1]
    assert stats.vote_ks(8) == [1, 2, 4, 8]
    assert stats.vote_ks(6) == [1, 2, 4, 6]


def test_controllable_range_finds_where_tokens_grow():
    budgets = [4, 16, 64, 256, 1024, 4096]
    used = [300, 310, 500, 2000, 8000, 8100]  # flat, then growing, then flat again
    assert stats.controllable_range(budgets, used) == (16, 1024)


def test_regions_saturate_at_first_point_near_the_best():
    reg = stats.regions([4, 5, 6], [6, 7, 8, 9], [0.4, 0.6, 0.7, 0.705], tolerance=0.01)
    assert (reg.start, reg.vote_start, reg.saturation, reg.end) == (4, 6, 8, 9)
