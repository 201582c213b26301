"""Plot stage: the seed's two figures, drawn from the vote and calibrate stages' files.

1. `outputs/accuracy_vs_tokens.png`, as plain as the seed's: accuracy vs. log2(tokens used at test time per
   problem) from `curve.csv` (one answer per budget and the votes at the vote budget, 95% intervals),
   `frontier.csv` (the frontier over every strategy, as written: never selected again here),
   `strategies.csv` (the stopping rules, one legend entry) and `metrics.json` (the law's rise where a slope
   is printed, the crossover as a star with its interval). At most six legend entries; the regions
   ("budget control" | "majority vote" | past saturation, named by its evidence) are named inside the axes
   and placed from the calibration's controllable range and the law's saturation point, not by hand; the
   law, the saturation and the crossover are one caption line under the axes (`caption`).
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

from ..analysis import stats
from ..analysis.points import seed_path, vote_budget_of
from ..analysis.strategies import CONFIDENCE_RULE, FIXED_RULE
from ..budget_axis import Budget, as_budget, budget_rank, is_effort, largest
from ..files import (
    ACCURACY_PNG,
    CALIBRATION,
    CALIBRATION_PNG,
    CALIBRATION_SUMMARY,
    CURVE,
    FRONTIER,
    METRICS,
    REGIONS_JSON,
    STRATEGIES,
    THINKING_PNG,
    read_json,
    require,
    write_bytes,
    write_json,
)
from ..params import Params

PNG_METADATA = {"Software": None}  # matplotlib would stamp its version; nothing else varies
FRONTIER_COLOR = "#2a8a3e"
CROSSOVER_COLOR = "#b8236b"
REGION_COLORS = {"budget control": "#dbe9f6", "majority vote": "#fde2c8", "after saturation": "#e6e6e6"}


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


def figure_regions(table: pd.DataFrame, params: Params, controllable_to: Budget, law: dict) -> stats.Regions:
    """Regions from the curve and the vote stage's law (metrics.json): budget control up to the top of
    the controllable range, majority vote from there to the law's saturation point, and past it a region
    named by its evidence (law["after_saturation"]). Nothing is fitted here: the figure draws the metrics."""
    vote_budget = vote_budget_of(table, params.vote_budget)
    xs = table.loc[seed_path(table, vote_budget), "log2_tokens"].tolist()
    single = _by_budget(table[table["k"] == 1]).set_index("budget")
    takeover = stats.takeover_budget(list(single.index), controllable_to, vote_budget)
    saturation = law.get("saturation_log2_tokens")
    return stats.regions(xs, xs[-1] if saturation is None else float(saturation), bool(law.get("saturated")),
                         float(single.loc[takeover, "log2_tokens"]), takeover)


def _errorbar(ax: plt.Axes, rows: pd.DataFrame, fmt: str, color: str, label: str) -> None:
    """Points with their intervals; a point without an interval (one problem) gets no bar at all, and a
    point resting on fewer problems than the run has is drawn hollow (a different problem set; the caption
    says so)."""
    y = 100 * rows["maj_at_k"]
    yerr = [(y - 100 * rows["maj_lo"]).clip(lower=0), (100 * rows["maj_hi"] - y).clip(lower=0)]
    ax.errorbar(rows["log2_tokens"], y, yerr=yerr, fmt=fmt, color=color, ecolor=color, elinewidth=1,
                capsize=3, zorder=4, label=label)
    short = rows[rows["missing_problems"] > 0] if "missing_problems" in rows else rows.iloc[:0]
    if len(short):
        ax.plot(short["log2_tokens"], 100 * short["maj_at_k"], fmt[0], markerfacecolor="white",
                markeredgecolor=color, zorder=5)


def _frontier(ax: plt.Axes, front: pd.DataFrame) -> None:
    """The frontier as frontier.csv holds it (never selected again here), drawn as the step it is: the best
    accuracy any strategy buys at that spend or less."""
    ax.step(front["log2_tokens"], 100 * front["maj_at_k"], where="post", color=FRONTIER_COLOR, linewidth=1.6,
            alpha=0.9, zorder=3, label="frontier: the best any strategy buys")
    ax.plot(front["log2_tokens"], 100 * front["maj_at_k"], "D", color=FRONTIER_COLOR, markersize=3.5, zorder=5)


def _stopping_rules(ax: plt.Axes, strategies: pd.DataFrame) -> None:
    """Every stopping rule (strategies.csv), one legend entry for them all, drawn where it stops before the
    pool's end on average (elsewhere it is the vote over the whole pool, a point already drawn)."""
    if strategies.empty or "rule" not in strategies:
        return
    rules = strategies[~strategies["rule"].isin([FIXED_RULE, CONFIDENCE_RULE])]
    if rules.empty:  # pools of one sample: nothing stops early
        return
    pools = strategies[strategies["rule"] == FIXED_RULE].groupby("budget")["k"].max()
    early = rules[rules["mean_samples"].to_numpy(dtype=float) < rules["budget"].map(pools).to_numpy(dtype=float)]
    if early.empty:
        return
    ax.plot(early["log2_tokens"], 100 * early["maj_at_k"], "^", color=RULE_COLOR, markerfacecolor="white",
            markersize=5, linestyle="none", zorder=6, label="stop early (stopping rules, strategies.csv)")


