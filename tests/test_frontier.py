"""The compute-optimal frontier and the crossover: against brute force on random grids, and end to end
(frontier.csv is the upper envelope of every strategy in strategies.csv; pools grow without re-drawing a
sample)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from grids import near_equal_spend_grid

from harness.analysis import crossover, frontier
from harness.cli import main
from harness.params import Params
from harness.stages import vote


def brute_force_envelope(tokens, accuracy) -> list[bool]:
    """The definition itself: a point is kept unless another beats it (no more tokens and no less accuracy,
    better in one of the two) or is the same point listed before it."""
    n = len(tokens)
    ok = [np.isfinite(tokens[i]) and np.isfinite(accuracy[i]) for i in range(n)]

    def beats(j: int, i: int) -> bool:
        no_worse = tokens[j] <= tokens[i] and accuracy[j] >= accuracy[i]
        better = tokens[j] < tokens[i] or accuracy[j] > accuracy[i]
        return no_worse and (better or j < i)

    return [ok[i] and not any(ok[j] and j != i and beats(j, i) for j in range(n)) for i in range(n)]


def random_grid(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Coarse values, so that ties in tokens and in accuracy are common; some points missing."""
    tokens = rng.integers(1, 12, n).astype(float)
    accuracy = rng.integers(0, 6, n) / 5
    missing = rng.random(n) < 0.1
    tokens[missing & (rng.random(n) < 0.5)] = np.nan
    accuracy[missing] = np.where(rng.random(missing.sum()) < 0.5, np.nan, accuracy[missing])
    return tokens, accuracy


def test_upper_envelope_equals_brute_force_on_random_grids():
    rng = np.random.default_rng(13)
    for _ in range(500):
        tokens, accuracy = random_grid(rng, int(rng.integers(1, 25)))
        assert frontier.upper_envelope(tokens, accuracy).tolist() == brute_force_envelope(tokens, accuracy)


def test_height_at_is_the_best_accuracy_of_any_point_costing_no_more():
    rng = np.random.default_rng(1)
    for _ in range(100):
        tokens, accuracy = random_grid(rng, 12)
        spend = np.array([0.5, 3.0, 7.5, 20.0])
        got = frontier.height_at(tokens, accuracy, spend)[0]
        for s, h in zip(spend, got):
            affordable = [a for t, a in zip(tokens, accuracy) if t <= s and np.isfinite(a)]
            assert (np.isnan(h) and not affordable) or h == max(affordable)


def brute_force_thinking_longer(tokens, accuracy, single, spend) -> float:
    """The rule as docs/statistics.md states it, point by point: the best single answer costing no more
    than each measured answer, joined by straight lines in log2(tokens), held for half a doubling past the
    longest answer, undefined elsewhere."""
    pts = sorted((tokens[i], accuracy[i]) for i in range(len(tokens))
                 if single[i] and np.isfinite(tokens[i]) and np.isfinite(accuracy[i]) and tokens[i] > 0)
    if not pts or not np.isfinite(spend) or spend < pts[0][0] or spend > pts[-1][0] * 2 ** 0.5:
        return float("nan")
    best = {t: max(a for u, a in pts if u <= t) for t, _ in pts}
    xs = sorted(best)
    if spend >= xs[-1]:
        return best[xs[-1]]
    right = next(t for t in xs if t >= spend)
    left = max(t for t in xs if t <= spend)
    if left == right:
        return best[left]
    w = (np.log2(spend) - np.log2(left)) / (np.log2(right) - np.log2(left))
    return best[left] + w * (best[right] - best[left])


def test_thinking_longer_at_equal_spend_equals_the_stated_rule_on_random_grids():
    rng = np.random.default_rng(11)
    for _ in range(300):
        tokens, accuracy = random_grid(rng, int(rng.integers(1, 12)))
        single = rng.random(tokens.size) < 0.6
        spend = rng.uniform(0.5, 20, 6)
        got = crossover.thinking_longer_at(tokens, accuracy, single, spend)[0]
        want = [brute_force_thinking_longer(tokens, accuracy, single, s) for s in spend]
        np.testing.assert_allclose(got, want, equal_nan=True, atol=1e-12)


