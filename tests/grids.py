"""Sample tables with a known answer, shared by the crossover's tests and the figure's."""

from __future__ import annotations

import pandas as pd


def _table(rows: list[tuple[str, int, int, str, bool, int]]) -> pd.DataFrame:
    """(problem, budget, sample, answer, correct, tokens) -> a sample table."""
    return pd.DataFrame([{"problem_id": p, "budget": b, "sample": s, "seed": s, "completion_tokens": t,
                          "reasoning_tokens": 0, "prompt_tokens": 10, "answer": ans, "gold": "7", "correct": ok,
                          "finish_reason": "stop", "status": "ok", "requests": 1, "latency_s": 0.1, "error": None}
                         for p, b, s, ans, ok, t in rows])


def near_equal_spend_grid(votes_amplify_the_right_answer: bool) -> pd.DataFrame:
    """30 problems, budgets 16..256 with 4 samples each. Budget 64 answers cost 72 tokens, so maj@4 there
    costs 288, 2% more than one budget-256 answer (283 tokens), which is right on about half the problems.
    In the first kind, budget-64 samples are right 2 times in 4 on 24 problems, the other two wrong in two
    different ways (40% for one answer): a vote of 4 is right on all 24 (80%), 30 points above thinking
    longer. In the second, the budget-64 samples share one wrong answer 3 times in 4: voting amplifies it."""
    rows = []
    for p in range(30):
        pid = f"p{p:02d}"
        for s in range(4):
            for budget, tokens, right in ((16, 18, (p + s) % 5 == 0), (32, 36, (p + s) % 4 == 0),
                                          (128, 140, (p + s) % 3 == 0), (256, 283, (p + s) % 2 == 0)):
                rows.append((pid, budget, s, "7" if right else f"{10 + s}", right, tokens))
            if votes_amplify_the_right_answer:
                right = s < 2 and p < 24
                answer = "7" if right else f"{20 + s}"  # the wrong answers all differ
            else:
                right = s == 3
                answer = "7" if right else "13"  # the same wrong answer in three of four samples
            rows.append((pid, 64, s, answer, right, 72))
    return _table(rows)
