"""`harness compare RUN...`: several finished runs on one figure, and which is better, by how much.

A RUN is a project directory (its `params.yaml` names the model and method; `outputs/` holds its
curve, its sample table and its dataset record), or a `curve.csv` file directly. Each run contributes its
single-sample curve over budgets and its majority-vote curve at the largest budget; a run directory with
`outputs/calibration.csv` also contributes its requested-vs-used tokens.

Runs with sample tables are **paired** by `problem_id`: the first run is the reference A and every other
run B is compared with it (A-B, A-C, ...) on the problems both answered, the problem being the unit:
- at every budget both ran (a run with one budget, such as a baseline without thinking, is compared with
  every budget of the other): B - A with its interval, the p-value of that interval (harness/analysis/
  paired.py: below 0.05 exactly when the interval leaves out 0) and on how many problems each run
  scores higher;
- at matched spend: each run's single-sample curve read on log2 of the tokens it really used, at every
  spend either run measured inside both runs' range;
- efficiency: the tokens each run needs to reach an accuracy, and their ratio (harness/analysis/efficiency.py).
Runs whose shared problems read differently (text or gold answer) are refused, as are runs that share
none. A published reference (`--reference seed-o1-mini`: data/references/) is drawn beside the runs,
with no interval and no test: it has no per-problem data.

Outputs: `outputs/compare.png`, `outputs/compare.csv` (the points, labelled), `outputs/compare.json` (the
pairs), all deterministic.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .analysis import efficiency, paired
from .budget_axis import Budget, as_budget, budget_rank, largest
from .files import COMPARE_CSV, COMPARE_JSON, COMPARE_PNG, write_csv, write_json
from .interop.rundir import PROVENANCE_FILE as IMPORTED

REFERENCES = Path("data") / "references"
MATCHED_SPEND_RULE = ("each run's single-sample curve (k = 1) on the shared problems, every problem's accuracy read "
                      "by straight lines in log2 of the run's mean tokens between its two measured budgets around "
                      "the spend; spends: every budget's tokens of either run inside both runs' range")
EFFICIENCY_RULE = ("tokens each run's single-sample curve, made non-decreasing and read by straight lines in log2 "
                   "tokens, needs to reach the target (default: the lower of the two runs' best single-sample "
                   "accuracy); ratio = B / A; interval: paired bootstrap over problems, open where a run does not "
                   "reach the target (harness/analysis/efficiency.py)")


class CompareError(ValueError):
    """A run given to `harness compare` cannot be shown or paired; the message says why."""


@dataclass(frozen=True)
class Run:
    arg: str
    label: str
    curve: pd.DataFrame  # the figure's rows: k = 1 at every budget, and the votes at the largest budget
    samples: pd.DataFrame | None  # answered samples: problem_id, budget, correct (0/1), tokens; None: no table
    dataset: dict[str, Any]
    problems: dict[str, str]  # problem_id -> sha256 of its text and gold answer ({}: no problems.jsonl)
    answers: dict[str, str]  # problem_id -> its gold answer, as the run graded it
    imported: bool  # made by `harness import` (imported.json): its problem text is the other tool's prompt


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


def _directory(arg: str) -> Path:
    path = Path(arg)
    return path.parent.parent if path.suffix == ".csv" else path


def load_run(arg: str) -> pd.DataFrame:
    """The run's curve rows the figure draws, labelled by run and series."""
    path = Path(arg)
    curve = path if path.suffix == ".csv" else path / "outputs" / "curve.csv"
    if not curve.is_file():
        raise CompareError(f"{arg}: no curve at {curve}; run the pipeline there first (harness run / dvc repro)")
    table = pd.read_csv(curve)
    missing = {"budget", "k", "maj_at_k", "log2_tokens"} - set(table.columns)
    if missing:
        raise CompareError(f"{curve}: not a curve table (missing {', '.join(sorted(missing))})")
    label = run_label(_directory(arg))
    vote_budget = largest(table["budget"])
    table = table.assign(run=label, series=["vote" if b == vote_budget and k > 1 else "budget"
                                            for b, k in zip(table["budget"], table["k"])])
    return table[(table["k"] == 1) | (table["budget"] == vote_budget)]


