"""The report's grid numbers: the vote stage's rules, applied cell by cell (pure functions, no page)."""

from __future__ import annotations

import itertools

import pytest

from harness.analysis import grade
from harness.report.grid import (
    CORRECT,
    FAILED,
    NO_ANSWER,
    RIGHT_TO_WRONG,
    WRONG,
    WRONG_TO_RIGHT,
    Flip,
    Graded,
    cell,
    classed,
    difficulty,
    disagrees,
    flips,
    hardest_first,
    maj_at_k,
    majority_verdict,
    tick,
    vote_groups,
    winners,
)


def pool(*answers, gold="1/2", failed=(), integer=False):
    """Samples 0, 1, ... giving `answers` (None: no answer), graded against `gold` as the sample stage does."""
    rows = []
    for i, answer in enumerate(answers):
        if i in failed:
            rows.append(Graded(i, "failed-after-retries", None, None))
        else:
            rows.append(Graded(i, "ok" if answer is not None else "no-answer-found",
                               grade.is_equivalent(answer, gold, integer), answer))
    return classed(rows, lambda a: grade.vote_key(a, integer))


def test_equivalent_answers_vote_as_one_group_with_every_spelling_kept():
    groups = vote_groups(pool("\\frac{1}{2}", "0.5", "1/2", "2", "2", None))
    assert [(g.count, g.correct) for g in groups] == [(3, True), (2, False)]
    assert set(groups[0].spellings) == {"\\frac{1}{2}", "0.5", "1/2"}
    assert groups[0].samples == (0, 1, 2) and groups[1].samples == (3, 4)


def test_integer_tasks_keep_spellings_apart_as_the_vote_stage_does():
    groups = vote_groups(pool("214", "144+70", "214", gold="214", integer=True))
    assert [(g.vote_class, g.count, g.correct) for g in groups] == [("214", 2, True), ("144+70", 1, False)]


def test_the_majority_verdict_is_the_vote_stages_score_of_the_whole_pool():
    assert majority_verdict(pool("1/2", "0.5", "3")) == 1.0
    assert majority_verdict(pool("3", "3", "0.5")) == 0.0
    assert majority_verdict(pool("3", "0.5")) == 0.5  # a tie the right answer is part of: half a vote
    assert majority_verdict(pool("3", "4", "0.5")) == pytest.approx(1 / 3)
    assert majority_verdict(pool(None, None)) == 0.0  # nobody answered: a wrong vote
    assert majority_verdict(pool("1/2", "1/2", failed=(0, 1))) is None  # nothing to vote on


def test_winners_and_ties():
    cell_ = cell(pool("3", "0.5", "3", "0.5", None))
    assert cell_.tie and set(cell_.winners) == {"3", "1/2"}
    cell_ = cell(pool("3", "3", "0.5"))
    assert not cell_.tie and cell_.winners == ("3",)
    assert winners([]) == []


def test_a_sample_disagrees_when_its_answer_lost_the_vote():
    samples = pool("3", "3", "0.5", None)
    top = winners(vote_groups(samples))
    assert [disagrees(s, top) for s in samples] == [False, False, True, False]  # no answer: no vote lost


def test_ticks_and_the_share_correct_leave_failed_samples_out():
    samples = pool("1/2", "3", None, "1/2", failed=(3,))
    assert [tick(s) for s in samples] == [CORRECT, WRONG, NO_ANSWER, FAILED]
    summary = cell(samples)
    assert (summary.ticks, summary.graded, summary.correct, summary.fraction) == ("cwnf", 3, 1, pytest.approx(1 / 3))
    assert cell(pool("1/2", failed=(0,))).fraction is None


def test_maj_at_k_counts_every_subset():
    samples = pool("1/2", "0.5", "3", "4")
    brute = []
    for subset in itertools.combinations(samples, 2):
        brute.append(majority_verdict(list(subset)))
    assert maj_at_k(samples, 2, seed=0) == pytest.approx(sum(brute) / len(brute))
    assert maj_at_k(samples, 4, seed=0) == majority_verdict(samples)
    assert maj_at_k(samples[:1], 2, seed=0) is None  # fewer voters than k


def test_flips_are_changes_of_the_decided_verdict_from_one_budget_to_the_next():
    verdicts = [(512, 0.0), (64, 1.0), (128, 1.0), (256, 0.5), (1024, 1.0), (32, 0.0)]  # given out of order
    assert flips("p", verdicts) == [Flip("p", 32, 64, WRONG_TO_RIGHT), Flip("p", 128, 512, RIGHT_TO_WRONG),
                                    Flip("p", 512, 1024, WRONG_TO_RIGHT)]  # the tie at 256 is skipped over
    assert flips("p", [(16, 1.0), (32, None), (64, 1.0)]) == []
    assert flips("p", [("high", 0.0), ("low", 1.0)]) == [Flip("p", "low", "high", RIGHT_TO_WRONG)]


def test_difficulty_weighs_each_budget_once_and_sorts_the_hardest_first():
    assert difficulty([1.0, 0.0, None, 0.5]) == 0.5
    assert difficulty([None]) is None
    assert hardest_first([0.5, None, 0.1, 0.5, 0.0]) == [4, 2, 0, 3, 1]
