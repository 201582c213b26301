"""What the report's grid shows, from graded samples alone: per cell (a problem at a budget) the share
graded correct, one tick per sample, the whole pool's majority verdict and its vote groups; per problem
its difficulty and its flips between budgets.

Why apart from the report's I/O: these are the numbers a reader trusts when clicking through a run, so
they are pure functions (records in, records out) tested one by one, and they follow the vote stage's own
rules rather than new ones: answers vote by equivalence class (the caller passes `grade.vote_key` as the
vote stage does), a tie splits the score as `majority.vote_score` does, and a failed sample (no response
after retries) never votes and is never counted wrong.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..analysis import majority
from ..budget_axis import Budget, budget_rank

# One tick per sample, in sample order: how it was graded.
CORRECT, WRONG, NO_ANSWER, FAILED = "c", "w", "n", "f"
RIGHT_TO_WRONG, WRONG_TO_RIGHT = "right-to-wrong", "wrong-to-right"


@dataclass(frozen=True)
class Graded:
    """What the grid needs of one row of the sample table."""

    sample: int
    status: str
    correct: bool | None  # None: failed, never graded
    answer: str | None  # the extracted answer as samples.csv has it; None: none extracted (or failed)
    vote_class: str | None = None  # its equivalence class (grade.vote_key); None: no answer

    @property
    def failed(self) -> bool:
        return self.status.startswith("failed")


def classed(samples: Iterable[Graded], vote_key: Callable[[str], str]) -> list[Graded]:
    """The samples with their vote class filled in, each distinct answer keyed once (keys can be slow)."""
    samples = list(samples)
    keys = {s.answer: vote_key(s.answer) for s in samples if s.answer is not None and not s.failed}
    return [Graded(s.sample, s.status, s.correct, s.answer, None if s.failed or s.answer is None else keys[s.answer])
            for s in samples]


def tick(sample: Graded) -> str:
    if sample.failed:
        return FAILED
    if sample.answer is None:
        return NO_ANSWER
    return CORRECT if sample.correct else WRONG


@dataclass(frozen=True)
class VoteGroup:
    """One equivalence class of a pool's answers: the samples that gave it and how they were written."""

    vote_class: str
    samples: tuple[int, ...]
    spellings: tuple[str, ...]  # the distinct extracted answers in the class, most frequent first
    correct: bool  # graded correct (any of its samples was: the grader saw one gold answer)

    @property
    def count(self) -> int:
        return len(self.samples)


def vote_groups(samples: Sequence[Graded]) -> list[VoteGroup]:
    """The pool's answers grouped by vote class, largest first (then by class, for a fixed order).
    Samples without an answer, and failed ones, cast no vote and are in no group."""
    members: dict[str, list[Graded]] = defaultdict(list)
    for s in samples:
        if s.vote_class is not None:
            members[s.vote_class].append(s)
    groups = []
    for key, group in members.items():
        spelled = Counter(s.answer for s in group if s.answer is not None)
        groups.append(VoteGroup(key, tuple(s.sample for s in group),
                                tuple(a for a, _ in sorted(spelled.items(), key=lambda item: (-item[1], item[0]))),
                                any(s.correct for s in group)))
    return sorted(groups, key=lambda g: (-g.count, g.vote_class))


def winners(groups: Sequence[VoteGroup]) -> list[str]:
    """The classes with the most votes: one is the majority's answer, several are a tie."""
    top = max((g.count for g in groups), default=0)
    return [g.vote_class for g in groups if g.count == top and top > 0]


def majority_verdict(samples: Sequence[Graded]) -> float | None:
    """The whole pool's majority vote, scored as the vote stage scores a vote (majority.vote_score): 1 right,
    0 wrong, in between a tie the right answer is part of (1 / the number tied). None: every sample failed,
    so there was nothing to vote on; a pool where nobody answered is a wrong vote (0)."""
    voters = [s for s in samples if not s.failed]
    if not voters:
        return None
    classes = [s.vote_class for s in voters]
    return majority.vote_score(classes, majority.correct_answers(classes, [bool(s.correct) for s in voters]))


def disagrees(sample: Graded, top: Sequence[str]) -> bool:
    """The sample answered, and its answer is not (one of) the majority's: a vote it lost."""
    return sample.vote_class is not None and bool(top) and sample.vote_class not in top


def maj_at_k(samples: Sequence[Graded], k: int, seed: int) -> float | None:
    """The expected accuracy of a vote of k samples drawn from the pool (majority.maj_at_k_pool, the
    vote stage's own estimate for this problem); None when fewer than k samples could vote."""
    voters = [s for s in samples if not s.failed]
    if len(voters) < k:
        return None
    pool = majority.pool([s.vote_class for s in voters], [bool(s.correct) for s in voters])
    return majority.maj_at_k_pool(pool, k, seed).value


@dataclass(frozen=True)
class Cell:
    """One problem at one budget."""

    graded: int  # samples that could vote (not failed)
    correct: int
    ticks: str  # one of CORRECT, WRONG, NO_ANSWER, FAILED per sample, in sample order
    verdict: float | None
    groups: tuple[VoteGroup, ...]
    winners: tuple[str, ...]

    @property
    def fraction(self) -> float | None:
        """The share of its samples graded correct; None when none could be graded."""
        return self.correct / self.graded if self.graded else None

    @property
    def tie(self) -> bool:
        return len(self.winners) > 1


def cell(samples: Sequence[Graded]) -> Cell:
    ordered = sorted(samples, key=lambda s: s.sample)
    groups = vote_groups(ordered)
    voters = [s for s in ordered if not s.failed]
    return Cell(graded=len(voters), correct=sum(1 for s in voters if s.correct),
                ticks="".join(tick(s) for s in ordered), verdict=majority_verdict(ordered),
                groups=tuple(groups), winners=tuple(winners(groups)))


def difficulty(fractions: Iterable[float | None]) -> float | None:
    """How often a problem is solved: the mean of its cells' shares correct, each budget weighing the same
    (a large vote pool at one budget must not outweigh the others). None: no cell could be graded."""
    known = [f for f in fractions if f is not None]
    return sum(known) / len(known) if known else None


def hardest_first(difficulties: Sequence[float | None]) -> list[int]:
    """Row order for "sort by difficulty": least solved first, ungradable problems last, ties in the
    order the problems were fetched."""
    return sorted(range(len(difficulties)),
                  key=lambda i: (difficulties[i] is None, difficulties[i] or 0.0, i))


@dataclass(frozen=True)
class Flip:
    """A problem whose majority verdict changed between two budgets, the smaller first."""

    problem_id: str
    before: Budget
    after: Budget
    direction: str  # RIGHT_TO_WRONG or WRONG_TO_RIGHT


def flips(problem_id: str, verdicts: Iterable[tuple[Budget, float | None]]) -> list[Flip]:
    """Where a problem's verdict changes from one budget to the next, in budget order. Only decided
    verdicts count (right: 1, wrong: 0): a tie the right answer is part of, or a cell with nothing to
    vote on, is skipped over, so right at 256, a tie at 512 and wrong at 1024 is one flip, 256 -> 1024."""
    decided = [(b, v) for b, v in sorted(verdicts, key=lambda item: budget_rank(item[0])) if v in (0.0, 1.0)]
    return [Flip(problem_id, b0, b1, RIGHT_TO_WRONG if v0 == 1.0 else WRONG_TO_RIGHT)
            for (b0, v0), (b1, v1) in pairwise(decided) if v0 != v1]
