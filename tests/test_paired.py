"""Which run is better: the paired difference, its interval and its p-value (harness/analysis/paired.py), the tokens
each run needs (harness/analysis/efficiency.py), and `harness compare` pairing real run directories by problem."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from harness.analysis import efficiency, paired
from harness.cli import main
from harness.compare import ROWS_KEY

# --- the statistics ------------------------------------------------------------------------------------

def _tells_one_story(found: paired.PairedDifference) -> bool:
    """Significant at 0.05 exactly when the 95% interval leaves out 0."""
    return (found.p_value < 0.05) == (found.lo > 0 or found.hi < 0)


def test_a_planted_difference_on_the_same_problems_has_the_right_sign_interval_and_p_value():
    a = np.array([1.0] * 10 + [0.0] * 20)
    b = np.array([1.0] * 10 + [1.0] * 10 + [0.0] * 10)  # B solves A's ten and ten more
    found = paired.compare_scores(a, b)
    assert found.delta == pytest.approx(1 / 3) and found.higher == (0, 10)
    assert 0 < found.lo < 1 / 3 < found.hi < 1
    assert 1e-4 < found.p_value < 2**-10  # McNemar's mid-p says 2^-10 for these ten discordant problems
    back = paired.compare_scores(b, a)  # the other way round: the mirror image
    assert back.delta == pytest.approx(-1 / 3) and (back.lo, back.hi) == pytest.approx((-found.hi, -found.lo))
    assert back.p_value == pytest.approx(found.p_value) and back.higher == (10, 0)


def test_the_p_value_is_the_intervals_own_at_every_level():
    """interval_p inverts difference_interval: the interval at confidence 1 - p just touches 0."""
    a = np.array([1.0] * 8 + [0.0] * 22)
    b = np.array([1.0] * 14 + [0.0] * 16)
    p = paired.interval_p(a, b)
    lo, _ = paired.difference_interval(a, b, 1 - p)
    assert 0 < p < 1 and lo == pytest.approx(0.0, abs=1e-6)
    assert paired.difference_interval(a, b, 1 - p - 1e-4)[0] > 0 > paired.difference_interval(a, b, 1 - p + 1e-4)[0]


def test_matched_spend_rows_that_contradicted_themselves_now_tell_one_story():
    """The two rows of the report: (1) nine problems a little worse in B, none better, -1.8 points: the
    sign-flip test said p = 0.0039 beside an interval of -9.2 to +5.6 (the report's p = 0.0027 beside -17.1
    to +12.6); (2) A higher on 18 problems by a little, B on 2 by a lot, B ahead on average. Both rows
    now agree with their interval, and the counts say which run scores higher where."""
    a = np.array([1.0] * 12 + [0.0] * 18)
    b = a.copy()
    b[:9] -= 0.06  # read a little below the budget on nine problems
    skewed = paired.compare_scores(a, b)
    assert skewed.delta == pytest.approx(-0.018) and skewed.lo < 0 < skewed.hi and skewed.p_value > 0.05
    assert skewed.higher == (9, 0) and _tells_one_story(skewed)
    a = np.r_[np.full(18, 0.5), np.zeros(2), np.full(10, 0.3)]
    b = np.r_[np.full(18, 0.45), np.full(2, 0.5), np.full(10, 0.3)]
    mixed = paired.compare_scores(a, b)
    assert mixed.delta > 0 and mixed.higher == (18, 2) and _tells_one_story(mixed)


def test_p_value_and_interval_agree_on_many_random_pairs():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(2, 40))
        skill = rng.random(n)
        a = rng.binomial(int(rng.integers(1, 5)), skill) / 4
        b = np.clip(a + rng.choice([-0.25, 0.0, 0.25, 0.5], size=n, p=[0.2, 0.4, 0.3, 0.1]), 0, 1)
        found = paired.compare_scores(np.clip(a, 0, 1), b)
        assert _tells_one_story(found), found


def test_identical_runs_differ_by_nothing():
    a = np.array([0.0, 0.5, 1.0, 0.25, 0.75, 1.0])
    same = paired.compare_scores(a, a)
    assert same.delta == 0 and same.lo < 0 < same.hi and same.p_value == 1.0 and same.higher == (0, 0)
    better = paired.compare_scores(a, np.clip(a + 0.25, 0, 1))
    assert better.test == paired.TEST and better.delta > 0 and better.higher == (0, 4)


def test_pairing_narrows_the_interval_of_correlated_runs():
    """The same problems solved by both runs say nothing about the difference: with the correlation the
    interval is narrower than if the runs were independent samples of problems."""
    rng = np.random.default_rng(0)
    a = (rng.random(30) < 0.5).astype(float)
    b = a.copy()
    b[:3] = 1.0
    lo, hi = paired.difference_interval(a, b)
    shuffled = paired.difference_interval(a, rng.permutation(b))
    assert hi - lo < shuffled[1] - shuffled[0]


def _coverage_benchmark():
    spec = importlib.util.spec_from_file_location("coverage_compare", REPO / "benchmarks" / "coverage_compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("problems", [12, 30])
def test_the_paired_interval_covers_a_known_difference(problems):
    """A small seeded run of benchmarks/coverage_compare.py (the full grid: docs/statistics.md)."""
    coverage = _coverage_benchmark().difference_coverage(problems, samples=1, a_mean=0.3, delta=0.2,
                                                         spread=2.0, reps=400, seed=5)
    assert coverage["interval"] >= 0.93, coverage


def test_at_matched_spend_no_row_contradicts_itself_where_the_old_test_did():
    """The simulation's contradicting case (benchmarks/coverage_compare.py, "At matched spend"), small:
    30 problems read between two budgets, no true difference. The old sign-flip test beside the interval
    contradicted it in 5 of these 100 runs; the interval's own p-value never does."""
    found = _coverage_benchmark().matched_coverage(30, read=0.5, truth=0.0, weight=0.3, spread=2.0, reps=100)
    assert found["contradictions"] == 0 and found["old contradictions"] >= 0.03, found
    assert found["p below 0.05"] <= 0.05 and found["interval"] >= 0.93, found


