"""DVC experiments and plots on a copy of this repository, served entirely by the committed store.

`dvc exp run -S budgets.requested=[32,64,128,256] -S sampling.samples=1` asks only for responses the
committed store holds (a subset of budgets, sample 0 of each, the same vote pool at 256), and runs with
HARNESS_NO_REQUESTS=1, so it can never start a model. Its metrics must appear in `dvc exp show` and differ
from the baseline's; `dvc params diff` must show the two changed params; `dvc plots show` / `dvc plots
diff` must render both plots from the committed offline template (no script loaded from the network).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from conftest import REPO
from gitrepo import copy_repo, run

# the module-scoped repositories below are built once: its tests stay on one xdist worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("experiments")

EXP = "fewer-budgets"
BUDGETS = [32, 64, 128, 256]
# The README's concise view: changed columns only, without dependency-hash columns.
CONCISE = ["--only-changed", "--drop", r"harness/.*|store/.*|outputs/[a-z_]+\.(csv|jsonl|json)"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("experiments") / "repo")
    run("dvc", "exp", "run", "-n", EXP, "-S", f"budgets.requested={json.dumps(BUDGETS)}", "-S", "sampling.samples=1",
        cwd=repo)
    return repo


def _exp_show(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json` as {name: data} for the baseline (`main`) and every experiment."""
    rows = {}
    for entry in json.loads(run("dvc", "exp", "show", "--json", cwd=repo)):
        if entry["rev"] != "workspace":
            rows["main"] = entry["data"]
        for exp in entry.get("experiments") or []:
            for rev in exp["revs"]:
                rows[rev["name"]] = rev["data"]
    return rows


def _without_nulls(value):
    """metrics.json says a value does not exist with null (and a reason next to it); DVC leaves nulls out."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def test_exp_run_changes_params_and_its_metrics_appear_in_exp_show(repo):
    rows = _exp_show(repo)
    assert EXP in rows, f"experiment missing from dvc exp show: {sorted(rows)}"
    base, exp = rows["main"], rows[EXP]
    assert exp["params"]["params.yaml"]["data"]["budgets"]["requested"] == BUDGETS
    assert exp["params"]["params.yaml"]["data"]["sampling"]["samples"] == 1

    committed = json.loads((REPO / "outputs" / "metrics.json").read_text())
    base_metrics = base["metrics"]["outputs/metrics.json"]["data"]
    exp_metrics = exp["metrics"]["outputs/metrics.json"]["data"]
    assert base_metrics == _without_nulls(committed)
    problems = json.loads((REPO / "outputs" / "dataset.json").read_text())["problems"]
    vote_samples = base["params"]["params.yaml"]["data"]["sampling"]["vote_samples"]
    assert exp_metrics["samples"] == problems * (len(BUDGETS) - 1) + problems * vote_samples
    assert sorted(exp_metrics["accuracy_by_budget"], key=int) == [str(b) for b in BUDGETS]
    calibration = exp["metrics"]["outputs/calibration.json"]["data"]
    assert calibration["controllable_range"]["from"] == BUDGETS[0]


def test_exp_show_has_meaningful_columns(repo):
    header = next(csv.reader(io.StringIO(run("dvc", "exp", "show", "--csv", cwd=repo))))
    for column in ("best_accuracy", "samples", "total_completion_tokens", "accuracy_by_budget.256",
                   "controllable_range.from", "budgets.requested", "sampling.samples", "model.name"):
        assert column in header, f"{column} not in dvc exp show: {header}"

    concise = next(csv.reader(io.StringIO(run("dvc", "exp", "show", "--csv", *CONCISE, cwd=repo))))
    # columns whose values the experiment must change (fewer samples, fewer tokens, budget 16 gone); an
    # accuracy that happens to come out equal is hidden by --only-changed, so none is named here
    assert {"budgets.requested", "sampling.samples", "samples", "total_completion_tokens"} <= set(concise), concise
    assert any(c.startswith("accuracy_by_budget.") for c in concise), concise
    assert not [c for c in concise if c.startswith(("harness/", "store/"))], concise
    assert "model.name" not in concise  # unchanged: hidden by --only-changed


def test_params_and_metrics_diff(repo):
    params = json.loads(run("dvc", "params", "diff", "--json", cwd=repo))["params.yaml"]
    assert set(params) == {"budgets.requested", "sampling.samples"}, params
    assert params["budgets.requested"]["new"] == str(BUDGETS)  # DVC shows list params as text
    assert (params["sampling.samples"]["old"], params["sampling.samples"]["new"]) == (2, 1)
    metrics = json.loads(run("dvc", "metrics", "diff", "--json", cwd=repo))["outputs/metrics.json"]
    assert metrics["samples"]["new"] < metrics["samples"]["old"]


def _check_offline_page(page: Path, revisions: list[str]) -> str:
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", html), "the plots page must not load scripts from anywhere"
    assert "vegaEmbed" in html and "vega-lite" in html, "vega, vega-lite and vega-embed must be inlined"
    assert "Generated by scripts/build-plots-template" in html, "plots.html_template is not the offline one"
    for plot in ("accuracy_vs_tokens", "requested_vs_actual"):
        assert plot in html, f"plot {plot} missing from {page}"
    assert "maj_at_k" in html and "mean_tokens" in html, "the vega specs carry no data"
    for rev in revisions:
        assert rev in html
    return html


def test_plots_show_renders_offline(repo, tmp_path):
    run("dvc", "plots", "show", "-o", str(tmp_path / "show"), cwd=repo)
    _check_offline_page(tmp_path / "show" / "index.html", ["workspace"])
    images = sorted(p.name for p in (tmp_path / "show" / "static").iterdir())
    assert images == ["workspace_outputs_accuracy_vs_tokens.png", "workspace_outputs_requested_vs_actual.png",
                      "workspace_outputs_thinking_tokens.png"]


def test_plots_diff_renders_both_revisions_offline(repo, tmp_path):
    run("dvc", "plots", "diff", "main", EXP, "-o", str(tmp_path / "diff"), cwd=repo)
    _check_offline_page(tmp_path / "diff" / "index.html", ["main", EXP])