def brute_force_crossover(tokens, accuracy, shorter_vote, single) -> float:
    wins = [tokens[i] for i in range(len(tokens)) if shorter_vote[i]
            and accuracy[i] > brute_force_thinking_longer(tokens, accuracy, single, tokens[i])]
    return min(wins) if wins else float("nan")


def test_crossover_equals_brute_force_on_random_grids():
    rng = np.random.default_rng(7)
    found = 0
    for _ in range(500):
        n = int(rng.integers(2, 16))
        tokens = rng.integers(1, 12, n).astype(float)
        accuracy = rng.integers(0, 6, n) / 5
        single = rng.random(n) < 0.4
        shorter_vote = ~single & (rng.random(n) < 0.7)
        got = crossover.crossover_tokens(tokens, accuracy, shorter_vote, single)[0]
        want = brute_force_crossover(tokens, accuracy, shorter_vote, single)
        assert (np.isnan(got) and np.isnan(want)) or got == want
        found += not np.isnan(want)
    assert 20 < found < 480  # both outcomes were exercised


def _grid_samples(rng: np.random.Generator, problems: int, budgets: list[int], pool: int) -> pd.DataFrame:
    """A random sample table: per problem and budget a pool of answers (right, or one of a few wrong ones)."""
    rows = []
    for p in range(problems):
        skill = rng.normal()
        for b in budgets:
            for s in range(pool):
                right = rng.random() < 1 / (1 + np.exp(-(skill + np.log2(b) - 5)))
                tokens = int(b * rng.uniform(0.7, 1.1)) + 4
                answer = "42" if right else str(int(rng.integers(0, 3)))
                rows.append({"problem_id": f"p{p}", "budget": b, "sample": s, "seed": s,
                             "completion_tokens": tokens, "reasoning_tokens": 0, "prompt_tokens": 10,
                             "answer": answer, "gold": "42", "correct": right, "finish_reason": "stop",
                             "status": "ok", "requests": 1, "latency_s": 0.1, "error": None})
    return pd.DataFrame(rows)