# --- tokens to reach an accuracy ---------------------------------------------------------------------------

def test_reach_reads_the_crossing_and_says_when_it_is_only_a_bound():
    x = np.array([4.0, 5.0, 6.0])
    y = np.array([0.2, 0.4, 0.3])  # made non-decreasing: 0.2, 0.4, 0.4
    assert efficiency.reach(x, y, 0.3) == efficiency.Reach(4.5, efficiency.EXACT)
    assert efficiency.reach(x, y, 0.1) == efficiency.Reach(4.0, efficiency.AT_MOST)
    assert efficiency.reach(x, y, 0.5) == efficiency.Reach(6.0, efficiency.MORE_THAN)
    exact, more = efficiency.Reach(5.0, efficiency.EXACT), efficiency.Reach(6.0, efficiency.MORE_THAN)
    assert efficiency.log2_ratio_range(exact, more) == (1.0, math.inf)  # B needs more than 2x: a bound


def test_a_run_that_needs_twice_the_tokens_has_a_ratio_of_two():
    rng = np.random.default_rng(1)
    budgets = np.arange(4.0, 11.0)
    skill = rng.normal(size=(400, 1))
    curve = lambda x: 1 / (1 + np.exp(-(x - 7.0) - skill))
    scores_a = (rng.random((400, budgets.size)) < curve(budgets)).astype(float)
    scores_b = (rng.random((400, budgets.size)) < curve(budgets - 1)).astype(float)  # the same, one doubling later
    tokens = np.tile(2**budgets, (400, 1))
    found = efficiency.compare_efficiency(scores_a, tokens, scores_b, tokens, target=0.5, seed=0)
    assert found.a.kind == found.b.kind == efficiency.EXACT
    assert found.log2_ratio_lo == pytest.approx(1.0, abs=0.3)  # one doubling, give or take its noise
    assert found.interval_lo < 1.0 < found.interval_hi


