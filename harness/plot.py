"""Plot stage: the seed's two figures, drawn from `outputs/curve.csv` and `outputs/calibration.csv`.

1. `outputs/accuracy_vs_tokens.png`: accuracy vs. log2(tokens used at test time per problem). One
   series asks for more tokens (k = 1 at each budget), one votes over k samples at the largest budget;
   every point carries its 95% bootstrap interval (error bars; a band along the vote series), the
   fitted law is drawn over the region it was fitted to, and the shaded regions ("budget control" |
   "majority vote" | "no gains") are placed by stats.regions from the data and the calibration's
   controllable range, not by hand.
2. `outputs/requested_vs_actual.png`: requested vs. actual tokens (log-log), mean with p10-p90 spread,
   the controllable range shaded.

No statistics here beyond choosing rows and calling stats. PNGs carry fixed metadata so reruns are
byte-identical.
"""

from __future__ import annotations

import io
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from . import stats
from .budget_axis import Budget, as_budget, budget_rank, is_effort, largest
from .files import (
    ACCURACY_PNG,
    CALIBRATION,
    CALIBRATION_PNG,
    CALIBRATION_SUMMARY,
    CURVE,
    METRICS,
    REGIONS_JSON,
    read_json,
    require,
    write_bytes,
    write_json,
)
from .params import Params
from .vote import frontier_rows, seed_path, vote_budget_of

PNG_METADATA = {"Software": None}  # matplotlib would stamp its version; nothing else varies
FRONTIER_COLOR, GRID_COLOR = "#2a8a3e", "#7a7a7a"
REGION_COLORS = {"budget control": "#dbe9f6", "majority vote": "#fde2c8", "no gains": "#e6e6e6"}


def _save(fig: plt.Figure, path: object) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, metadata=PNG_METADATA)
    plt.close(fig)
    write_bytes(path, buf.getvalue())  # type: ignore[arg-type]


def _style() -> None:
    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 10, "svg.hashsalt": "harness"})


