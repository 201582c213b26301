"""maj@k and pass@k from one sample pool: counted exactly, or on seeded random subsets past a cost limit.

Pure: answers and grades in, numbers out, so the property tests can hammer it (tests/test_stats.py
checks every count against brute force).

Why pools: the seed drew fresh samples for every point and reported one noisy draw each. Here every
problem has one pool of n samples per budget and each point is the *expected* score of a k-subset of
that pool, averaged over all C(n, k) subsets -- the same draws reused for every k, at a fraction of the
cost, with only the problem-to-problem spread left as uncertainty (the bootstrap over problems, in
`stats.py`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The exact count costs about exact_cost(pool, k) nanoseconds; past this limit (1 ms) the pool is
# scored on SAMPLED_SUBSETS seeded random k-subsets instead (the method is recorded with the value).
EXACT_COST_LIMIT = 1e6
# Small k is always counted: j <= k bounds the work, while sampling small subsets of a pool with many
# distinct answers is the slow case for the sampler (no early stop: every group can still be a mode).
EXACT_ALWAYS_K = 32
SAMPLED_SUBSETS = 2000
# C(n, k) must stay a finite float for the exact count (n up to ~1000 is fine).
FLOAT_COMB_LIMIT = 1e290


def vote_score(answers: Sequence[str | None], correct_answers: frozenset[str]) -> float:
    """Score of one majority vote, the seed's tie rule: 1/(number of tied modes) if the truth is a mode.

    That is the expected score of breaking the tie at random. Samples without an answer do not vote;
    if nobody answered, the vote is wrong. (The definition maj_at_k averages; tests enumerate it.)
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
    method: str  # "exact" (all C(n, k) subsets, by counting) or "sampled" (seeded random subsets)
    subsets: int  # how many subsets the value averages (C(n, k) when exact)


@dataclass(frozen=True)
class Pool:
    """One problem's samples at one budget, reduced to what a vote can see: how many samples gave each
    distinct answer, which of those answers are correct, and how many samples gave no answer."""

    counts: tuple[int, ...]
    correct: tuple[bool, ...]
    unanswered: int
    graded_correct: int | None = None  # samples graded correct, one by one (`pool` counts them)

    @property
    def size(self) -> int:
        return sum(self.counts) + self.unanswered

    @property
    def correct_samples(self) -> int:
        """Samples graded correct, for pass@k. Counted per sample, not per answer group: a group mixing
        correct and wrong grades (two spellings of one vote class) must not count its wrong samples."""
        if self.graded_correct is not None:
            return self.graded_correct
        return sum(c for c, ok in zip(self.counts, self.correct) if ok)


def correct_answers(answers: Sequence[str | None], correct: Sequence[bool]) -> frozenset[str]:
    """The answers (vote classes) graded correct in a pool: what a vote must pick to score."""
    return frozenset(a for a, ok in zip(answers, correct) if ok and a is not None)


def pool(answers: Sequence[str | None], correct: Sequence[bool]) -> Pool:
    """Group a pool by answer. An answer is correct if any sample giving it was graded correct (the
    grader sees the same gold answer for every sample of a problem, so they agree)."""
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} correctness flags: one per sample")
    counts = Counter(a for a in answers if a is not None)
    truth = correct_answers(answers, correct)
    keys = sorted(counts)  # fixed order: the sampled estimator must not depend on dict order
    return Pool(tuple(counts[a] for a in keys), tuple(a in truth for a in keys), len(answers) - sum(counts.values()),
                sum(1 for a, ok in zip(answers, correct) if ok and a is not None))


@lru_cache(maxsize=4096)
def _comb_row(m: int, upto: int) -> np.ndarray:
    """C(m, i) for i = 0..upto as floats (0 past m), by the ratio recurrence C(m, i+1) = C(m, i)(m-i)/(i+1):
    one numpy product instead of upto big-integer binomials (relative error ~ upto * 1e-16)."""
    i = np.arange(upto, dtype=float)
    ratios = np.clip(m - i, 0.0, None) / (i + 1.0)
    row = np.concatenate(([1.0], np.cumprod(ratios)))
    row.setflags(write=False)
    return row


NEGLIGIBLE = 1e-18  # a target count this improbable is skipped: at most k * 1e-18 of maj@k is lost


@lru_cache(maxsize=64)
def _log_factorials(n: int) -> np.ndarray:
    """log(i!) for i = 0..n (math.lgamma per entry: accurate to rounding, cached per pool size)."""
    return np.array([math.lgamma(i + 1.0) for i in range(n + 1)])


