"""maj@k, pass@k, a point's accuracy interval and the bootstrap: checked against brute-force enumeration,
hand-computed cases and coverage simulations. Brute force lives here only; harness/analysis/majority.py counts.
(The law: tests/test_law.py.)"""

import itertools
import math
import random
from collections import Counter

import numpy as np
import pytest

from harness.analysis import majority, stats


def test_vote_score_tie_rule_is_one_over_number_of_modes():
    truth = frozenset({"5"})
    assert majority.vote_score(["5", "5", "3"], truth) == 1.0
    assert majority.vote_score(["5", "3"], truth) == 0.5
    assert majority.vote_score(["5", "3", "2"], truth) == pytest.approx(1 / 3)
    assert majority.vote_score(["3", "3", "5"], truth) == 0.0
    assert majority.vote_score([None, None], truth) == 0.0
    assert majority.vote_score([None, "5"], truth) == 1.0


def _brute_maj(answers, correct, k):
    """The definition: mean vote score over every k-subset, ties 1/(number of modes)."""
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


def _brute_pass(correct, k):
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in idx) for idx in subsets) / len(subsets)


def _random_pool(seed):
    """n <= 12, a few answers (so ties are common), some unanswered, sometimes two correct spellings."""
    rng = random.Random(seed)
    n = rng.randint(1, 12)
    alphabet = ["1", "2", "3", "4", "5", None][: rng.randint(2, 6)]
    answers = [rng.choice(alphabet) for _ in range(n)]
    truth = {"1", "2"} if seed % 4 == 0 else {"1"}
    return answers, [a in truth for a in answers]


@pytest.mark.parametrize("seed", range(60))
def test_maj_at_k_and_pass_at_k_equal_brute_force_enumeration(seed):
    answers, correct = _random_pool(seed)
    n = len(answers)
    for k in range(1, n + 1):
        result = majority.maj_at_k(answers, correct, k)
        assert result.method == "exact"
        assert result.subsets == math.comb(n, k)
        assert abs(result.value - _brute_maj(answers, correct, k)) <= 1e-12, (answers, correct, k)
        assert abs(majority.pass_at_k(n, sum(correct), k) - _brute_pass(correct, k)) <= 1e-12


def test_brute_force_cases_include_ties():
    """The property test above is only worth something if its pools produce ties and split votes."""
    tied = 0
    for seed in range(60):
        answers, _ = _random_pool(seed)
        for k in range(2, len(answers) + 1, 2):
            for idx in itertools.combinations(range(len(answers)), k):
                counts = Counter(answers[i] for i in idx if answers[i] is not None)
                if counts and list(counts.values()).count(max(counts.values())) > 1:
                    tied += 1
    assert tied > 1000


def test_maj_at_1_is_the_fraction_correct_and_maj_at_n_is_the_whole_pool_vote():
    answers = ["1", "2", "1", "3", None]
    correct = [a == "1" for a in answers]
    assert majority.maj_at_k(answers, correct, 1).value == pytest.approx(0.4, abs=1e-15)
    assert majority.maj_at_k(answers, correct, 5).value == 1.0
    assert majority.maj_at_k(["1", "2"], [True, False], 2).value == 0.5


def test_maj_at_k_is_exact_against_brute_force_past_the_float_shortcuts():
    """A 16-sample pool with one dominant wrong answer: large enough for several tying groups."""
    answers = ["7"] * 5 + ["1"] * 4 + ["2"] * 3 + ["3"] * 2 + [None] * 2
    correct = [a == "1" for a in answers]
    for k in (3, 6, 9, 12):
        assert majority.maj_at_k(answers, correct, k).value == pytest.approx(_brute_maj(answers, correct, k),
                                                                         abs=1e-12)


def test_large_pools_fall_back_to_seeded_sampling_close_to_the_exact_value():
    rng = np.random.default_rng(0)
    answers = [str(a) for a in rng.choice(40, p=[0.3, 0.25] + [0.45 / 38] * 38, size=1000)]
    correct = [a == "0" for a in answers]
    sampled = majority.maj_at_k(answers, correct, 200, seed=3)
    assert sampled.method == "sampled" and sampled.subsets == majority.SAMPLED_SUBSETS
    assert sampled == majority.maj_at_k(answers, correct, 200, seed=3), "seeded: same value every run"
    # the count (forced, however long it takes) and the sampled estimator agree within sampling noise
    p = majority.pool(answers, correct)
    noise = 4 * 0.5 / math.sqrt(majority.SAMPLED_SUBSETS)
    for k in (16, 200):
        assert abs(majority._sampled(p, k, 0, majority.SAMPLED_SUBSETS) - majority.exact_maj_at_k(p, k)) < noise


