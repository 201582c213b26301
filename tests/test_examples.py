"""The committed examples on the embedded model (examples/embedded-methods, examples/compute-optimal) replay exactly.

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
OUTPUTS = ("samples.csv", "curve.csv", "frontier.csv", "metrics.json", "calibration.csv", "calibration.json",
           "accuracy_vs_tokens.png", "requested_vs_actual.png", "regions.json")
COMPUTE_OPTIMAL = REPO / "examples" / "compute-optimal"


THINK = REPO / "examples" / "think-tags" / "qwen3_wait"
# The 1.5B reasoning run takes hours on 2 cores and is filled in over several sessions (its store resumes):
# it is replayed from the moment its outputs are committed; until then it is checked as what it is, a run
# in progress (test_the_run_in_progress_says_so_and_its_partial_store_is_sound), never replayed half-done.
REASONING = REPO / "examples" / "reasoning-1.5b"
REPLAYED = [EXAMPLES / name for name in RUNS] + [THINK, COMPUTE_OPTIMAL] + (
    [REASONING] if (REASONING / "outputs" / "metrics.json").exists() else [])


@pytest.mark.pinned
@pytest.mark.parametrize("example", REPLAYED, ids=lambda path: path.relative_to(REPO / "examples").as_posix())
def test_every_example_replays_from_its_store_byte_for_byte(example, tmp_path, monkeypatch):
    run = tmp_path / example.name
    shutil.copytree(example, run, ignore=shutil.ignore_patterns("outputs"))
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


def test_the_run_in_progress_says_so_and_its_partial_store_is_sound(monkeypatch):
    """examples/reasoning-1.5b before its outputs are committed: its params are a valid run of the 1.5B
    embedded model on its committed problems, its README says it is in progress, no output is committed
    half-done, and every committed store line is a whole record of this run's model (the next session
    resumes from it). Once outputs/metrics.json is committed it is replayed byte for byte above, and its
    README must no longer say "in progress"."""
    from harness.params import load_params

    monkeypatch.chdir(REASONING)  # its data.source is relative to the run directory, as for `harness run`
    params = load_params("params.yaml")
    assert (params.model.name, params.model.chat_template) == ("qwen2.5-coder-1.5b-instruct", "chatml-think")
    assert (REASONING / params.data.source).is_file()
    assert params.budgets.requested[0] == 32 and params.budgets.wait and params.sampling.logprobs
    finished = (REASONING / "outputs" / "metrics.json").exists()
    status = (REASONING / "README.md").read_text().splitlines()[0]
    assert ("in progress" in status) is not finished, status
    if not finished:
        assert not (REASONING / "outputs" / "samples.csv").exists()
    for shard in sorted((REASONING / "store").glob("*.jsonl")):
        for line in shard.read_text().splitlines():
            record = json.loads(line)
            assert record["request"]["model"] == params.model.name and "key" in record
