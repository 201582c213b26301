"""Confidence-weighted votes (harness/analysis/confidence.py) against brute force, and the thinking measurements
(harness/analysis/thinking_measures.py) on hand-made sample tables."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from harness.analysis import confidence, majority, thinking_measures


def _brute_weighted(answers, correct, weights, k):
    truth = {a for a, ok in zip(answers, correct) if ok and a is not None}
    scores = []
    for chosen in itertools.combinations(range(len(answers)), k):
        totals = defaultdict(float)
        for i in chosen:
            if answers[i] is not None:
                totals[answers[i]] += weights[i]
        if not totals:
            scores.append(0.0)
            continue
        top = max(totals.values())
        modes = [a for a, w in totals.items() if w >= top * (1 - 1e-12)]
        scores.append(sum(a in truth for a in modes) / len(modes))
    return float(np.mean(scores))


def _pool(rng, n):
    answers = [None if rng.random() < 0.15 else str(rng.integers(0, 3)) for _ in range(n)]
    return answers, [a == "0" for a in answers], rng.uniform(0.05, 1.0, size=n).tolist()


def test_weighted_vote_equals_brute_force_over_every_subset():
    rng = np.random.default_rng(8)
    for _ in range(30):
        answers, correct, weights = _pool(rng, int(rng.integers(1, 9)))
        for k in range(1, len(answers) + 1):
            value, method = confidence.weighted_maj_at_k(answers, correct, weights, k)
            assert method == "exact"
            assert value == pytest.approx(_brute_weighted(answers, correct, weights, k), abs=1e-12)


def test_equal_weights_give_exactly_maj_at_k_and_sampling_stays_close():
    rng = np.random.default_rng(9)
    for _ in range(10):
        answers, correct, _ = _pool(rng, 12)
        for k in (1, 2, 5, 12):
            want = majority.maj_at_k(answers, correct, k).value
            assert confidence.weighted_maj_at_k(answers, correct, [0.3] * 12, k)[0] == pytest.approx(want, abs=1e-12)
            value, method = confidence.weighted_maj_at_k(answers, correct, [0.3] * 12, k, seed=1, exact_limit=0)
            assert method == "sampled" and abs(value - want) < 0.05  # 2,000 subsets: se <= 0.011


def test_a_confident_minority_outvotes_an_unsure_majority():
    answers, correct = ["7", "7", "9"], [True, True, False]
    assert confidence.weighted_maj_at_k(answers, correct, [0.1, 0.1, 0.9], 3)[0] == 0.0
    assert confidence.weighted_maj_at_k(answers, correct, [0.5, 0.5, 0.9], 3)[0] == 1.0


@pytest.mark.parametrize(("weights", "message"), [([1.0, 0.0], "positive"), ([1.0, math.nan], "positive")])
def test_weights_must_be_confidences(weights, message):
    with pytest.raises(ValueError, match=message):
        confidence.weighted_maj_at_k(["1", "2"], [True, False], weights, 1)


def test_answer_logprob_reads_only_the_tokens_after_the_last_think_close():
    tokens = ["let", " me", " think", "</th", "ink>", "The", " answer", " 4"]
    logprobs = [-5.0, -5.0, -5.0, -5.0, -5.0, -0.1, -0.2, -0.3]
    assert confidence.answer_logprob(tokens, logprobs) == pytest.approx(-0.2)
    assert confidence.answer_logprob(["42", "}"], [-0.5, -1.5]) == pytest.approx(-1.0)
    assert confidence.answer_logprob(["</think>"], [-1.0]) is None  # no answer tokens at all
    with pytest.raises(ValueError, match="one per token"):
        confidence.answer_logprob(["a"], [])


def _table(rows):
    return pd.DataFrame(rows, columns=["problem_id", "budget", "sample", "status", "completion_tokens",
                                       "reasoning_tokens", "correct"])


def test_capped_share_quantiles_and_tokens_to_first_correct():
    rows = [
        ("a", 16, 0, "ok", 18, None, False), ("a", 16, 1, "ok", 10, None, True), ("a", 16, 2, "ok", 19, None, True),
        ("b", 16, 1, "ok", 17, None, True), ("b", 16, 0, "truncated", 16, None, False),
        ("c", 16, 0, "ok", 12, None, False),
    ]
    got = thinking_measures.measure(_table(rows), "forcing")["16"]
    assert got["capped"] == 4 and got["capped_share"] == round(4 / 6, 4)  # 18, 19, 17 >= 16; 16 truncated
    assert got["thinking_tokens"]["p50"] == pytest.approx(16.5) and got["thinking_tokens"]["max"] == 19
    assert got["thinking_tokens"]["from"] == "completion_tokens"
    # a: 18 + 10 (second sample right); b: sample 0 (16) then sample 1 (17); c: none right
    assert got["first_correct"] == {"mean_tokens": pytest.approx((28 + 33) / 2), "mean_samples": 2.0,
                                    "problems_with": 2, "problems_without": 1}


def test_under_prompt_the_budget_is_a_request_only_truncated_samples_hit_a_cap():
    rows = [("a", 16, 0, "ok", 90, 80, True), ("a", 16, 1, "truncated", 100, 100, False)]
    got = thinking_measures.measure(_table(rows), "prompt")["16"]
    assert got["capped"] == 1
    assert got["thinking_tokens"]["from"] == "reasoning_tokens" and got["thinking_tokens"]["mean"] == 90
    assert thinking_measures.measure(_table(rows), "forcing")["16"]["capped"] == 2
