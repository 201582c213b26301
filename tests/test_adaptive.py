"""Stopping rules on a pool (harness/analysis/adaptive.py): the exact path equals brute force over every permutation
of the samples, the sampled path lies within a few Monte-Carlo errors of it, and the rules' edge cases."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from harness.analysis import adaptive
from harness.analysis.adaptive import Rule


def _vote(drawn: list[str | None], truth: set[str]) -> float:
    counts = Counter(a for a in drawn if a is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    modes = [a for a, c in counts.items() if c == top]
    return sum(a in truth for a in modes) / len(modes)


def _fires(rule: Rule, drawn: list[str | None]) -> bool:
    """The rule written out the slow, obvious way."""
    if rule.kind == "unanimity":
        tail = drawn[-rule.window:]
        return len(tail) == rule.window and tail[0] is not None and all(a == tail[0] for a in tail)
    votes = sorted(Counter(a for a in drawn if a is not None).values(), reverse=True) + [0, 0]
    return 1.0 - adaptive.beta_cdf(0.5, votes[0] + rule.prior, votes[1] + rule.prior) >= rule.threshold


def brute_force(answers, correct, tokens, rule: Rule) -> tuple[float, float, float]:
    """Every permutation of the samples (n! of them, each equally likely), the rule applied in order."""
    truth = {a for a, ok in zip(answers, correct) if ok and a is not None}
    n = len(answers)
    cap = min(rule.max_samples or n, n)
    acc = samples = spent = 0.0
    perms = list(itertools.permutations(range(n)))
    for order in perms:
        drawn: list[str | None] = []
        for t, i in enumerate(order, 1):
            drawn.append(answers[i])
            if _fires(rule, drawn) or t == cap:
                break
        acc += _vote(drawn, truth)
        samples += len(drawn)
        spent += sum(tokens[i] for i in order[: len(drawn)])
    return acc / len(perms), samples / len(perms), spent / len(perms)


RULES = [Rule("unanimity", window=1), Rule("unanimity", window=2), Rule("unanimity", window=3),
         Rule("posterior", threshold=0.7), Rule("posterior", threshold=0.9, prior=0.5),
         Rule("posterior", threshold=0.95), Rule("unanimity", window=2, max_samples=3),
         Rule("posterior", threshold=0.8, max_samples=4)]


def _random_pool(rng: np.random.Generator, n: int):
    answers = [None if rng.random() < 0.15 else str(rng.integers(0, 3)) for _ in range(n)]
    correct = [a == "0" for a in answers]
    tokens = [float(rng.integers(10, 200)) for _ in range(n)]
    return answers, correct, tokens


def test_exact_path_equals_brute_force_over_every_permutation_on_small_pools():
    rng = np.random.default_rng(3)
    for trial in range(25):
        answers, correct, tokens = _random_pool(rng, int(rng.integers(1, 8)))
        got = adaptive.stop_early(answers, correct, tokens, RULES)
        for rule, result in zip(RULES, got):
            assert result.method == "exact" and result.mc_se == 0.0
            want = brute_force(answers, correct, tokens, rule)
            assert (result.accuracy, result.samples, result.tokens) == pytest.approx(want, rel=1e-12, abs=1e-12), \
                (trial, rule, answers)


def test_sampled_path_lies_within_four_monte_carlo_errors_of_brute_force():
    rng = np.random.default_rng(11)
    for _ in range(6):
        answers, correct, tokens = _random_pool(rng, 6)
        got = adaptive.stop_early(answers, correct, tokens, RULES, seed=5, exact_limit=0)
        for rule, result in zip(RULES, got):
            assert result.method == "sampled" and result.orderings == adaptive.SAMPLED_ORDERINGS
            want, _, _ = brute_force(answers, correct, tokens, rule)
            if result.mc_se == 0:  # every ordering scored the same: nothing random left
                assert result.accuracy == pytest.approx(want)
            else:
                assert abs(result.accuracy - want) <= 4 * result.mc_se, (rule, answers)


def test_same_seed_same_numbers_other_seed_other_draws():
    rng = np.random.default_rng(2)
    answers, correct, tokens = _random_pool(rng, 30)
    one = adaptive.stop_early(answers, correct, tokens, RULES, seed=[1, 2])
    assert one == adaptive.stop_early(answers, correct, tokens, RULES, seed=[1, 2])
    assert one != adaptive.stop_early(answers, correct, tokens, RULES, seed=[1, 3])


def test_window_one_stops_after_the_first_answered_sample():
    result, = adaptive.stop_early(["5", "6", "5", "7"], [True, False, True, False], [10, 20, 30, 40],
                                  [Rule("unanimity", window=1)])
    assert result.samples == 1.0
    assert result.accuracy == pytest.approx(0.5)
    assert result.tokens == pytest.approx(25.0)


def test_no_answer_never_agrees_so_an_unanswered_pool_runs_to_its_end():
    rules = [Rule("unanimity", window=1), Rule("posterior", threshold=0.6)]
    for result in adaptive.stop_early([None] * 5, [False] * 5, [8] * 5, rules):
        assert (result.accuracy, result.samples, result.tokens) == (0.0, 5.0, 40.0)


def test_a_threshold_never_reached_stops_at_the_pool_size_or_the_rule_maximum():
    answers = ["1", "2", "3", "4", "5", "6"]  # all different: no leader ever, no two agree
    correct = [True] + [False] * 5
    rules = [Rule("posterior", threshold=0.99), Rule("unanimity", window=2),
             Rule("unanimity", window=2, max_samples=4), Rule("posterior", threshold=0.99, max_samples=50)]
    got = adaptive.stop_early(answers, correct, [1] * 6, rules)
    assert [r.samples for r in got] == [6.0, 6.0, 4.0, 6.0]
    assert got[0].accuracy == pytest.approx(1 / 6)  # six tied classes, one right
    assert got[2].accuracy == pytest.approx(1 / 6)  # 4 of 6 drawn, each tied: P(right one drawn) / 4


def test_posterior_needs_as_many_agreeing_votes_as_the_beta_tail_says():
    """Uniform prior: k agreeing votes give P = 1 - 2^-(k+1); 0.9 needs 3 votes, 0.95 and 0.96 need 4."""
    ones = ["7"] * 8
    got = adaptive.stop_early(ones, [True] * 8, [1] * 8, [Rule("posterior", threshold=p) for p in (0.9, 0.95, 0.96)])
    assert [r.samples for r in got] == [3.0, 4.0, 4.0]
    assert 1 - adaptive.beta_cdf(0.5, 4.0, 1.0) == pytest.approx(1 - 2**-4)


def test_beta_cdf_matches_the_binomial_identity_and_symmetry():
    for a, b in [(1, 1), (3, 2), (7, 4), (20, 13), (50, 2)]:
        # P(Beta(a, b) <= 1/2) = P(Binomial(a + b - 1, 1/2) >= a) for integer a, b
        want = sum(math.comb(a + b - 1, j) for j in range(a, a + b)) / 2 ** (a + b - 1)
        assert adaptive.beta_cdf(0.5, a, b) == pytest.approx(want, rel=1e-10, abs=1e-14)
    for a, b, x in [(0.5, 0.5, 0.3), (2.5, 1.5, 0.7), (0.7, 3.0, 0.1)]:
        assert adaptive.beta_cdf(x, a, b) == pytest.approx(1 - adaptive.beta_cdf(1 - x, b, a), abs=1e-12)


def test_distinct_orderings_are_all_there_once_each():
    rows = adaptive.all_orderings([2, 1, 2])
    assert len(rows) == adaptive.distinct_orderings([2, 1, 2]) == 30
    assert len({tuple(r) for r in rows}) == 30
    assert all(sorted(r) == [0, 0, 1, 2, 2] for r in rows)


@pytest.mark.parametrize(("rule", "message"), [
    ({"kind": "unanimity", "window": 0}, "unanimity window = 0"),
    ({"kind": "posterior", "threshold": 0.5}, "posterior threshold = 0.5: must be above 0.5"),
    ({"kind": "posterior", "threshold": 0.9, "prior": 0}, "posterior prior = 0"),
    ({"kind": "unanimity", "window": 2, "max_samples": 0}, "max_samples = 0"),
])
def test_bad_rules_say_what_to_change(rule, message):
    with pytest.raises(ValueError, match=message):
        Rule(**rule)


def test_summary_has_a_bootstrap_interval_and_the_mean_monte_carlo_error():
    rng = np.random.default_rng(4)
    rule = Rule("unanimity", window=2)
    per_problem = [adaptive.stop_early(*_random_pool(rng, 20), [rule], seed=[0, i])[0] for i in range(12)]
    s = adaptive.summarise(rule, per_problem, seed=0)
    assert s.lo <= s.accuracy <= s.hi and s.tokens_lo <= s.tokens <= s.tokens_hi
    assert s.method == "sampled" and s.problems == 12
    assert s.mc_se == pytest.approx(math.sqrt(sum(p.mc_se**2 for p in per_problem)) / 12)
    one = adaptive.summarise(rule, per_problem[:1], seed=0)
    assert math.isnan(one.lo) and math.isnan(one.tokens_hi)