def _by_budget(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows least budget first (token counts by size, effort levels low < medium < high)."""
    return frame.sort_values("budget", key=lambda col: col.map(budget_rank), kind="stable")


def figure_regions(table: pd.DataFrame, params: Params, controllable_to: Budget) -> tuple[stats.Regions, dict]:
    """Regions and the drawn law from the curve: the seed's path (ask for more tokens, then vote), where
    voting takes over (top of the controllable range) and where the fitted law saturates (the same
    floor-rise-plateau fit as the vote stage's metrics)."""
    vote_budget = vote_budget_of(table, params.vote_budget)
    front = table.loc[seed_path(table, vote_budget)]
    single = _by_budget(table[table["k"] == 1]).set_index("budget")
    takeover = stats.takeover_budget(list(single.index), controllable_to, vote_budget)
    xs = front["log2_tokens"].tolist()
    hinge = stats.fit_hinge(xs, front["maj_at_k"].tolist())
    last = len(xs) - 1
    start, end = (hinge.start, hinge.end) if hinge else (0, last)
    reg = stats.regions(xs, xs[end], end < last, float(single.loc[takeover, "log2_tokens"]), takeover)
    law = {"fit_from": xs[start], "fit_to": xs[end],
           "slope": 100 * hinge.slope if hinge else float("nan"),
           "intercept": 100 * hinge.intercept if hinge else float("nan")}
    return reg, law


def _errorbar(ax: plt.Axes, rows: pd.DataFrame, fmt: str, color: str, label: str) -> None:
    """Points with their intervals; a point without an interval (one problem) gets no bar at all, and a
    point resting on fewer problems than the run has is drawn hollow (a different problem set)."""
    y = 100 * rows["maj_at_k"]
    yerr = [(y - 100 * rows["maj_lo"]).clip(lower=0), (100 * rows["maj_hi"] - y).clip(lower=0)]
    ax.errorbar(rows["log2_tokens"], y, yerr=yerr, fmt=fmt, color=color, ecolor=color, elinewidth=1,
                capsize=3, zorder=4, label=label)
    short = rows[rows["missing_problems"] > 0] if "missing_problems" in rows else rows.iloc[:0]
    if len(short):
        ax.plot(short["log2_tokens"], 100 * short["maj_at_k"], fmt[0], markerfacecolor="white",
                markeredgecolor=color, zorder=5, label="hollow: fewer problems (curve.csv missing_problems)")


def _grid(ax: plt.Axes, table: pd.DataFrame) -> None:
    """One faint line per budget as k grows (iso-budget curves): where a budget's votes climb above the
    longer budgets' single answers, voting starts to pay."""
    for i, (budget, rows) in enumerate(_by_budget(table).groupby("budget", sort=False)):
        rows = rows.sort_values("k")
        if len(rows) < 2:
            continue
        ax.plot(rows["log2_tokens"], 100 * rows["maj_at_k"], ".-", color=GRID_COLOR, alpha=0.35, linewidth=0.9,
                markersize=3, zorder=2, label="iso-budget: one budget, k = 1, 2, 4, ... (curve.csv)" if i == 0 else None)
        last = rows.iloc[-1]
        ax.annotate(f"{as_budget(budget)}\u00d7{int(last['k'])}", (last["log2_tokens"], 100 * last["maj_at_k"]),
                    textcoords="offset points", xytext=(3, -3), fontsize=6, color=GRID_COLOR, alpha=0.8)


def _frontier(ax: plt.Axes, table: pd.DataFrame, crossover: dict) -> None:
    """The compute-optimal frontier (frontier.csv) as the step it is: the best accuracy any grid point
    buys at that spend or less; and the crossover, when there is one, with its interval."""
    front = table.loc[frontier_rows(table)]
    ax.step(front["log2_tokens"], 100 * front["maj_at_k"], where="post", color=FRONTIER_COLOR, linewidth=1.6,
            alpha=0.9, zorder=3, label="compute-optimal frontier (frontier.csv)")
    ax.plot(front["log2_tokens"], 100 * front["maj_at_k"], "D", color=FRONTIER_COLOR, markersize=3.5, zorder=5)
    tokens = crossover.get("tokens")
    if tokens:
        lo, hi = crossover.get("tokens_lo"), crossover.get("tokens_hi")
        label = f"crossover: votes over shorter answers win from {tokens:.0f} tokens"
        if lo and hi:
            ax.axvspan(math.log2(lo), math.log2(hi), color=FRONTIER_COLOR, alpha=0.08, zorder=1, linewidth=0)
            label += f" (95% CI {lo:.0f}-{hi:.0f})"
        ax.axvline(math.log2(tokens), color=FRONTIER_COLOR, linestyle=":", linewidth=1.2, zorder=3, label=label)


def _law_label(law: dict, slope_interval: tuple[float | None, float | None]) -> str:
    label = f"fit: {law['slope']:+.1f} points per doubling"
    lo, hi = slope_interval
    if lo is not None and hi is not None:
        label += f" (95% CI {lo:+.1f} to {hi:+.1f})"
    return label


def accuracy_figure(
    table: pd.DataFrame, params: Params, title: str, controllable_to: Budget,
    slope_interval: tuple[float | None, float | None] = (None, None), crossover: dict | None = None,
) -> tuple[plt.Figure, stats.Regions, dict]:
    """`slope_interval`: the law's bootstrap interval from the vote stage's metrics (the same fit);
    `crossover`: the metrics' crossover (drawn when there is one)."""
    vote_budget = vote_budget_of(table, params.vote_budget)
    single = _by_budget(table[table["k"] == 1])
    vote = table[table["budget"] == vote_budget].sort_values("k")
    reg, law = figure_regions(table, params, controllable_to)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    pad = 0.3
    right = max(reg.end, float(table["log2_tokens"].max())) + pad
    left = min(reg.start, float(table["log2_tokens"].min())) - pad
    spans = [
        ("budget control", left, min(reg.vote_start, reg.saturation) if reg.saturated else reg.vote_start),
        ("majority vote", reg.vote_start, reg.saturation if reg.saturated else right),
        ("no gains", reg.saturation, right if reg.saturated else reg.saturation),
    ]
    for label, lo, hi in spans:
        if hi > lo:
            ax.axvspan(lo, hi, color=REGION_COLORS[label], zorder=0, label=label)
    ax.fill_between(vote["log2_tokens"], 100 * vote["maj_lo"], 100 * vote["maj_hi"], color="#d0641c",
                    alpha=0.12, zorder=2, linewidth=0)
    _grid(ax, table)
    _frontier(ax, table, crossover or {})
    _errorbar(ax, single, "o-", "#1f5fa8", f"ask for more tokens ({params.budgets.method}), k=1")
    _errorbar(ax, vote, "s--", "#d0641c", f"majority vote at budget {vote_budget} (95% interval)")
    if math.isfinite(law["slope"]):
        xs = [law["fit_from"], law["fit_to"]]
        ax.plot(xs, [law["intercept"] + law["slope"] * x for x in xs], "-", color="#444444", linewidth=1.2,
                alpha=0.8, zorder=3, label=_law_label(law, slope_interval))
    for _, row in vote.iterrows():
        ax.annotate(f"k={int(row['k'])}", (row["log2_tokens"], 100 * row["maj_hi"]),
                    textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7, color="#d0641c")
    for _, row in single.iterrows():
        ax.annotate(f"{as_budget(row['budget'])}", (row["log2_tokens"], 100 * row["maj_at_k"]),
                    textcoords="offset points", xytext=(-5, 5), ha="right", fontsize=7, color="#1f5fa8")
    ax.set_xlabel("tokens used at test time per problem (log2)")
    ax.set_ylabel("accuracy (%), 95% bootstrap interval over problems")
    ax.set_ylim(-4, 104)
    ax.set_xlim(left, right)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3, zorder=1)
    ax.legend(loc="upper left", fontsize=7.5, framealpha=0.9)
    fig.tight_layout()
    return fig, reg, law


def calibration_figure(calib: pd.DataFrame, summary: dict, title: str) -> plt.Figure:
    """Requested vs. used, log-log for token budgets; for effort levels the x-axis is the level itself."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    calib = _by_budget(calib)
    budgets = [as_budget(b) for b in calib["budget"]]
    levels = any(is_effort(b) for b in budgets)
    where = {b: float(i) if levels else math.log2(b) for i, b in enumerate(budgets)}  # type: ignore[arg-type]
    lo, hi = (as_budget(summary["controllable_range"][end]) for end in ("from", "to"))
    if lo in where and hi in where and where[hi] > where[lo]:
        ax.axvspan(where[lo], where[hi], color=REGION_COLORS["budget control"], zorder=0,
                   label="controllable range")
    x = pd.Series([where[b] for b in budgets], index=calib.index)
    y = calib["mean_tokens"].map(lambda v: math.log2(v) if v and v > 0 else float("nan"))
    lower = y - calib["p10_tokens"].map(lambda v: math.log2(v) if v and v > 0 else float("nan"))
    upper = calib["p90_tokens"].map(lambda v: math.log2(v) if v and v > 0 else float("nan")) - y
    ax.errorbar(x, y, yerr=[lower.clip(lower=0), upper.clip(lower=0)], fmt="o-", color="#1f5fa8",
                capsize=3, zorder=3, label="mean tokens used (p10-p90)")
    if levels:
        ax.set_xticks(list(x), [str(b) for b in budgets])
        ax.set_xlabel("requested reasoning effort")
    else:
        ax.plot(x, x, ":", color="#888888", zorder=2, label="used = requested")
        ax.set_xlabel("requested tokens (log2)")
    ax.set_ylabel("actual tokens used (log2)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3, zorder=1)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def run(params: Params) -> None:
    _style()
    table = pd.read_csv(require(CURVE, "vote"))
    calib = pd.read_csv(require(CALIBRATION, "calibrate"))
    summary = json.loads(require(CALIBRATION_SUMMARY, "calibrate").read_text(encoding="utf-8"))
    method = params.budgets.method + (" + wait" if params.budgets.method == "forcing" and params.budgets.wait else "")
    title = f"{params.model.name} on {params.data.source} ({method})"
    if params.model.chat_template == "chatml-think":  # never trained on think tags: say so where it is read
        title += "\nprompted thinking: <think> asked for in the system turn, not a trained thinker"
    controllable = summary["controllable_range"]
    summary_metrics = read_json(METRICS)
    fitted = summary_metrics.get("law", {})
    fig, reg, law = accuracy_figure(table, params, title, as_budget(controllable["to"]),
                                    (fitted.get("slope_lo"), fitted.get("slope_hi")), summary_metrics.get("crossover"))
    _save(fig, ACCURACY_PNG)
    _save(calibration_figure(calib, summary, title), CALIBRATION_PNG)
    regions = {k: round(v, 6) if isinstance(v, float) else v for k, v in reg.__dict__.items()}
    regions.update(controllable_from=as_budget(controllable["from"]), controllable_to=as_budget(controllable["to"]),
                   fit_from=round(law["fit_from"], 6), fit_to=round(law["fit_to"], 6),
                   slope_points_per_doubling=round(law["slope"], 3) if math.isfinite(law["slope"]) else None)
    write_json(REGIONS_JSON, regions)
    print(f"plot: {ACCURACY_PNG}, {CALIBRATION_PNG}")


def save_comparison(table: pd.DataFrame, calibration: pd.DataFrame, path: object) -> None:
    """`harness compare`: each run's single-sample curve (solid) and majority-vote curve (dashed); next to
    it, each run's requested vs. used tokens (the calibration), when any run has token budgets."""
    _style()
    panels = 2 if not calibration.empty else 1
    fig, axes = plt.subplots(1, panels, figsize=(7.5 + 5 * (panels - 1), 4.8), squeeze=False)
    ax = axes[0][0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of = {}
    for i, (run, rows) in enumerate(table.groupby("run", sort=False)):
        color = color_of[run] = colors[i % len(colors)]
        single = rows[rows["k"] == 1].sort_values("log2_tokens")
        vote = rows[rows["series"] == "vote"].sort_values("k")
        ax.plot(single["log2_tokens"], 100 * single["maj_at_k"], "o-", color=color, label=f"{run}")
        if not vote.empty:
            top = single[single["budget"] == largest(single["budget"])]
            vote = pd.concat([top, vote])
            ax.plot(vote["log2_tokens"], 100 * vote["maj_at_k"], "s--", color=color, alpha=0.8,
                    label=f"{run}: majority vote")
    ax.set_xlabel("tokens used at test time per problem (log2)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    if panels == 2:
        _calibration_panel(axes[0][1], calibration, color_of)
    fig.tight_layout()
    _save(fig, path)


def _calibration_panel(ax: plt.Axes, calibration: pd.DataFrame, color_of: dict) -> None:
    def log2(v: float) -> float:
        return math.log2(v) if v and v > 0 else float("nan")

    for run, rows in calibration.groupby("run", sort=False):
        rows = rows.sort_values("budget")
        x = rows["budget"].map(log2)
        y = rows["mean_tokens"].map(log2)
        lower = (y - rows["p10_tokens"].map(log2)).clip(lower=0)
        upper = (rows["p90_tokens"].map(log2) - y).clip(lower=0)
        ax.errorbar(x, y, yerr=[lower, upper], fmt="o-", capsize=2, color=color_of.get(run), label=f"{run}")
    every = calibration["budget"].map(log2)
    ax.plot([every.min(), every.max()], [every.min(), every.max()], ":", color="#888888",
            label="used = requested")
    ax.set_xlabel("requested tokens (log2)")
    ax.set_ylabel("actual tokens used (log2), mean with p10-p90")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