def _crossover(ax: plt.Axes, crossover: dict, right: float) -> None:
    """The crossover of metrics.json as a star, its tokens' 95% interval as a horizontal bar (an arrow to the
    edge when the interval is open above). Nothing is drawn when there is none: the caption says so."""
    tokens = crossover.get("tokens")
    if not tokens:
        return
    x, y = math.log2(tokens), 100 * crossover["maj_at_k"]
    lo, hi = crossover.get("tokens_lo"), crossover.get("tokens_hi")
    if lo:
        x_hi = math.log2(hi) if hi else right
        ax.plot([math.log2(lo), x_hi], [y, y], "-", color=CROSSOVER_COLOR, linewidth=2.2, alpha=0.55, zorder=6)
        if not hi:
            ax.annotate("", (right, y), (x, y), arrowprops={"arrowstyle": "->", "color": CROSSOVER_COLOR}, zorder=6)
    ax.plot([x], [y], "*", color=CROSSOVER_COLOR, markersize=13, markeredgecolor="black", markeredgewidth=0.6,
            zorder=7, label="crossover: votes over shorter answers win")


def _law(ax: plt.Axes, law: dict) -> None:
    """The fitted rise of metrics.json, where a slope is printed: named on the line, its number in the
    caption (no legend entry: the legend keeps to six)."""
    if law.get("slope_points_per_doubling") is None:
        return
    slope, intercept = law["slope_points_per_doubling"], law["intercept_points"]
    xs = [law["fit_from_log2_tokens"], law["fit_to_log2_tokens"]]
    ys = [intercept + slope * x for x in xs]
    ax.plot(xs, ys, "-", color="#444444", linewidth=1.2, alpha=0.8, zorder=3, label="_the law")
    ax.annotate("law", (xs[1], ys[1]), textcoords="offset points", xytext=(4, -2), fontsize=7.5, color="#444444")


REFERENCE_COLOR = "#555555"
REFERENCE_NOTE = "published, aggregate only: no interval, no paired test"


def _reference(ax: plt.Axes, reference: dict | None, votes_entry: bool = True) -> None:
    """A published curve (data/references/): hollow markers, one sample per problem joined by a thin line,
    its votes as hollow squares; the legend says it has no interval (no per-problem data was published).
    `votes_entry`: the votes get a legend entry of their own (the lead figure keeps one for both)."""
    if not reference:
        return
    points = pd.DataFrame(reference["points"])
    points = points[points["mean_tokens"] > 0]
    single = points[points["k"] == 1].sort_values("mean_tokens")
    votes = points[points["k"] > 1].sort_values("mean_tokens")
    name = reference.get("label") or reference.get("name", "reference")
    ax.plot(single["mean_tokens"].map(math.log2), 100 * single["accuracy"], "o-", color=REFERENCE_COLOR,
            markerfacecolor="white", linewidth=0.8, alpha=0.9, zorder=4, label=f"{name}, k=1 ({REFERENCE_NOTE})")
    if len(votes):
        joined = pd.concat([single.tail(1), votes])
        ax.plot(joined["mean_tokens"].map(math.log2), 100 * joined["accuracy"], "s--", color=REFERENCE_COLOR,
                markerfacecolor="white", linewidth=0.8, alpha=0.9, zorder=4,
                label=f"{name}: majority vote" if votes_entry else "_nolegend_")