# --- harness compare on run directories ---------------------------------------------------------------------

def _run(directory: Path, correct: dict[int, list[bool]], problems: list[str] | None = None,
         text: str = "problem {}", fingerprint: str = "same") -> str:
    """A finished run as `harness compare` reads it: samples, curve, dataset record and problems."""
    out = directory / "outputs"
    out.mkdir(parents=True)
    problems = problems or [f"p{i}" for i in range(len(next(iter(correct.values()))))]
    rows = [{"problem_id": pid, "budget": budget, "sample": 0, "correct": ok, "completion_tokens": budget * 2,
             "status": "ok", "answer": "1" if ok else "2", "gold": "1"}
            for budget, flags in correct.items() for pid, ok in zip(problems, flags)]
    pd.DataFrame(rows).to_csv(out / "samples.csv", index=False)
    curve = [{"budget": b, "k": 1, "maj_at_k": float(np.mean(f)), "log2_tokens": math.log2(2 * b)}
             for b, f in correct.items()]
    pd.DataFrame(curve).to_csv(out / "curve.csv", index=False)
    (out / "dataset.json").write_text(json.dumps({"fingerprint": fingerprint, "problems": len(problems)}))
    (out / "problems.jsonl").write_text("".join(json.dumps({"id": p, "problem": text.format(p), "answer": "1"}) + "\n"
                                                for p in problems))
    return str(directory)


def test_compare_pairs_planted_runs_by_problem_and_writes_compare_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = {16: [True] * 5 + [False] * 25, 64: [True] * 10 + [False] * 20}
    better = {16: [True] * 5 + [False] * 25, 64: [True] * 22 + [False] * 8}  # twelve more at 64
    worse = {16: [False] * 30, 64: [True] * 10 + [False] * 20}
    runs = [_run(tmp_path / name, flags) for name, flags in (("a", base), ("b", better), ("c", worse))]
    assert main(["compare", *runs, "--label", "A", "--label", "B", "--label", "C"]) == 0
    report = json.loads(Path("outputs/compare.json").read_text())
    assert [(p["a"], p["b"]) for p in report["pairs"]] == [("A", "B"), ("A", "C")]
    ab = report["pairs"][0]
    assert ab["problems"] == 30
    at = {r["budget"]: r for r in ab["budgets"]}
    assert at[16]["delta"] == 0 and at[16]["problems_a_higher"] == at[16]["problems_b_higher"] == 0
    assert at[16]["p_value"] == 1.0
    assert at[64]["delta"] == pytest.approx(0.4) and (at[64]["problems_a_higher"], at[64]["problems_b_higher"]) == (0, 12)
    assert 0 < at[64]["lo"] < 0.4 < at[64]["hi"] and at[64]["p_value"] < 0.001
    assert at[64]["test"] == "Newcombe interval inverted"
    assert [r["tokens"] for r in ab["matched_spend"]] == [32.0, 128.0]
    eff = ab["efficiency"]
    assert eff["target"] == pytest.approx(1 / 3)  # A's best, the lower of the two
    assert eff["a"]["reached"] == "crossing" and eff["ratio"] is not None and eff["ratio"] < 1  # B needs fewer
    ac = report["pairs"][1]
    assert {r["budget"]: r["delta"] for r in ac["budgets"]} == {16: pytest.approx(-5 / 30, abs=1e-6), 64: 0}
    printed = capsys.readouterr().out.splitlines()
    out = printed[: printed.index('compare: B "C" - A "A" on 30 shared problems')]  # the first pair's lines
    assert out[0] == 'compare: B "B" - A "A" on 30 shared problems'
    assert out[1].split() == ["B", "-", "A", "at", "points", "95%", "CI", "p", "A", "higher", "B", "higher"]
    budget_64 = next(line for line in out if line.strip().startswith("budget 64"))
    assert budget_64.split()[2] == "+40.0" and budget_64.split()[-2:] == ["0", "12"]
    spends = [line.split("tokens")[0].strip() for line in out if "matched spend" in line]
    assert len(spends) == len(set(spends)) == 2  # each spend once
    assert all(len(line) <= 100 for line in out), out  # a table, not one long line
    assert printed.count(ROWS_KEY) == 1