def test_maj_at_k_rejects_k_larger_than_pool():
    with pytest.raises(ValueError, match="pool size"):
        majority.maj_at_k(["1"], [True], 2)


def test_pass_at_k_is_stable_for_huge_pools_and_rejects_nonsense():
    assert majority.pass_at_k(10_000, 1, 1) == pytest.approx(1e-4, rel=1e-12)
    assert majority.pass_at_k(10_000, 0, 5000) == 0.0
    assert majority.pass_at_k(10, 9, 2) == 1.0
    with pytest.raises(ValueError, match="pass@k needs"):
        majority.pass_at_k(4, 5, 1)


def test_vote_ks_doubles_up_to_the_pool():
    assert majority.vote_ks(1) == [1]
    assert majority.vote_ks(8) == [1, 2, 4, 8]
    assert majority.vote_ks(6) == [1, 2, 4, 6]


# --- the bootstrap ------------------------------------------------------------------------------------

def _true_maj_iid(q, k, wrong=3):
    """maj@k of k independent draws: correct with probability q, else one of `wrong` answers."""
    probs = [q] + [(1 - q) / wrong] * wrong
    total = 0.0
    for comp in itertools.product(range(k + 1), repeat=wrong + 1):
        if sum(comp) != k:
            continue
        pr = math.factorial(k) * math.prod(p**c / math.factorial(c) for c, p in zip(comp, probs))
        top = max(comp)
        modes = [i for i, c in enumerate(comp) if c == top]
        total += pr * (0 in modes) / len(modes)
    return total


@pytest.mark.parametrize("problems", [12, 30])
def test_accuracy_intervals_cover_the_true_value_in_at_least_93_percent_of_1000_replications(problems):
    """A population of problems of varying difficulty; each replication draws `problems` of them, a pool
    of 8 samples each, scores maj@1 and maj@4 and takes the points' score interval. The truth is the
    population's expected maj@k. (benchmarks/coverage_points.py sweeps pools, sizes and accuracies.)"""
    population = np.random.default_rng(12345).beta(1.5, 1.5, size=2000)
    ks = (1, 4)
    truth = np.array([np.mean([_true_maj_iid(q, k) for q in population]) for k in ks])
    covered = np.zeros(len(ks))
    replications = 1000
    for r in range(replications):
        rng = np.random.default_rng([7, r])
        values = np.empty((problems, len(ks)))
        for i, q in enumerate(rng.choice(population, size=problems)):
            drawn = np.where(rng.random(8) < q, 0, rng.integers(1, 4, size=8))
            p = majority.pool([str(a) for a in drawn], [a == 0 for a in drawn])
            values[i] = [majority.maj_at_k_pool(p, k).value for k in ks]
        lo, hi = stats.accuracy_intervals(values)
        covered += (lo <= truth) & (truth <= hi)
    coverage = covered / replications
    print(f"coverage with {problems} problems, maj@1 and maj@4: {coverage}")
    # pools of 8 average away most of a problem's noise: the binomial-safe interval over-covers them (up to
    # 1.0; docs/statistics.md measures a variance-adaptive one that dipped to 0.84 instead)
    assert np.all(coverage >= 0.93), coverage


def test_the_score_interval_covers_at_least_95_percent_for_every_binomial_accuracy():
    """One sample per problem is the worst case: the sum of 0/1 scores is Binomial(P, p) whatever the
    problems' difficulties, so coverage is an exact finite sum. The bootstrap it replaced covered 0.11
    near p = 0.01 and 0.83 on average at 12 problems."""
    from scipy.stats import binom

    for n in (12, 30):
        x = np.arange(n + 1, dtype=float)
        lo, hi = stats.score_interval(x, n)
        truths = np.linspace(0.005, 0.995, 199)
        inside = (lo[None, :] <= truths[:, None]) & (truths[:, None] <= hi[None, :])
        coverage = (binom.pmf(x[None, :], n, truths[:, None]) * inside).sum(axis=1)
        assert coverage.min() >= 0.95, (n, truths[coverage.argmin()], coverage.min())


