"""`harness compare RUN...`: several finished runs (methods, models) on one accuracy-vs-tokens figure.

A RUN is a project directory (its `params.yaml` names the model and method; its `outputs/curve.csv`
holds the points), or a `curve.csv` file directly. Each run contributes its single-sample curve over
budgets and its majority-vote curve at the largest budget; a run directory with
`outputs/calibration.csv` also contributes its requested-vs-used tokens (second panel; token budgets
only, since effort levels have no requested number). Output: `outputs/compare.png` and
`outputs/compare.csv` (the points, labelled), both deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from .budget_axis import largest
from .files import COMPARE_CSV, COMPARE_PNG, write_csv


class CompareError(ValueError):
    """A run given to `harness compare` has no curve to show."""


def run_label(path: Path) -> str:
    """model / method / dataset from the run's params.yaml (the directory name if there is none)."""
    params = path / "params.yaml"
    if not params.is_file():
        return path.name
    raw = yaml.safe_load(params.read_text(encoding="utf-8")) or {}
    model = (raw.get("model") or {}).get("name", "?")
    method = (raw.get("budgets") or {}).get("method", "?")
    source = (raw.get("data") or {}).get("source", "?")
    return f"{model} · {method} · {source}"


def load_run(arg: str) -> pd.DataFrame:
    path = Path(arg)
    curve = path if path.suffix == ".csv" else path / "outputs" / "curve.csv"
    if not curve.is_file():
        raise CompareError(f"{arg}: no curve at {curve}; run the pipeline there first (harness run / dvc repro)")
    table = pd.read_csv(curve)
    missing = {"budget", "k", "maj_at_k", "log2_tokens"} - set(table.columns)
    if missing:
        raise CompareError(f"{curve}: not a curve table (missing {', '.join(sorted(missing))})")
    label = run_label(path if path.is_dir() else path.parent.parent)
    vote_budget = largest(table["budget"])
    table = table.assign(run=label, series=["vote" if b == vote_budget and k > 1 else "budget"
                                            for b, k in zip(table["budget"], table["k"])])
    return table[(table["k"] == 1) | (table["budget"] == vote_budget)]


def load_calibration(arg: str, label: str) -> pd.DataFrame | None:
    """The run's requested-vs-used table, when it is a run directory with token budgets."""
    path = Path(arg) / "outputs" / "calibration.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if not pd.api.types.is_numeric_dtype(table["budget"]):
        return None
    return table.assign(run=label)[["run", "budget", "mean_tokens", "p10_tokens", "p90_tokens"]]


def calibrations(runs: list[str], table: pd.DataFrame) -> pd.DataFrame:
    labels = list(dict.fromkeys(table["run"]))  # in run order, after any --label
    found = [load_calibration(run, label) for run, label in zip(runs, labels)]
    frames = [f for f in found if f is not None]
    columns = ["run", "budget", "mean_tokens", "p10_tokens", "p90_tokens"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def compare(runs: list[str], labels: list[str] | None = None) -> pd.DataFrame:
    if not runs:
        raise CompareError("compare: name at least one run directory (or curve.csv)")
    tables = [load_run(r) for r in runs]
    if labels:
        if len(labels) != len(runs):
            raise CompareError(f"compare: {len(labels)} labels for {len(runs)} runs")
        tables = [t.assign(run=label) for t, label in zip(tables, labels)]
    return pd.concat(tables, ignore_index=True)


def run(runs: list[str], labels: list[str] | None = None) -> None:
    from .plot import save_comparison  # matplotlib only where figures are drawn

    table = compare(runs, labels)
    write_csv(COMPARE_CSV, table[["run", "series", "budget", "k", "maj_at_k", "log2_tokens"]])
    save_comparison(table, calibrations(runs, table), COMPARE_PNG)
    print(f"compare: {table['run'].nunique()} runs -> {COMPARE_PNG}, {COMPARE_CSV}")