def reference_x(reference: dict | None) -> list[float]:
    if not reference:
        return []
    return [math.log2(p["mean_tokens"]) for p in reference["points"] if p["mean_tokens"] > 0]


def caption(metrics: dict) -> str:
    """The figure's one line under the axes: the law, the saturation point and what follows it, the
    crossover; every number read from metrics.json as it is written there."""
    law, crossing = metrics.get("law", {}), metrics.get("crossover") or {}
    slope = law.get("slope_points_per_doubling")
    if slope is not None:
        parts = [f"law {slope:+.1f} points per doubling (95% CI {law['slope_lo']:+.1f} to {law['slope_hi']:+.1f})"]
    else:
        parts = [f"no law: {str(law.get('reason') or 'no slope').split(':')[0]}"]
    at = law.get("saturation_log2_tokens")
    if law.get("saturated") and at is not None:
        gain = law.get("gain_after_saturation")
        after = (f", then {law.get('after_saturation')} ({100 * gain:+.1f} points)"
                 if gain is not None and law.get("after_saturation") else "")
        parts.append(f"saturates at ~{2 ** at:,.0f} tokens{after}")
    elif law.get("identified"):
        parts.append("still rising where the measured tokens end")
    if crossing.get("tokens"):
        parts.append(f"crossover from {crossing['tokens']:,.0f} tokens "
                     f"({100 * crossing['gain_over_thinking_longer']:+.1f} points)")
    elif crossing:
        parts.append("no crossover at equal spend")
    return " | ".join(parts)


def accuracy_figure(table: pd.DataFrame, front: pd.DataFrame, params: Params, title: str, controllable_to: Budget,
                    metrics: dict, reference: dict | None = None, strategies: pd.DataFrame | None = None
                    ) -> tuple[plt.Figure, stats.Regions]:
    """The lead figure, as plain as the seed's: one answer per budget, the vote at the vote budget, the
    frontier, the stopping rules as one entry, the law, the crossover, the regions named inside the axes,
    and one caption line. Every number drawn is read from the vote stage's files: `table` (curve.csv),
    `front` (frontier.csv), `strategies` (strategies.csv), `metrics` (metrics.json)."""
    law, crossover = metrics.get("law", {}), metrics.get("crossover") or {}
    vote_budget = vote_budget_of(table, params.vote_budget)
    single = _by_budget(table[table["k"] == 1])
    vote = table[table["budget"] == vote_budget].sort_values("k")
    reg = figure_regions(table, params, controllable_to, law)
    fig, ax = plt.subplots(figsize=(8, 5.2), layout="constrained")
    pad = 0.3
    right = max(reg.end, float(table["log2_tokens"].max()), *reference_x(reference)) + pad
    left = min(reg.start, float(table["log2_tokens"].min()), *reference_x(reference)) - pad
    spans = [
        ("budget control", left, min(reg.vote_start, reg.saturation) if reg.saturated else reg.vote_start),
        ("majority vote", reg.vote_start, reg.saturation if reg.saturated else right),
        ("after saturation", reg.saturation, right if reg.saturated else reg.saturation),
    ]
    for name, lo, hi in spans:
        if hi > lo:
            ax.axvspan(lo, hi, color=REGION_COLORS[name], zorder=0)
            text = (law.get("after_saturation") or "past saturation") if name == "after saturation" else name
            ax.text((lo + hi) / 2, 1.5, text.replace(" (95%)", ""), ha="center", va="bottom", fontsize=7.5,
                    color="#555555", style="italic", zorder=1, clip_on=True)
    ax.fill_between(vote["log2_tokens"], 100 * vote["maj_lo"], 100 * vote["maj_hi"], color="#d0641c",
                    alpha=0.12, zorder=2, linewidth=0)
    _frontier(ax, front)
    _errorbar(ax, single, "o-", "#1f5fa8", f"one answer per problem ({params.budgets.method})")
    _errorbar(ax, vote, "s--", "#d0641c", f"majority vote of k answers at budget {vote_budget}")
    _stopping_rules(ax, strategies if strategies is not None else pd.DataFrame())
    _law(ax, law)
    _crossover(ax, crossover, right)
    _reference(ax, reference, votes_entry=False)
    for _, row in vote.iterrows():
        ax.annotate(f"k={int(row['k'])}", (row["log2_tokens"], 100 * row["maj_hi"]),
                    textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7, color="#d0641c")
    for _, row in single.iterrows():
        ax.annotate(f"{as_budget(row['budget'])}", (row["log2_tokens"], 100 * row["maj_at_k"]),
                    textcoords="offset points", xytext=(-5, 5), ha="right", fontsize=7, color="#1f5fa8")
    ax.set_xlabel("tokens used at test time per problem (log2)")
    ax.set_ylabel("accuracy (%), 95% interval over problems")
    ax.set_ylim(-4, 104)
    ax.set_xlim(left, right)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3, zorder=1)
    ax.legend(loc="upper left", fontsize=7.5, framealpha=0.9)
    fig.supxlabel(caption(metrics), fontsize=7.5, color="#333333")  # the layout keeps room for it under the axes
    return fig, reg