def _written(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    from harness.files import write_csv

    write_csv(path, frame)
    return pd.read_csv(path)


def test_frontier_csv_is_the_envelope_of_every_strategy_by_brute_force_on_random_grids(tmp_path):
    """strategies.csv holds every strategy point (curve.csv's fixed votes, every stopping rule at every budget
    with pools of two or more); frontier.csv is exactly the points of it nothing beats, checked by brute force
    over all of them, in order of tokens, and `on_frontier` marks the same rows."""
    rng = np.random.default_rng(5)
    params = Params.model_validate({"data": {"answer_type": "any"}})
    for trial in range(6):
        budgets = sorted(rng.choice([8, 16, 32, 64, 128, 256], size=int(rng.integers(2, 5)), replace=False).tolist())
        samples = _grid_samples(rng, int(rng.integers(3, 12)), budgets, int(rng.integers(2, 9)))
        table, summary, every = vote.analyse(samples, params)
        curve = _written(tmp_path / f"curve{trial}.csv", table)
        strategies = _written(tmp_path / f"strategies{trial}.csv", every.assign(
            on_frontier=every.index.isin(frontier.frontier_order(every))))
        front = _written(tmp_path / f"frontier{trial}.csv", frontier.frontier_table(every))
        assert list(front.columns) == ["budget", "k", "mean_tokens", "log2_tokens", "maj_at_k", "maj_lo", "maj_hi",
                                       "rule", "mean_samples", "estimator", "mc_se"]
        fixed = strategies[strategies["rule"] == "fixed"].reset_index(drop=True)
        pd.testing.assert_frame_equal(fixed[["budget", "k", "mean_tokens", "maj_at_k", "maj_lo", "maj_hi"]],
                                      curve[["budget", "k", "mean_tokens", "maj_at_k", "maj_lo", "maj_hi"]],
                                      check_dtype=False)
        rules = strategies[strategies["rule"] != "fixed"]
        assert rules["k"].isna().all() and set(rules["rule"]) == {"unanimity w=2", "unanimity w=3",
                                                                  "posterior p=0.9", "posterior p=0.95"}
        assert (rules["mean_samples"] >= 1).all() and (rules["maj_lo"] <= rules["maj_at_k"]).all()
        assert len(rules) == 4 * len(summary["adaptive"]["rules"]["unanimity w=2"]["by_budget"])
        keep = brute_force_envelope(strategies["mean_tokens"].tolist(), strategies["maj_at_k"].tolist())
        assert strategies["on_frontier"].tolist() == keep
        expected = strategies[keep].drop(columns=["problems", "on_frontier"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(front.sort_values(["mean_tokens"], kind="stable").reset_index(drop=True),
                                      expected.sort_values(["mean_tokens"], kind="stable").reset_index(drop=True),
                                      check_dtype=False)
        assert front["mean_tokens"].is_monotonic_increasing and front["maj_at_k"].is_monotonic_increasing
        assert len(summary["frontier"]["points"]) == len(front)
        crossing = summary["crossover"]
        assert 0 <= crossing["replicates_with_crossover"] <= 1
        assert (crossing["tokens"] is None) == ("reason" in crossing)


def test_crossover_found_on_a_grid_where_votes_over_short_answers_beat_one_long_answer():
    """Budget 64 single answers are right 40% of the time at 68 tokens; at budget 16 three of every four
    samples are right, so a vote of 4 short answers (68 tokens) is always right. A vote of 2 (34 tokens)
    is a flat step (maj@2 = maj@1): it buys nothing the single short answer did not, so it is not the
    crossover."""
    rows = []
    for p in range(20):
        for s in range(4):
            right16 = s != 3  # 3 of 4 right: a vote of 2 or 4 is right more often than one sample
            right64 = (p + s) % 5 < 2
            for budget, right, tokens in ((16, right16, 17), (64, right64, 68)):
                rows.append({"problem_id": f"p{p}", "budget": budget, "sample": s, "seed": s,
                             "completion_tokens": tokens, "reasoning_tokens": 0, "prompt_tokens": 10,
                             "answer": "7" if right else f"{s + 10}", "gold": "7", "correct": right,
                             "finish_reason": "stop", "status": "ok", "requests": 1, "latency_s": 0.1,
                             "error": None})
    no_rules = {"data": {"answer_type": "any"}, "vote": {"adaptive": {"unanimity_window": [], "posterior_threshold": []}}}
    _, summary = vote.compute(pd.DataFrame(rows), Params.model_validate(no_rules))
    crossing = summary["crossover"]
    assert (crossing["budget"], crossing["k"], crossing["tokens"]) == (16, 4, 68.0), crossing
    assert crossing["versus"] == {"budget": 64, "k": 1, "tokens": 68.0, "maj_at_k": 0.4}
    # at 68 tokens thinking longer buys budget 16's 75% (stopping there beats budget 64's 40%)
    assert crossing["thinking_longer_at_equal_spend"] == 0.75
    assert crossing["gain_over_thinking_longer"] == 0.25
    assert crossing["tokens_lo"] <= 68.0 <= crossing["tokens_hi"]
    assert crossing["replicates_with_crossover"] == 1.0
    # with the stopping rules among the strategies, a vote over the short answers that stops once they agree
    # wins earlier still: the crossover follows the frontier over every strategy
    _, summary = vote.compute(pd.DataFrame(rows), Params.model_validate({"data": {"answer_type": "any"}}))
    early = summary["crossover"]
    assert early["budget"] == 16 and early["k"] is None and early["rule"] in {"unanimity w=2", "unanimity w=3",
                                                                             "posterior p=0.9", "posterior p=0.95"}
    assert early["tokens"] < 68.0 and early["maj_at_k"] > early["thinking_longer_at_equal_spend"]
    assert early["statement"].startswith(f"votes over shorter answers beat thinking longer from {early['tokens']:,.0f} "
                                         f"tokens: {early['rule']} at budget 16 has")


def test_pools_grow_incrementally_asking_only_for_the_new_samples(project, fake_model):
    """A pool of 2 at every budget, then a per-budget map raising two of them: only the new sample
    indices are sent, every earlier response is reused, and the grid has every k up to each pool."""
    project(fake_model.url, sampling={"samples": 2, "vote_samples": None})
    assert main(["run"]) == 0
    first = len(fake_model.requests)
    bodies = {json.dumps(r["body"], sort_keys=True) for r in fake_model.requests}
    project(fake_model.url, sampling={"samples": {4: 2, 16: 5, 64: 8}, "vote_samples": None})
    assert main(["estimate"]) == 0
    assert main(["run"]) == 0
    new = fake_model.requests[first:]
    assert not {json.dumps(r["body"], sort_keys=True) for r in new} & bodies, "a sample was drawn twice"
    firsts = [r["body"] for r in new if not r["body"]["prompt"].endswith("\\boxed{")]
    assert len(firsts) == 6 * ((5 - 2) + (8 - 2))  # 6 problems: 3 new samples at 16, 6 at 64, none at 4
    samples = pd.read_csv("outputs/samples.csv")
    assert samples.groupby("budget")["sample"].nunique().to_dict() == {4: 2, 16: 5, 64: 8}
    curve = pd.read_csv("outputs/curve.csv")
    assert {b: sorted(g["k"]) for b, g in curve.groupby("budget")} == {4: [1, 2], 16: [1, 2, 4, 5],
                                                                       64: [1, 2, 4, 8]}
    assert Path("outputs/frontier.csv").exists()


def test_estimate_prices_the_grid_before_anything_is_sent(project, fake_model, capsys):
    project(fake_model.url, sampling={"samples": {4: 2, 16: 4, 64: 8}, "vote_samples": None})
    assert main(["estimate"]) == 0
    out = capsys.readouterr().out
    assert "grid: a pool of 2 at every budget but 4 at 16, 8 at 64 -> 9 (budget, k) points, each sample reused for every k" in out
    total = next(line for line in out.splitlines() if line.startswith("total")).split()
    assert int(total[1]) == 6 * (2 + 4 + 8)
    assert fake_model.requests == []


@pytest.mark.parametrize(("samples", "message"), [
    ({4: 2, 16: 4}, "no pool for budget 64"),
    ({4: 2, 16: 4, 64: 8, 128: 8}, "budget 128 is not in budgets.requested"),
    ({4: 2, 16: 0, 64: 8}, "sampling.samples[16] = 0: a pool size must be a positive integer"),
])
def test_a_wrong_pool_map_stops_before_any_request(project, fake_model, capsys, samples, message):
    project(fake_model.url, sampling={"samples": samples, "vote_samples": None})
    assert main(["run"]) == 2
    assert message in capsys.readouterr().err
    assert fake_model.requests == []


def test_a_vote_two_percent_dearer_than_the_longest_answer_is_compared_at_equal_spend():
    """The issue's case: maj@4 at budget 64 (288 tokens) against one budget-256 answer (283 tokens). The
    old rule (a vote must cost no more than the longest answer) reported no crossover; at equal spend the
    vote's win is reported, with its interval, and the sentence says so with the numbers beside it. (Fixed
    votes only: a stopping rule at budget 64 wins earlier still, which the next test checks.)"""
    params = Params.model_validate({"data": {"answer_type": "any"},
                                    "vote": {"adaptive": {"unanimity_window": [], "posterior_threshold": []}}})
    _, summary = vote.compute(near_equal_spend_grid(True), params)
    crossing = summary["crossover"]
    assert (crossing["budget"], crossing["k"], crossing["tokens"]) == (64, 4, 288.0), crossing
    assert crossing["maj_at_k"] == 0.8 and crossing["thinking_longer_at_equal_spend"] == 0.5
    assert crossing["gain_lo"] > 0, "votes clearly win: the gain's interval excludes 0"
    assert crossing["replicates_with_crossover"] > 0.9 and "reason" not in crossing
    assert crossing["tokens_lo"] <= 288.0
    statement = crossing["statement"]
    assert statement.startswith("votes over shorter answers beat thinking longer from 288 tokens")
    assert f"{100 * crossing['maj_at_k']:.1f}% against 50.0%" in statement
    assert "held from budget 256's answer" in statement
    front = frontier.frontier_table(vote.analyse(near_equal_spend_grid(True), params)[2])
    assert ((front["budget"] == 64) & (front["k"] == 4)).any(), "the crossover is a point of frontier.csv"


def test_with_the_stopping_rules_the_crossover_is_the_cheapest_winning_strategy_on_the_frontier():
    params = Params.model_validate({"data": {"answer_type": "any"}})
    _, summary, every = vote.analyse(near_equal_spend_grid(True), params)
    crossing = summary["crossover"]
    assert crossing["budget"] == 64 and crossing["rule"] != "fixed" and crossing["tokens"] < 288.0, crossing
    assert crossing["maj_at_k"] > crossing["thinking_longer_at_equal_spend"]
    front = frontier.frontier_table(every)
    on = front[(front["budget"] == 64) & (front["rule"] == crossing["rule"])]
    assert len(on) == 1 and on["mean_tokens"].iloc[0] == pytest.approx(crossing["tokens"], rel=1e-5)
    cheaper_votes = every[(every["mean_tokens"] < crossing["tokens"]) & (every["budget"] < 256)
                          & ((every["rule"] != "fixed") | (every["k"] >= 2))]
    # no cheaper vote over shorter answers beats thinking longer at its own spend
    single = (every["rule"] == "fixed") & (every["k"] == 1)
    from harness.analysis import crossover as crossing_rule

    longer = crossing_rule.thinking_longer_at(every["mean_tokens"], every["maj_at_k"], single.to_numpy(),
                                              cheaper_votes["mean_tokens"].to_numpy())[0]
    assert all(not (a > b) for a, b in zip(cheaper_votes["maj_at_k"], longer) if np.isfinite(b))


def test_votes_that_amplify_a_shared_wrong_answer_give_no_crossover_and_say_why():
    params = Params.model_validate({"data": {"answer_type": "any"}})
    _, summary = vote.compute(near_equal_spend_grid(False), params)
    crossing = summary["crossover"]
    assert crossing["tokens"] is None and crossing["budget"] is None
    reason = crossing["reason"]
    assert reason.startswith("no vote over answers shorter than the longest budget beats thinking longer")
    # the sentence quotes the nearest vote and what thinking longer buys there: both are the data's numbers
    written = vote.analyse(near_equal_spend_grid(False), params)[2]

    def named(r) -> str:  # how the reason names a strategy point
        what = f"maj@{int(r['k'])}" if r["rule"] == "fixed" else str(r["rule"])
        return f"{what} at budget {r['budget']} ({r['mean_tokens']:,.0f} tokens)"

    nearest = next(r for _, r in written.iterrows() if named(r) in reason)
    assert (nearest["rule"] != "fixed" or int(nearest["k"]) >= 2) and f"has {100 * nearest['maj_at_k']:.1f}% against" in reason
    single = ((written["rule"] == "fixed") & (written["k"] == 1)).to_numpy(dtype=bool)
    longer = crossover.thinking_longer_at(written["mean_tokens"], written["maj_at_k"], single,
                                         [nearest["mean_tokens"]])[0, 0]
    assert f"against {100 * longer:.1f}% for thinking longer" in reason
    assert nearest["maj_at_k"] <= longer
    assert crossing["statement"] == "no crossover: " + reason
