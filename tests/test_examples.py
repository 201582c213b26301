"""The committed examples (embedded-methods, think-tags, compute-optimal, reasoning-1.5b and its baseline) replay exactly.

Each run directory holds its params, its response store and its outputs. Replayed with
HARNESS_NO_REQUESTS=1 (a single missing response fails instead of starting the model), every output must
come back byte for byte, and the numbers the README and the closing note quote must hold.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from conftest import REPO

from harness.cli import main

EXAMPLES = REPO / "examples" / "embedded-methods"
RUNS = ("prompt", "cap", "forcing", "forcing_wait")
OUTPUTS = ("samples.csv", "curve.csv", "strategies.csv", "frontier.csv", "metrics.json", "calibration.csv", "calibration.json",
           "accuracy_vs_tokens.png", "requested_vs_actual.png", "regions.json", "report.html")
COMPUTE_OPTIMAL = REPO / "examples" / "compute-optimal"


THINK = REPO / "examples" / "think-tags" / "qwen3_wait"
# The 1.5B reasoning run: hours on 2 cores, filled in over two sessions through the store's resume.
# It is also its own DVC pipeline, replayed with `dvc repro` in tests/test_replay.py.
REASONING = REPO / "examples" / "reasoning-1.5b"
REPLAYED = [EXAMPLES / name for name in RUNS] + [THINK, COMPUTE_OPTIMAL, REASONING, REASONING / "baseline"]


@pytest.mark.pinned
@pytest.mark.parametrize("example", REPLAYED, ids=lambda path: path.relative_to(REPO / "examples").as_posix())
def test_every_example_replays_from_its_store_byte_for_byte(example, tmp_path, monkeypatch):
    where = example.relative_to(REPO / "examples")  # the whole example is copied: a run may read ../data
    shutil.copytree(REPO / "examples" / where.parts[0], tmp_path / where.parts[0],
                    ignore=shutil.ignore_patterns("outputs", "live.log"))
    run = tmp_path / where
    monkeypatch.chdir(run)
    monkeypatch.setenv("HARNESS_NO_REQUESTS", "1")
    assert main(["run"]) == 0
    for out in OUTPUTS:
        assert (run / "outputs" / out).read_bytes() == (example / "outputs" / out).read_bytes(), out


def test_the_think_tag_run_closed_the_thinking_at_exactly_the_budget_and_waited_where_it_ended_early():
    records = [json.loads(line) for line in (THINK / "store" / "calibrate.jsonl").read_text().splitlines()]
    thinking = [r for r in records if not r["request"]["prompt"].endswith("\\boxed{")]
    answers = [r for r in records if r["request"]["prompt"].endswith("\\boxed{")]
    assert all(r["request"]["stop"] == ["</think>"] for r in thinking)
    assert all(r["request"]["prompt"].count("</think>") == 1 for r in answers)
    assert all("\n</think>\n\nFinal answer: \\boxed{" in r["request"]["prompt"] for r in answers)
    waited = [r for r in thinking if r["request"]["prompt"].endswith("\nWait,")]
    assert len(waited) >= 2
    samples = pd.read_csv(THINK / "outputs" / "samples.csv")
    assert (samples["reasoning_count"] == "requests").all()
    assert (samples["reasoning_tokens"] == samples["budget"]).all()  # cut at B, or extended by Wait to B
    assert (samples[samples["budget"] == 256]["requests"] >= 3).sum() == 3  # three thought again after Wait
    # a correct \boxed{} inside the thinking is not the answer: graded on what follows </think>
    drafted = samples[samples["problem_id"] == "chain_sum-2"].set_index("budget").loc[256]
    assert (str(drafted["answer"]), bool(drafted["correct"])) == ("12", False)


def _samples(name: str) -> pd.DataFrame:
    return pd.read_csv(EXAMPLES / name / "outputs" / "samples.csv")


def test_forcing_with_wait_spends_at_least_90_percent_of_budgets_above_the_natural_length():
    natural = _samples("forcing").groupby("budget")["completion_tokens"].mean()
    above = [b for b in natural.index if natural[b] < 0.9 * b]  # forcing alone stops short of these
    assert above, "the comparison needs budgets above the model's natural length"
    waited = _samples("forcing_wait")
    for budget in above:
        used = waited[waited["budget"] == budget]["completion_tokens"]
        assert used.mean() >= 0.9 * budget, (budget, used.mean())


def test_the_comparison_figure_has_every_method():
    table = pd.read_csv(EXAMPLES / "outputs" / "compare.csv")
    methods = {json.loads((EXAMPLES / n / "outputs" / "calibration.json").read_text())["method"] for n in RUNS}
    assert methods == {"prompt", "cap", "forcing"}
    assert table["run"].nunique() == len(RUNS)


def test_the_methods_readme_quotes_the_differences_their_pairing_establishes():
    """compare.json pairs every method with the seed's prompt on the same 12 problems; the README names the
    differences whose 95% interval excludes zero, and only those."""
    report = json.loads((EXAMPLES / "outputs" / "compare.json").read_text(encoding="utf-8"))
    assert [p["b"] for p in report["pairs"]] == ["cap (max_tokens)", "forcing", "forcing + Wait"]
    established = [(p["b"], r["budget"], r) for p in report["pairs"] for r in p["budgets"]
                   if r["lo"] > 0 or r["hi"] < 0]
    assert [(b, budget) for b, budget, _ in established] == [("cap (max_tokens)", 256), ("cap (max_tokens)", 512)]
    flat = " ".join((EXAMPLES / "README.md").read_text(encoding="utf-8").split())
    for _, _, r in established:
        assert f"{100 * r['delta']:+.1f}" in flat and f"{100 * r['lo']:+.1f} to {100 * r['hi']:+.1f}" in flat
        assert r["p_value"] < 0.05 and f"{r['p_value']:.3f}" in flat  # the interval's own p-value agrees


def test_the_compute_optimal_grid_is_what_its_readme_says():
    """30 problems, a pool of at least 8 at every budget, every k up to it, and the crossover the README
    quotes is the one in metrics.json."""
    samples = pd.read_csv(COMPUTE_OPTIMAL / "outputs" / "samples.csv")
    assert samples["problem_id"].nunique() == 30
    pools = samples.groupby(["budget", "problem_id"])["sample"].nunique()
    assert pools.min() >= 8
    curve = pd.read_csv(COMPUTE_OPTIMAL / "outputs" / "curve.csv")
    assert {b: sorted(g["k"]) for b, g in curve.groupby("budget")} == {
        b: [1, 2, 4, 8] for b in sorted(samples["budget"].unique())}
    crossing = json.loads((COMPUTE_OPTIMAL / "outputs" / "metrics.json").read_text())["crossover"]
    readme = " ".join((COMPUTE_OPTIMAL / "README.md").read_text().split())
    assert f"{crossing['replicates_with_crossover']:.1%}" in readme
    if crossing["tokens"] is not None:
        assert f"{crossing['tokens']:.0f} tokens" in readme
    front = pd.read_csv(COMPUTE_OPTIMAL / "outputs" / "frontier.csv")
    assert f"The frontier (green step, {len(front)} points)" in readme
    for _, rule in front[front["rule"] != "fixed"].iterrows():
        assert f"{rule['maj_at_k']:.1%} at {rule['mean_tokens']:,.0f} tokens" in readme or (
            f"({rule['maj_at_k']:.1%} at {rule['mean_tokens']:,.0f})" in readme), rule["rule"]


def test_the_reasoning_run_is_the_grid_its_readme_describes(monkeypatch):
    """examples/reasoning-1.5b: the 1.5B embedded model as a prompted thinker on its 30 committed
    problems, one sample at 32...512 and a pool of 4 at 1024, every sample answered; the thinking is the
    budget exactly in every sample (cut there, or extended to it by Wait: the README says so); and the
    accuracies, the law and the crossover sentence the README quotes are the ones in the outputs."""
    from harness.params import load_params

    monkeypatch.chdir(REASONING)  # its data.source is relative to the run directory, as for `harness run`
    params = load_params("params.yaml")
    assert (params.model.name, params.model.chat_template) == ("qwen2.5-coder-1.5b-instruct", "chatml-think")
    assert params.budgets.requested == [32, 64, 128, 256, 512, 1024] and params.budgets.wait
    assert params.sampling.logprobs
    samples = pd.read_csv(REASONING / "outputs" / "samples.csv")
    assert samples["problem_id"].nunique() == 30 and (samples["status"] == "ok").all()
    pools = samples.groupby(["budget", "problem_id"])["sample"].nunique()
    assert pools.drop(1024, level="budget").eq(1).all() and pools.loc[1024].eq(4).all()
    assert (samples["reasoning_count"] == "requests").all()
    assert (samples["reasoning_tokens"] == samples["budget"]).all()
    readme = (REASONING / "README.md").read_text(encoding="utf-8")
    assert "in progress" not in readme.splitlines()[0]
    assert "outputs/" not in (REASONING / ".gitignore").read_text(encoding="utf-8").split()
    flat = " ".join(readme.split())
    curve = pd.read_csv(REASONING / "outputs" / "curve.csv").set_index(["budget", "k"])
    for budget in params.budgets.requested:
        assert f"| {budget} | {curve.loc[(budget, 1), 'maj_at_k']:.1%} |" in flat, budget
    assert f"{curve.loc[(1024, 4), 'maj_at_k']:.1%}" in flat
    metrics = json.loads((REASONING / "outputs" / "metrics.json").read_text(encoding="utf-8"))
    assert " ".join(metrics["crossover"]["statement"].split()) in flat
    law = metrics["law"]
    assert not law["identified"] and law["reason"].startswith("the fitted rise (log2 tokens 12.2 to 24.3) lies mostly")
    assert "not printed" in flat and "2^12.2 and 2^24.3 tokens" in flat
    baseline = pd.read_csv(REASONING / "baseline" / "outputs" / "curve.csv")
    assert len(baseline) == 1 and f"| {baseline['maj_at_k'].iloc[0]:.1%} |" in flat


def test_the_reasoning_readme_quotes_its_paired_comparison_with_the_baseline(tmp_path, monkeypatch):
    """The README's paired table is outputs/compare.json, and the command it gives writes that very file
    (and the figure with the seed's points) again, byte for byte."""
    report = json.loads((REASONING / "outputs" / "compare.json").read_text(encoding="utf-8"))
    (pair,) = report["pairs"]
    assert pair["problems"] == 30 and report["reference"]["name"] == "seed-o1-mini"
    flat = " ".join((REASONING / "README.md").read_text(encoding="utf-8").split())
    rows = {(r["budget_a"], r["budget_b"]): r for r in pair["budgets"]}
    for row in (rows[(1024, 512)], rows[(1024, 1024)], pair["matched_spend"][0]):
        interval = f"{100 * row['lo']:+.1f} to {100 * row['hi']:+.1f}".replace("-", "−")
        assert f"{100 * row['delta']:+.1f} points | {interval} |".replace("-", "−") in flat, row
        assert f"{row['problems_a_higher']} / {row['problems_b_higher']} |" in flat
        assert f"| {row['p_value']:.2f} |" in flat
    assert pair["efficiency"]["ratio_bound"] == ">= 1.62" and "at least 1.6 times" in flat
    shutil.copytree(REASONING, tmp_path / "run", symlinks=True, ignore=shutil.ignore_patterns("store", "live.log"))
    monkeypatch.chdir(tmp_path / "run")
    (tmp_path / "run" / "harness").unlink()  # the package is imported, not the link
    (tmp_path / "run" / "data" / "references").unlink()  # a link to the repository's data/references
    shutil.copytree(REPO / "data" / "references", tmp_path / "run" / "data" / "references")
    for name in ("compare.json", "compare.csv", "compare.png"):
        (tmp_path / "run" / "outputs" / name).unlink()
    assert main(["compare", "baseline", ".", "--label", "baseline: own template, cap 1024",
                 "--label", "prompted thinking, forced", "--reference", "seed-o1-mini"]) == 0
    for name in ("compare.json", "compare.csv", "compare.png"):
        assert (tmp_path / "run" / "outputs" / name).read_bytes() == (REASONING / "outputs" / name).read_bytes(), name


def test_the_reasoning_pipeline_is_the_root_pipeline_run_in_its_own_dvc_project():
    """`cd examples/reasoning-1.5b && dvc repro` runs the very stages of the root dvc.yaml (same commands,
    deps, params, outputs and plots) in a DVC project of its own (`dvc init --subdir`), whose `harness` is
    a link to the package: its stages depend on the code as the root's do. A stage changed at the root and
    not here would make the example's replay a different pipeline; as part of the root project, its metrics
    and params would rename the root's `dvc exp show` columns (users' scripts read them)."""
    import yaml

    root = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    example = yaml.safe_load((REASONING / "dvc.yaml").read_text(encoding="utf-8"))
    assert example == root
    assert (REASONING / "harness").is_symlink() and (REASONING / "harness").resolve() == REPO / "harness"
    assert (REASONING / ".dvc" / "config").is_file()  # its own project: the root's dvc never collects it


NATIVE = REPO / "examples" / "native-thinking"


def test_the_native_thinking_run_is_what_its_readme_says(monkeypatch):
    """examples/native-thinking: the 1.5B model with llama.cpp's own budget on the forcing run's 30
    problems; every thinking count from the server's tokenizer and within its budget; the accuracies and
    the paired comparison its README quotes are the ones in its outputs."""
    from harness.params import load_params

    monkeypatch.chdir(NATIVE)
    params = load_params("params.yaml")
    assert (params.budgets.method, params.budgets.thinking_preset) == ("thinking", "llamacpp")
    assert params.model.name == "qwen2.5-coder-1.5b-instruct" and params.data.limit == 30
    samples = pd.read_csv(NATIVE / "outputs" / "samples.csv")
    forced = pd.read_csv(REASONING / "outputs" / "samples.csv")
    assert set(samples["problem_id"]) == set(forced["problem_id"])
    assert (samples["reasoning_count"] == "tokenize").all()
    assert (samples["reasoning_tokens"] <= samples["budget"]).all()
    flat = " ".join((NATIVE / "README.md").read_text(encoding="utf-8").split())
    curve = pd.read_csv(NATIVE / "outputs" / "curve.csv").set_index("budget")
    for budget in params.budgets.requested:
        assert f"| {budget} | " in flat and f"{curve.loc[budget, 'maj_at_k']:.1%}" in flat
    pair = json.loads((NATIVE / "outputs" / "compare.json").read_text(encoding="utf-8"))["pairs"][0]
    for row in pair["budgets"]:
        interval = f"{100 * row['lo']:+.1f} to {100 * row['hi']:+.1f}".replace("-", "−")
        assert interval in flat, row