RULE_COLOR = "#7b3294"


def thinking_figure(thinking: dict, title: str) -> plt.Figure:
    """`outputs/thinking_tokens.png`: per budget, the distribution of thinking tokens (box: p25-p75 with the
    median, whiskers p10-p90, as metrics.json `thinking` has them) and the share that hit the cap."""
    by_budget = thinking.get("by_budget", {})
    boxes = []
    for budget in sorted(by_budget, key=lambda b: budget_rank(as_budget(b))):  # JSON keys come sorted as text
        t = by_budget[budget]["thinking_tokens"]
        if t["p50"] is None:
            continue
        boxes.append({"label": budget, "med": t["p50"], "q1": t["p25"], "q3": t["p75"], "whislo": t["p10"],
                      "whishi": t["p90"], "mean": t["mean"], "fliers": []})
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if boxes:
        ax.bxp(boxes, showmeans=True, meanprops={"marker": "o", "markerfacecolor": "#d0641c",
                                                 "markeredgecolor": "#d0641c", "markersize": 4})
        top = max(b["whishi"] for b in boxes)
        for i, b in enumerate(boxes, start=1):
            share = by_budget[b["label"]]["capped_share"]
            text = "capped\n" + (f"{100 * share:.0f}%" if share is not None else "n/a")
            ax.annotate(text, (i, top), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7,
                        color="#444444")
        ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_xlabel(f"requested budget ({thinking.get('method', '')}); box p25-p75, whiskers p10-p90, dot: mean")
    ax.set_ylabel("thinking tokens per sample")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


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
    front = pd.read_csv(require(FRONTIER, "vote"))
    calib = pd.read_csv(require(CALIBRATION, "calibrate"))
    summary = json.loads(require(CALIBRATION_SUMMARY, "calibrate").read_text(encoding="utf-8"))
    method = params.budgets.method + (" + wait" if params.budgets.method == "forcing" and params.budgets.wait else "")
    title = f"{params.model.name} on {params.data.source} ({method})"
    if params.model.chat_template == "chatml-think":  # never trained on think tags: say so where it is read
        title += "\nprompted thinking (<think> asked for in the system turn), not trained"
    controllable = summary["controllable_range"]
    metrics = read_json(METRICS)
    reference = params.plot.reference_path
    published = json.loads(reference.read_text(encoding="utf-8")) if reference else None
    every = pd.read_csv(STRATEGIES) if STRATEGIES.exists() else None
    fig, reg = accuracy_figure(table, front, params, title, as_budget(controllable["to"]), metrics, published, every)
    _save(fig, ACCURACY_PNG)
    _save(thinking_figure(metrics.get("thinking") or {}, title), THINKING_PNG)
    _save(calibration_figure(calib, summary, title), CALIBRATION_PNG)
    law = metrics.get("law", {})
    regions = {k: round(v, 6) if isinstance(v, float) else v for k, v in reg.__dict__.items()}
    regions.update(controllable_from=as_budget(controllable["from"]), controllable_to=as_budget(controllable["to"]),
                   fit_from=law.get("fit_from_log2_tokens"), fit_to=law.get("fit_to_log2_tokens"),
                   slope_points_per_doubling=law.get("slope_points_per_doubling"),
                   after_saturation=law.get("after_saturation") if reg.saturated else None)
    write_json(REGIONS_JSON, regions)
    print(f"plot: {ACCURACY_PNG}, {CALIBRATION_PNG}, {THINKING_PNG}")