def test_spends_that_print_as_the_same_number_of_tokens_are_one_row():
    """Runs that spent 67.6 and 68.3 tokens at their budgets once gave two rows "matched spend 68 tokens"."""
    from harness.compare import distinct_spends

    spends = distinct_spends([math.log2(t) for t in (68.3, 32.0, 67.6, 128.0)])
    assert [round(2**x, 1) for x in spends] == [32.0, 67.6, 128.0]


def test_compare_refuses_runs_that_share_no_problem_or_read_them_differently(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    flags = {16: [True, False, True]}
    a = _run(tmp_path / "a", flags)
    other = _run(tmp_path / "other", flags, problems=["q0", "q1", "q2"], fingerprint="different")
    assert main(["compare", a, other]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "share no problem" in err
    changed = _run(tmp_path / "changed", flags, text="another problem {}", fingerprint="different")
    assert main(["compare", a, changed]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "different datasets" in err and "p0" in err
    subset = _run(tmp_path / "subset", {16: [True, True]}, problems=["p0", "p1"], fingerprint="two only")
    assert main(["compare", a, subset]) == 0  # the same problems, fewer of them: paired on the two
    assert json.loads(Path("outputs/compare.json").read_text())["pairs"][0]["problems"] == 2


def test_a_single_budget_baseline_meets_every_budget_of_the_other_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    baseline = _run(tmp_path / "baseline", {64: [True] * 6 + [False] * 24})
    curve = _run(tmp_path / "curve", {16: [True] * 2 + [False] * 28, 64: [True] * 3 + [False] * 27,
                                      256: [True] * 9 + [False] * 21})
    assert main(["compare", baseline, curve]) == 0
    rows = json.loads(Path("outputs/compare.json").read_text())["pairs"][0]["budgets"]
    assert [(r["budget_a"], r["budget_b"]) for r in rows] == [(64, 16), (64, 64), (64, 256)]
    assert [r["delta"] for r in rows] == pytest.approx([-4 / 30, -3 / 30, 3 / 30], abs=1e-6)


def test_the_seeds_published_points_are_drawn_beside_a_run_without_an_interval(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr("harness.compare.COMPARE_JSON", tmp_path / "compare.json")
    monkeypatch.setattr("harness.compare.COMPARE_CSV", tmp_path / "compare.csv")
    monkeypatch.setattr("harness.compare.COMPARE_PNG", tmp_path / "compare.png")
    drawn = {}
    monkeypatch.setattr("harness.stages.plot._save", lambda fig, path: drawn.setdefault("figure", fig))
    assert main(["compare", "examples/reasoning-1.5b", "--reference", "seed-o1-mini"]) == 0
    reference = json.loads((tmp_path / "compare.json").read_text())["reference"]
    assert reference["name"] == "seed-o1-mini" and reference["aggregate_only"] is True
    ax = drawn["figure"].axes[0]
    (single,) = [line for line in ax.get_lines() if "published, aggregate only" in str(line.get_label())]
    assert single.get_markerfacecolor() == "white" and len(single.get_xdata()) == 8  # one answer, 16..2048
    assert list(single.get_ydata()) == pytest.approx([20.0, 26.667, 20.0, 43.333, 36.667, 40.0, 60.0, 53.333],
                                                      abs=1e-3)
    (votes,) = [line for line in ax.get_lines() if str(line.get_label()).endswith("majority vote")
                and "o1-mini" in str(line.get_label())]
    assert list(votes.get_ydata())[1:] == pytest.approx([53.333, 67.5, 70.0], abs=1e-3)  # maj@2, 4, 8 at 2048
    assert main(["compare", "examples/reasoning-1.5b", "--reference", "no-such-curve"]) == 2