def _target_counts(c: int, n: int, k: int) -> np.ndarray:
    """Votes j the target answer can get in a k-subset, leaving out the j whose hypergeometric
    probability is below NEGLIGIBLE (their whole contribution is bounded by it, so the result stays
    exact to ~1e-15, and a large pool only pays for the j that can actually happen)."""
    j = np.arange(max(1, k - (n - c)), min(c, k) + 1)
    lf = _log_factorials(n)
    log_p = (lf[c] - lf[j] - lf[c - j]) + (lf[n - c] - lf[k - j] - lf[n - c - k + j]) - (lf[n] - lf[k] - lf[n - k])
    return j[log_p >= math.log(NEGLIGIBLE)]


def _tying(others: Sequence[int], j: int, k: int) -> list[int]:
    """Sizes of the other answer groups that can reach j votes when the target has j of the k."""
    return [m for m in others if m >= j] if k - j >= j else []


def _split(js: np.ndarray, others: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Target counts where no other group can reach j (no constraint, no tie: plain hypergeometric
    terms, summed at once) and those that need the polynomial count."""
    biggest = max(others, default=0)
    free = (k - js < js) | (js > biggest)
    return js[free], js[~free]


def exact_cost(p: Pool, k: int) -> float:
    """Rough nanoseconds the exact count takes (numpy calls ~2 us each, ~1 ns per element touched):
    what decides between counting and sampling."""
    n, cost = p.size, 0.0
    for target, ok in enumerate(p.correct):
        if not ok:
            continue
        others = sorted(m for i, m in enumerate(p.counts) if i != target)
        _, js = _split(_target_counts(p.counts[target], n, k), others, k)
        r = len(others) - np.searchsorted(others, js, side="left")
        rest = k - js
        rows = np.minimum(r, rest // js) + 1
        calls = np.minimum(js, rows) + 2
        cost += 5000 + float(np.sum(2000 + r * (2000 * calls + rows * (rest + 1) * np.where(js > rows, js, calls))))
    return cost


def _target_mode_weight(c: int, others: Sequence[int], unanswered: int, k: int) -> float:
    """Sum over all k-subsets of [target is a mode] / (number of modes), for one target answer group
    of c samples, other answer groups of sizes `others`, and samples without an answer.

    Counted, not enumerated: with j target votes, every other group must take at most j votes and
    the ones taking exactly j tie. Groups too small to reach j are free, like unanswered samples. A
    polynomial in s (samples taken so far) per number of ties t is built group by group, and the
    coefficient of s = k - j is weighted 1/(1 + t). At most (k - j) // j groups can tie, so only that
    many rows are kept.
    """
    n = c + sum(others) + unanswered
    plain, constrained = _split(_target_counts(c, n, k), others, k)
    total = float(np.sum(_comb_row(c, k)[plain] * _comb_row(n - c, k)[k - plain]))
    for j in (int(v) for v in constrained):
        rest = k - j
        tying = _tying(others, j, k)
        free = unanswered + sum(others) - sum(tying)
        rows = min(len(tying), rest // j) + 1
        width = min(rest, len(tying) * j) + 1  # votes the tying groups can take together
        table = np.zeros((rows, width))
        table[0, 0] = 1.0
        if j == 1:  # each tying group takes 0 votes or 1 (a tie): elementary symmetric sums of sizes
            ties = np.zeros(rows)
            ties[0] = 1.0
            for m in tying:
                ties[1:] = ties[1:] + m * ties[:-1]
            table[np.arange(rows), np.arange(rows)] = ties
            tying = []
        for m in tying:
            row = _comb_row(m, j)
            below = row[:j]  # this group takes i < j votes
            new = np.zeros_like(table)
            if j <= rows:  # few taps: shift-and-add every row at once
                for i in range(j):
                    new[:, i:] += below[i] * table[:, : width - i]
            else:  # few rows: one convolution each
                for t in range(rows):
                    new[t] = np.convolve(table[t], below)[:width]
            new[1:, j:] += row[j] * table[:-1, : width - j]  # ... or exactly j votes: one more tie
            table = new
        # the free samples (unanswered, groups too small to reach j) fill the rest: C(free, rest - s)
        fill = _comb_row(free, rest)[rest - np.arange(width)]
        weights = 1.0 / (1.0 + np.arange(rows))
        total += _comb_row(c, j)[j] * float(weights @ table @ fill)
    return total


def _sampled(p: Pool, k: int, seed: int, subsets: int) -> float:
    """Mean vote score over seeded random k-subsets, drawn as vote counts per answer group (sequential
    hypergeometric draws, largest groups first, all subsets at once).

    Why largest first: a subset whose top count already exceeds the size of the next group is decided
    (no smaller group can become a mode), so it stops drawing; with many one-off wrong answers most
    subsets are decided after a handful of groups, whatever k is.
    """
    order = sorted(range(len(p.counts)), key=lambda g: -p.counts[g])
    rng = np.random.default_rng([seed, k, p.size])
    left_pool = np.full(subsets, p.size, dtype=np.int64)
    left_k = np.full(subsets, k, dtype=np.int64)
    top = np.zeros(subsets, dtype=np.int64)
    drawn_by_group = []
    for g in order:
        m = p.counts[g]
        active = np.flatnonzero(top <= m)
        if active.size == 0:
            break
        left_pool[active] -= m
        votes = np.zeros(subsets, dtype=np.int64)
        votes[active] = rng.hypergeometric(m, left_pool[active], left_k[active]) if left_pool[active].any() \
            else left_k[active]
        left_k[active] -= votes[active]
        top = np.maximum(top, votes)
        drawn_by_group.append((votes, p.correct[g]))
    hits = np.zeros(subsets)
    modes = np.zeros(subsets)
    for votes, ok in drawn_by_group:
        is_mode = (votes == top) & (top > 0)
        modes += is_mode
        if ok:
            hits += is_mode
    return float(np.mean(hits / np.maximum(modes, 1)))


def _whole_pool_vote(p: Pool) -> float:
    top = max(p.counts, default=0)
    if top == 0:
        return 0.0
    modes = [ok for c, ok in zip(p.counts, p.correct) if c == top]
    return sum(modes) / len(modes)


def maj_at_k_pool(p: Pool, k: int, seed: int = 0) -> MajAtK:
    """Expected majority-vote accuracy of k samples drawn without replacement from the pool.

    Exact (all C(n, k) subsets, by counting) when exact_cost(p, k) <= EXACT_COST_LIMIT, otherwise the
    mean over SAMPLED_SUBSETS seeded random subsets; the method is reported with the value.
    """
    n = p.size
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} must be between 1 and the pool size {n}")
    if not any(p.correct):
        return MajAtK(0.0, "exact", math.comb(n, k))
    if k == n:  # one subset: the whole pool votes
        return MajAtK(_whole_pool_vote(p), "exact", 1)
    lf = _log_factorials(n)
    cheap = k <= EXACT_ALWAYS_K or exact_cost(p, k) <= EXACT_COST_LIMIT
    if lf[n] - lf[k] - lf[n - k] < math.log(FLOAT_COMB_LIMIT) and cheap:
        return MajAtK(exact_maj_at_k(p, k), "exact", math.comb(n, k))
    return MajAtK(_sampled(p, k, seed, SAMPLED_SUBSETS), "sampled", SAMPLED_SUBSETS)


def exact_maj_at_k(p: Pool, k: int) -> float:
    """maj@k by counting, whatever it costs (maj_at_k_pool decides when that is worth it). By
    linearity, the sum over correct answers of the expected [answer is a mode] / (number of modes)."""
    weight = 0.0
    for target, ok in enumerate(p.correct):
        if ok:
            others = [m for i, m in enumerate(p.counts) if i != target]
            weight += _target_mode_weight(p.counts[target], others, p.unanswered, k)
    return min(1.0, weight / float(math.comb(p.size, k)))


def maj_at_k(
    answers: Sequence[str | None], correct: Sequence[bool], k: int, seed: int = 0
) -> MajAtK:
    """maj@k of a pool given as one answer (None: no answer) and one correctness flag per sample."""
    return maj_at_k_pool(pool(answers, correct), k, seed)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Computed as a product of ratios (never the huge binomials themselves), so it stays exact to
    rounding for pools of any size.
    """
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    i = np.arange(k, dtype=float)
    return float(1.0 - np.prod((n - c - i) / (n - i)))


def vote_ks(pool: int) -> list[int]:
    """k = 1, 2, 4, ... up to the pool size (and the pool size itself), as the seed's doubling axis."""
    ks = [2**i for i in range(pool.bit_length()) if 2**i <= pool]
    if ks[-1] != pool:
        ks.append(pool)
    return ks