def answered_samples(path: Path) -> pd.DataFrame | None:
    """The run's sample table reduced to what pairing needs, failed samples left out (never scored)."""
    table = path / "outputs" / "samples.csv"
    if not table.is_file():
        return None
    raw = pd.read_csv(table, dtype={"problem_id": str}, keep_default_na=False, na_values=[""])
    raw = raw[~raw["status"].astype(str).str.startswith("failed")]
    correct = raw["correct"].map(lambda v: v is True or str(v).strip().lower() in {"true", "1", "1.0"})
    return pd.DataFrame({"problem_id": raw["problem_id"].astype(str),
                         "budget": raw["budget"].map(as_budget),
                         "correct": correct.astype(float),
                         "tokens": pd.to_numeric(raw["completion_tokens"], errors="coerce")})


def problem_digests(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """problem_id -> sha256 of the problem's text and gold answer, and problem_id -> gold answer, from
    outputs/problems.jsonl."""
    table = path / "outputs" / "problems.jsonl"
    if not table.is_file():
        return {}, {}
    digests, answers = {}, {}
    for line in table.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            text = json.dumps([row.get("problem"), row.get("answer")], ensure_ascii=False)
            digests[str(row["id"])] = hashlib.sha256(text.encode("utf-8")).hexdigest()
            answers[str(row["id"])] = str(row.get("answer"))
    return digests, answers


def load(arg: str, label: str | None = None) -> Run:
    curve = load_run(arg)
    path = _directory(arg)
    if label:
        curve = curve.assign(run=label)
    dataset_file = path / "outputs" / "dataset.json"
    dataset = json.loads(dataset_file.read_text(encoding="utf-8")) if dataset_file.is_file() else {}
    digests, answers = problem_digests(path)
    return Run(arg, str(curve["run"].iloc[0]), curve, answered_samples(path), dataset, digests, answers,
               (path / IMPORTED).is_file())


def load_calibration(arg: str, label: str) -> pd.DataFrame | None:
    """The run's requested-vs-used table, when it is a run directory with token budgets."""
    path = Path(arg) / "outputs" / "calibration.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if not pd.api.types.is_numeric_dtype(table["budget"]):
        return None
    return table.assign(run=label)[["run", "budget", "mean_tokens", "p10_tokens", "p90_tokens"]]


def calibrations(runs: list[Run]) -> pd.DataFrame:
    found = [load_calibration(run.arg, run.label) for run in runs]
    frames = [f for f in found if f is not None]
    columns = ["run", "budget", "mean_tokens", "p10_tokens", "p90_tokens"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# --- pairing -------------------------------------------------------------------------------------------

def shared_problems(a: Run, b: Run) -> list[str]:
    """The problems both runs answered, after checking they are the same problems: refused, in one line,
    when they share none, or when a shared problem's text or gold answer differs between the runs."""
    assert a.samples is not None and b.samples is not None
    shared = sorted(set(a.samples["problem_id"]) & set(b.samples["problem_id"]))
    if not shared:
        raise CompareError(f"compare: {a.label} and {b.label} share no problem (problem_id): nothing to pair; "
                           "compare runs of the same dataset")
    if a.dataset.get("fingerprint") and a.dataset.get("fingerprint") == b.dataset.get("fingerprint"):
        return shared
    if not (a.problems and b.problems):
        raise CompareError(f"compare: {a.label} and {b.label} have different datasets (sha256 "
                           f"{str(a.dataset.get('fingerprint'))[:12]} vs {str(b.dataset.get('fingerprint'))[:12]}) "
                           "and no outputs/problems.jsonl to check their shared problems: rerun `harness fetch`")
    if a.imported or b.imported:  # another tool's prompt is not our problem text: the gold answers must agree
        differ = [p for p in shared if a.answers.get(p) != b.answers.get(p)]
        if differ:
            raise CompareError(f"compare: {a.label} and {b.label}: {len(differ)} of the {len(shared)} shared problem "
                               f"ids have different gold answers, e.g. {differ[0]}; the ids must name the same "
                               "problems (docs/interop.md, comparing across tools)")
        return shared
    differ = [p for p in shared if a.problems.get(p) != b.problems.get(p)]
    if differ:
        raise CompareError(f"compare: {a.label} and {b.label} have different datasets: {len(differ)} of the "
                           f"{len(shared)} shared problem ids read differently (text or gold answer), e.g. "
                           f"{differ[0]}; pair runs of the same dataset")
    return shared


def per_problem(samples: pd.DataFrame, problems: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each problem's accuracy and mean tokens at each budget (its samples averaged first: the problem is
    the unit), rows `problems`, columns budgets in budget order; NaN where a problem has no answer there."""
    table = samples[samples["problem_id"].isin(problems)]
    budgets = sorted(table["budget"].unique(), key=budget_rank)
    grouped = table.groupby(["problem_id", "budget"])
    scores = grouped["correct"].mean().unstack("budget").reindex(index=problems, columns=budgets)
    tokens = grouped["tokens"].mean().unstack("budget").reindex(index=problems, columns=budgets)
    return scores, tokens


def _num(v: float | None, digits: int = 6) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def _difference(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    found = paired.compare_scores(a, b)
    return {"problems": found.problems, "a_accuracy": _num(found.a), "b_accuracy": _num(found.b),
            "delta": _num(found.delta), "lo": _num(found.lo), "hi": _num(found.hi),
            "p_value": _num(found.p_value), "test": found.test,
            "problems_a_higher": found.higher[0], "problems_b_higher": found.higher[1]}


def budget_pairs(a_budgets: list[Budget], b_budgets: list[Budget]) -> list[tuple[Budget, Budget]]:
    """Which budget of A meets which of B: every budget both ran; a run with a single budget (a baseline)
    meets every budget of the other."""
    if len(a_budgets) == 1 and len(b_budgets) > 1:
        return [(a_budgets[0], b) for b in b_budgets]
    if len(b_budgets) == 1 and len(a_budgets) > 1:
        return [(a, b_budgets[0]) for a in a_budgets]
    return [(x, x) for x in a_budgets if x in b_budgets]


def by_budget(scores_a: pd.DataFrame, tokens_a: pd.DataFrame, scores_b: pd.DataFrame, tokens_b: pd.DataFrame
              ) -> list[dict[str, Any]]:
    """B - A at every budget pair (budget_pairs), on the problems both answered there, with the mean
    tokens each run spent on them."""
    rows = []
    for budget_a, budget_b in budget_pairs(list(scores_a.columns), list(scores_b.columns)):
        both = scores_a[budget_a].notna() & scores_b[budget_b].notna()
        if int(both.sum()) == 0:
            continue
        budget = budget_b if len(scores_a.columns) == 1 else budget_a
        spent = [float(t[b][both].mean()) for t, b in ((tokens_a, budget_a), (tokens_b, budget_b))]
        rows.append({"budget": budget, "budget_a": budget_a, "budget_b": budget_b,
                     "a_log2_tokens": _num(math.log2(spent[0]), 4) if spent[0] > 0 else None,
                     "b_log2_tokens": _num(math.log2(spent[1]), 4) if spent[1] > 0 else None,
                     **_difference(scores_a[budget_a][both].to_numpy(), scores_b[budget_b][both].to_numpy())})
    return rows


def read_at(scores: pd.DataFrame, spend_x: np.ndarray, x: float) -> np.ndarray:
    """Every problem's accuracy at log2 spend x, by straight lines between the run's budgets around it
    (spend_x: the run's log2 mean tokens per budget, increasing)."""
    values = scores.to_numpy(dtype=float)
    if x <= spend_x[0]:
        return values[:, 0]
    upper = int(np.searchsorted(spend_x, x, side="left"))
    if upper >= len(spend_x) or spend_x[upper] == x:
        return values[:, min(upper, len(spend_x) - 1)]
    w = (x - spend_x[upper - 1]) / (spend_x[upper] - spend_x[upper - 1])
    return (1 - w) * values[:, upper - 1] + w * values[:, upper]


def _spend_axis(scores: pd.DataFrame, tokens: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The run's budgets in order of the tokens they used on these problems, and those log2 spends."""
    x = np.log2(tokens.mean(axis=0).to_numpy(dtype=float))
    order = np.argsort(x, kind="stable")
    return scores.iloc[:, order], x[order]


def matched_spend(scores_a: pd.DataFrame, tokens_a: pd.DataFrame, scores_b: pd.DataFrame, tokens_b: pd.DataFrame,
                  ) -> list[dict[str, Any]]:
    """B - A at every spend either run measured inside both runs' range (problems complete in both)."""
    complete = scores_a.notna().all(axis=1) & scores_b.notna().all(axis=1)
    if int(complete.sum()) < 1:
        return []
    sa, xa = _spend_axis(scores_a[complete], tokens_a[complete])
    sb, xb = _spend_axis(scores_b[complete], tokens_b[complete])
    low, high = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    spends = distinct_spends([float(x) for x in (*xa, *xb) if low - 1e-9 <= x <= high + 1e-9])
    return [{"log2_tokens": _num(x, 4), "tokens": _num(2**x, 1),
             **_difference(read_at(sa, xa, x), read_at(sb, xb, x))} for x in spends]


def distinct_spends(log2_spends: list[float]) -> list[float]:
    """The spends in increasing order, one per whole number of tokens (the lowest): two runs that spent
    67.6 and 68.3 tokens at their budgets gave two rows both printed "matched spend 68 tokens"."""
    kept: dict[int, float] = {}
    for x in sorted(log2_spends):
        kept.setdefault(round(2**x), x)
    return list(kept.values())


def _reach(r: efficiency.Reach) -> dict[str, Any]:
    return {"log2_tokens": _num(r.log2_tokens, 4), "tokens": _num(2**r.log2_tokens, 1) if math.isfinite(
        r.log2_tokens) else None, "reached": r.kind}


def _ratio_text(log2_lo: float, log2_hi: float) -> str:
    if math.isfinite(log2_lo) and math.isfinite(log2_hi):
        return f"{2 ** log2_lo:.2f}" if abs(log2_hi - log2_lo) < 1e-12 else f"{2 ** log2_lo:.2f} to {2 ** log2_hi:.2f}"
    if math.isfinite(log2_lo):
        return f">= {2 ** log2_lo:.2f}"
    if math.isfinite(log2_hi):
        return f"<= {2 ** log2_hi:.2f}"
    return "unbounded"


def efficiency_section(scores_a: pd.DataFrame, tokens_a: pd.DataFrame, scores_b: pd.DataFrame,
                       tokens_b: pd.DataFrame, seed: int, target: float | None) -> dict[str, Any]:
    complete = scores_a.notna().all(axis=1) & scores_b.notna().all(axis=1)
    if int(complete.sum()) < 1:
        return {"reason": "no problem has an answer at every budget of both runs"}
    found = efficiency.compare_efficiency(scores_a[complete].to_numpy(float), tokens_a[complete].to_numpy(float),
                                          scores_b[complete].to_numpy(float), tokens_b[complete].to_numpy(float),
                                          target, seed)
    exact = math.isfinite(found.log2_ratio_lo) and found.log2_ratio_lo == found.log2_ratio_hi
    return {"target": _num(found.target), "target_rule": "given" if target is not None else
            "the lower of the two runs' best single-sample accuracy", "problems": int(complete.sum()),
            "a": _reach(found.a), "b": _reach(found.b),
            "ratio": _num(2**found.log2_ratio_lo, 4) if exact else None,
            "ratio_bound": None if exact else _ratio_text(found.log2_ratio_lo, found.log2_ratio_hi),
            "lo": _num(2**found.interval_lo, 4) if math.isfinite(found.interval_lo) else None,
            "hi": _num(2**found.interval_hi, 4) if math.isfinite(found.interval_hi) else None,
            "interval": _ratio_text(found.interval_lo, found.interval_hi), "rule": EFFICIENCY_RULE}


def pair(a: Run, b: Run, seed: int = 0, target: float | None = None) -> dict[str, Any]:
    """Everything compare.json says about B against A."""
    if a.samples is None or b.samples is None:
        missing = a.label if a.samples is None else b.label
        return {"a": a.label, "b": b.label, "problems": 0, "budgets": [], "matched_spend": [], "efficiency": {},
                "reason": f"{missing}: no outputs/samples.csv (a curve.csv alone cannot be paired by problem)"}
    problems = shared_problems(a, b)
    scores_a, tokens_a = per_problem(a.samples, problems)
    scores_b, tokens_b = per_problem(b.samples, problems)
    return {"a": a.label, "b": b.label, "problems": len(problems),
            "problems_only_in_a": int(a.samples["problem_id"].nunique()) - len(problems),
            "problems_only_in_b": int(b.samples["problem_id"].nunique()) - len(problems),
            "budgets": by_budget(scores_a, tokens_a, scores_b, tokens_b),
            "matched_spend": matched_spend(scores_a, tokens_a, scores_b, tokens_b),
            "efficiency": efficiency_section(scores_a, tokens_a, scores_b, tokens_b, seed, target)}


ROWS_KEY = ("compare: p is the interval's own (below 0.05 exactly when the 95% CI leaves out 0); "
            "A higher, B higher: problems where that run scores higher")


def summary_lines(p: dict[str, Any]) -> list[str]:
    """What the terminal shows of one pair: a heading, then a small table with one row per budget pair
    and per matched spend, and the efficiency ratio (ROWS_KEY, printed once, says what the columns are)."""
    if p.get("reason"):
        return [f"compare: {p['b']} vs {p['a']}: not paired ({p['reason']})"]
    rows = [(f"budget {r['budget_a']}" + ("" if r["budget_a"] == r["budget_b"] else f" vs {r['budget_b']}"), r)
            for r in p["budgets"]]
    rows += [(f"matched spend {r['tokens']:,.0f} tokens", r) for r in p["matched_spend"]]
    width = max([len("B - A at"), *(len(where) for where, _ in rows)])
    lines = [f"compare: B \"{p['b']}\" - A \"{p['a']}\" on {p['problems']} shared problems",
             f"  {'B - A at':<{width}}  {'points':>6}  {'95% CI':<16}  {'p':>6}  {'A higher':>8}  {'B higher':>8}"]
    lines += [f"  {where:<{width}}  {row_cells(r)}" for where, r in rows]
    eff = p["efficiency"]
    if eff.get("target") is not None:
        ratio = f"{eff['ratio']:.2f}" if eff["ratio"] is not None else eff["ratio_bound"]
        lines.append(f"  tokens to reach {100 * eff['target']:.1f}%: B/A {ratio} (95% CI {eff['interval']})")
    return lines


def row_cells(row: dict[str, Any]) -> str:
    """One row's difference, interval, p-value and counts, in the table's columns."""
    interval = (f"{100 * row['lo']:+.1f} to {100 * row['hi']:+.1f}" if row["lo"] is not None and row["hi"] is not None
                else "none")
    return (f"{100 * row['delta']:>+6.1f}  {interval:<16}  {row['p_value']:>6.3g}  {row['problems_a_higher']:>8}  "
            f"{row['problems_b_higher']:>8}")


# --- references -----------------------------------------------------------------------------------------

def load_reference(name: str) -> dict[str, Any]:
    """A published curve: data/references/<name>.json, or a path to such a file."""
    path = Path(name)
    if not path.suffix:
        path = REFERENCES / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in REFERENCES.glob("*.json")) if REFERENCES.is_dir() else []
        raise CompareError(f"reference {name}: not found at {path} (known: {', '.join(known) or 'none'}); name a "
                           "file in data/references/ or a path to one")
    reference = json.loads(path.read_text(encoding="utf-8"))
    if not reference.get("points"):
        raise CompareError(f"{path}: a reference needs `points` (budget, k, accuracy, mean_tokens)")
    return reference


# --- the command ------------------------------------------------------------------------------------------

def compare(runs: list[str], labels: list[str] | None = None) -> pd.DataFrame:
    """Every run's figure rows in one table (what compare.csv holds)."""
    return pd.concat([r.curve for r in load_all(runs, labels)], ignore_index=True)


def load_all(runs: list[str], labels: list[str] | None = None) -> list[Run]:
    if not runs:
        raise CompareError("compare: name at least one run directory (or curve.csv)")
    if labels and len(labels) != len(runs):
        raise CompareError(f"compare: {len(labels)} labels for {len(runs)} runs")
    loaded = [load(r, labels[i] if labels else None) for i, r in enumerate(runs)]
    if not labels:
        loaded = distinct_default_labels(loaded)
    seen: dict[str, str] = {}
    for run in loaded:  # two runs with one label would pool their rows on the figure and in the pairs
        if run.label in seen:
            raise CompareError(f"compare: {seen[run.label]} and {run.arg} have the same label {run.label!r}; "
                               "give each its own with --label")
        seen[run.label] = run.arg
    return loaded


def distinct_default_labels(runs: list[Run]) -> list[Run]:
    """Runs whose default labels coincide (same model, method and source: an import and a native run of one
    model, two imports) are told apart by their directory names; labels the user gave are never changed."""
    counts = Counter(run.label for run in runs)
    out = []
    for run in runs:
        if counts[run.label] > 1:
            label = f"{run.label} ({_directory(run.arg).resolve().name})"
            run = replace(run, label=label, curve=run.curve.assign(run=label))
        out.append(run)
    return out


def run(runs: list[str], labels: list[str] | None = None, reference: str | None = None,
        target: float | None = None, seed: int = 0) -> None:
    from .stages.plot import save_comparison  # matplotlib only where figures are drawn

    if target is not None and not 0 < target <= 1:
        raise CompareError(f"compare: --target {target}: an accuracy between 0 and 1 (e.g. 0.5 for 50%)")
    loaded = load_all(runs, labels)
    ref = load_reference(reference) if reference else None
    pairs = [pair(loaded[0], other, seed, target) for other in loaded[1:]]
    table = pd.concat([r.curve for r in loaded], ignore_index=True)
    write_csv(COMPARE_CSV, table[["run", "series", "budget", "k", "maj_at_k", "log2_tokens"]])
    report: dict[str, Any] = {"pairs": pairs, "matched_spend_rule": MATCHED_SPEND_RULE}
    if ref is not None:
        report["reference"] = {"name": ref.get("name"), "label": ref.get("label"), "aggregate_only": True,
                               "why_no_interval": ref.get("why_no_interval")}
    write_json(COMPARE_JSON, report)
    save_comparison(table, calibrations(loaded), pairs, ref, COMPARE_PNG)
    for p in pairs:
        print("\n".join(summary_lines(p)))
    if any(p["budgets"] or p["matched_spend"] for p in pairs):
        print(ROWS_KEY)
    print(f"compare: {len(loaded)} runs -> {COMPARE_PNG}, {COMPARE_CSV}, {COMPARE_JSON}")