def save_comparison(table: pd.DataFrame, calibration: pd.DataFrame, pairs: list[dict], reference: dict | None,
                    path: object) -> None:
    """`harness compare`: each run's single-sample curve (solid) and majority-vote curve (dashed), with a
    published reference beside them (hollow); below, each pair's difference B - A with its 95% band at
    matched spend and at each shared budget (compare.json); next to it, each run's requested vs. used
    tokens (the calibration), when any run has token budgets."""
    _style()
    paired = [p for p in pairs if p.get("matched_spend") or p.get("budgets")]
    top = ["accuracy", "calibration"] if not calibration.empty else ["accuracy"]
    mosaic = [top, ["difference"] * len(top)] if paired else [top]
    fig, axes = plt.subplot_mosaic(mosaic, figsize=(6.5 * len(top) + 1, 5.6 + 4.2 * (len(mosaic) - 1)),  # type: ignore[arg-type]
                                   height_ratios=[5.6, 4.2][:len(mosaic)], layout="constrained")
    ax = axes["accuracy"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of = {}
    for i, (run, rows_of_run) in enumerate(table.groupby("run", sort=False)):
        color = color_of[run] = colors[i % len(colors)]
        single = rows_of_run[rows_of_run["k"] == 1].sort_values("log2_tokens")
        vote = rows_of_run[rows_of_run["series"] == "vote"].sort_values("k")
        ax.plot(single["log2_tokens"], 100 * single["maj_at_k"], "o-", color=color, label=f"{run}")
        if not vote.empty:
            top_point = single[single["budget"] == largest(single["budget"])]
            vote = pd.concat([top_point, vote])
            ax.plot(vote["log2_tokens"], 100 * vote["maj_at_k"], "s--", color=color, alpha=0.8,
                    label=f"{run}: majority vote")
    _reference(ax, reference)
    ax.set_xlabel("tokens used at test time per problem (log2)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    _legend_below(ax)
    if "calibration" in axes:
        _calibration_panel(axes["calibration"], calibration, color_of)
    if paired:
        _difference_panel(axes["difference"], paired, color_of)
    _save(fig, path)


def _legend_below(ax: plt.Axes) -> None:
    """Run labels are long (model, method, dataset): the legend goes under the axes, never over a point."""
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), borderaxespad=0, fontsize=7, framealpha=0.9)


def _difference_panel(ax: plt.Axes, pairs: list[dict], color_of: dict) -> None:
    """B - A per pair: a line with its 95% band at matched spend, points with bars at shared budgets."""
    for p in pairs:
        color = color_of.get(p["b"], "#444444")
        spend = [r for r in p["matched_spend"] if r["delta"] is not None]
        if spend:
            x = [r["log2_tokens"] for r in spend]
            ax.plot(x, [100 * r["delta"] for r in spend], "o-", color=color, label=f"{p['b']} - {p['a']}")
            lo = [100 * r["lo"] if r["lo"] is not None else float("nan") for r in spend]
            hi = [100 * r["hi"] if r["hi"] is not None else float("nan") for r in spend]
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
            ax.errorbar(x, [100 * r["delta"] for r in spend],
                        yerr=[[max(0.0, 100 * r["delta"] - v) for r, v in zip(spend, lo)],
                              [max(0.0, v - 100 * r["delta"]) for r, v in zip(spend, hi)]],
                        fmt="none", ecolor=color, elinewidth=0.8, capsize=2)
        at = [r for r in p["budgets"] if r["delta"] is not None and r.get("b_log2_tokens") is not None]
        if at:
            y = [100 * r["delta"] for r in at]
            lower = [y_ - 100 * r["lo"] if r["lo"] is not None else 0.0 for y_, r in zip(y, at)]
            upper = [100 * r["hi"] - y_ if r["hi"] is not None else 0.0 for y_, r in zip(y, at)]
            ax.errorbar([r["b_log2_tokens"] for r in at], y, yerr=[lower, upper], fmt="D", color=color,
                        markerfacecolor="white", capsize=3,
                        label=None if spend else f"{p['b']} - {p['a']}")
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_xlabel("tokens used per problem (log2): circles at matched spend, diamonds at B's budgets")
    ax.set_ylabel("B - A (points), 95% paired interval")
    ax.grid(True, alpha=0.3)
    _legend_below(ax)


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
    _legend_below(ax)