def test_score_intervals_of_fractional_scores_nest_and_one_problem_has_none():
    values = np.array([[0.0, 0.5, 1.0], [0.0, 0.25, 1.0], [0.0, 0.75, 1.0]])
    lo, hi = stats.accuracy_intervals(values)
    assert lo[0] == 0.0 and 0 < hi[0] < 1  # all wrong: from 0, never a zero-width bar
    assert hi[2] == 1.0 and 0 < lo[2] < 1
    assert lo[1] < 0.5 < hi[1]
    wide_lo, wide_hi = stats.score_interval(1.5, 3)
    narrow_lo, narrow_hi = stats.score_interval(15.0, 30)
    assert wide_lo < narrow_lo < 0.5 < narrow_hi < wide_hi  # more problems, a narrower interval
    one_lo, one_hi = stats.score_interval(np.array([1.0]), np.array([1]))
    assert math.isnan(one_lo[0]) and math.isnan(one_hi[0])
    missing = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]])
    lo, hi = stats.accuracy_intervals(missing)
    assert (lo[1], hi[1]) == tuple(v[0] for v in stats.score_interval(np.array([2.0]), np.array([2])))


def test_bootstrap_means_skip_problems_without_a_value():
    values = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 0.0]])
    indices = np.array([[0, 0, 0], [1, 2, 0], [1, 1, 1]])
    means = stats.bootstrap_means(values, indices)
    assert means[0, 0] == 1.0 and np.isnan(means[0, 1])
    assert means[1].tolist() == pytest.approx([2 / 3, 0.5])
    assert means[2].tolist() == [0.0, 1.0]


def test_intervals_contain_the_estimate_and_stay_in_zero_one():
    rng = np.random.default_rng(0)
    values = (rng.random((12, 3)) < [0.02, 0.5, 0.98]).astype(float)
    estimate = values.mean(axis=0)
    boot = stats.bootstrap_means(values, stats.bootstrap_indices(12, 0))
    lo, hi = stats.intervals(estimate, boot, np.full(3, 12))
    assert np.all((0 <= lo) & (lo <= estimate) & (estimate <= hi) & (hi <= 1))
    assert hi[1] - lo[1] > 0.3  # twelve coin flips leave a wide interval


def test_one_problem_has_no_bootstrap_interval_not_a_zero_width_one():
    lo, hi = stats.intervals(np.array([0.5, 0.5]), np.full((100, 2), 0.5), np.array([1, 12]))
    assert math.isnan(lo[0]) and math.isnan(hi[0]) and lo[1] == hi[1] == 0.5


def test_t_over_z_tends_to_one():
    assert stats.t_over_z(np.array([12]))[0] == pytest.approx(2.201 / 1.960, abs=2e-3)
    assert stats.t_over_z(np.array([1000]))[0] == pytest.approx(1.0, abs=2e-3)


# --- the regions ---------------------------------------------------------------------------------------

def test_correct_samples_are_counted_per_sample_not_per_answer():
    assert majority.pool(["5", "5"], [True, False]).correct_samples == 1
    assert majority.pool(["5", "5", None], [True, True, False]).correct_samples == 2


def test_controllable_range_finds_where_tokens_grow():
    budgets = [4, 16, 64, 256, 1024, 4096]
    used = [300, 310, 500, 2000, 8000, 8100]  # flat, then growing, then flat again
    assert stats.controllable_range(budgets, used) == (16, 1024)


def test_takeover_budget_is_the_top_of_the_controllable_range_not_past_the_vote_budget():
    assert stats.takeover_budget([16, 64, 256, 1024], controllable_to=256, vote_budget=1024) == 256
    assert stats.takeover_budget([16, 64, 256, 1024], controllable_to=4096, vote_budget=1024) == 1024
    assert stats.takeover_budget([16, 64], controllable_to=8, vote_budget=64) == 16


def test_effort_levels_order_by_effort_not_alphabet():
    levels = ["minimal", "low", "medium", "high"]
    assert stats.controllable_range(levels, [300, 2000, 8000, 8100]) == ("minimal", "medium")
    assert stats.takeover_budget(levels, controllable_to="medium", vote_budget="high") == "medium"
    assert stats.takeover_budget(levels, controllable_to="high", vote_budget="low") == "low"


def test_regions_end_the_vote_region_at_the_laws_saturation_point():
    reg = stats.regions([4, 5, 6, 7, 8, 9], saturation_x=8, saturated=True, takeover_x=6, takeover=256)
    assert (reg.start, reg.vote_start, reg.saturation, reg.end) == (4, 6, 8, 9)
    assert reg.saturated and reg.takeover_budget == 256
    rising = stats.regions([4, 5, 6], saturation_x=6, saturated=False, takeover_x=5, takeover=64)
    assert not rising.saturated and rising.saturation == 6
