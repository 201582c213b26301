"""Plot stage: the seed's two figures, drawn from `outputs/curve.csv` and `outputs/calibration.csv`.

1. `outputs/accuracy_vs_tokens.png`: accuracy vs. log2(tokens used at test time per problem). One
   series asks for more tokens (k = 1 at each budget), one votes over k samples at the largest budget;
   the shaded regions ("budget control" | "majority vote" | "no gains") are placed by stats.regions from
   the data, not by hand.
2. `outputs/requested_vs_actual.png`: requested vs. actual tokens (log-log), mean with p10-p90 spread,
   the controllable range shaded.

No statistics here beyond choosing rows. PNGs carry fixed metadata so reruns are byte-identical.
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
from .calibrate import CALIBRATION, CALIBRATION_SUMMARY
from .files import OUTPUTS, write_bytes, write_json
from .params import Params
from .vote import CURVE

ACCURACY_PNG = OUTPUTS / "accuracy_vs_tokens.png"
CALIBRATION_PNG = OUTPUTS / "requested_vs_actual.png"
REGIONS_JSON = OUTPUTS / "regions.json"
PNG_METADATA = {"Software": None}  # matplotlib would stamp its version; nothing else varies
REGION_COLORS = {"budget control": "#dbe9f6", "majority vote": "#fde2c8", "no gains": "#e6e6e6"}


def _save(fig: plt.Figure, path: object) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, metadata=PNG_METADATA)
    plt.close(fig)
    write_bytes(path, buf.getvalue())  # type: ignore[arg-type]


def _style() -> None:
    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 10, "svg.hashsalt": "harness"})


def accuracy_figure(table: pd.DataFrame, params: Params, title: str) -> tuple[plt.Figure, stats.Regions]:
    vote_budget = params.vote_budget
    single = table[table["k"] == 1].sort_values("budget")
    vote = table[table["budget"] == vote_budget].sort_values("k")
    reg = stats.regions(
        single["log2_tokens"].tolist(), vote["log2_tokens"].tolist(), vote["maj_at_k"].tolist(),
        params.vote.saturation_tolerance,
    )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pad = 0.25
    saturated = reg.saturation < reg.end  # else the best vote is the last point: no "no gains" region
    spans = [
        ("budget control", reg.start - pad, reg.vote_start),
        ("majority vote", reg.vote_start, reg.saturation if saturated else reg.end + pad),
        ("no gains", reg.saturation, reg.end + pad if saturated else reg.saturation),
    ]
    for label, lo, hi in spans:
        if hi > lo:
            ax.axvspan(lo, hi, color=REGION_COLORS[label], zorder=0, label=label)
    ax.plot(single["log2_tokens"], 100 * single["maj_at_k"], "o-", color="#1f5fa8", zorder=3,
            label=f"ask for more tokens ({params.budgets.method}), k=1")
    ax.plot(vote["log2_tokens"], 100 * vote["maj_at_k"], "s--", color="#d0641c", zorder=3,
            label=f"majority vote at budget {vote_budget}")
    for _, row in vote.iterrows():
        ax.annotate(f"k={int(row['k'])}", (row["log2_tokens"], 100 * row["maj_at_k"]),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7, color="#d0641c")
    for _, row in single.iterrows():
        ax.annotate(f"{int(row['budget'])}", (row["log2_tokens"], 100 * row["maj_at_k"]),
                    textcoords="offset points", xytext=(0, -13), ha="center", fontsize=7, color="#1f5fa8")
    ax.set_xlabel("tokens used at test time per problem (log2)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(reg.start - pad, reg.end + pad)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3, zorder=1)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig, reg


def calibration_figure(calib: pd.DataFrame, summary: dict, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lo, hi = summary["controllable_range"]["from"], summary["controllable_range"]["to"]
    if hi > lo:
        ax.axvspan(math.log2(lo), math.log2(hi), color=REGION_COLORS["budget control"], zorder=0,
                   label="controllable range")
    x = calib["budget"].map(math.log2)
    y = calib["mean_tokens"].map(lambda v: math.log2(v) if v and v > 0 else float("nan"))
    lower = y - calib["p10_tokens"].map(lambda v: math.log2(v) if v and v > 0 else float("nan"))
    upper = calib["p90_tokens"].map(lambda v: math.log2(v) if v and v > 0 else float("nan")) - y
    ax.errorbar(x, y, yerr=[lower.clip(lower=0), upper.clip(lower=0)], fmt="o-", color="#1f5fa8",
                capsize=3, zorder=3, label="mean tokens used (p10-p90)")
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
    table = pd.read_csv(CURVE)
    calib = pd.read_csv(CALIBRATION)
    summary = json.loads(CALIBRATION_SUMMARY.read_text(encoding="utf-8"))
    title = f"{params.model.name} on {params.data.source} ({params.budgets.method})"
    fig, reg = accuracy_figure(table, params, title)
    _save(fig, ACCURACY_PNG)
    _save(calibration_figure(calib, summary, title), CALIBRATION_PNG)
    write_json(REGIONS_JSON, {k: round(v, 6) for k, v in reg.__dict__.items()})
    print(f"plot: {ACCURACY_PNG}, {CALIBRATION_PNG}")
