"""The lead figure draws what the vote stage wrote, as plainly as the seed's: the frontier as frontier.csv
holds it, the stopping rules as one legend entry, the crossover of metrics.json as a star with its interval,
the law where a slope is printed, the regions named inside the axes, one caption line under them whose every
number is metrics.json's, at most six legend entries, and nothing past the figure's edge."""

from __future__ import annotations

import math
import re

import matplotlib
import numpy as np
import pytest
from grids import near_equal_spend_grid

from harness.analysis import frontier
from harness.analysis import law as law_fit
from harness.params import Params
from harness.stages import plot, vote

# the module-scoped grid below is analysed once: its tests stay on one xdist worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("figure")

matplotlib.use("Agg")
PARAMS = Params.model_validate({"data": {"answer_type": "any"}, "budgets": {"requested": [16, 32, 64, 128, 256]}})
MAX_LEGEND_ENTRIES = 6


@pytest.fixture(scope="module")
def crossing_grid():
    table, metrics, every = vote.analyse(near_equal_spend_grid(True), PARAMS)
    return table, frontier.frontier_table(every), metrics, every


def _labelled(ax, prefix: str):
    return [line for line in ax.get_lines() if str(line.get_label()).startswith(prefix)]


def _legend_labels(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _caption(fig) -> str:
    return fig._supxlabel.get_text()


def test_the_crossover_of_metrics_json_is_a_star_with_its_interval(crossing_grid):
    table, front, metrics, every = crossing_grid
    crossover = metrics["crossover"]
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, metrics, strategies=every)
    ax = fig.axes[0]
    (star,) = _labelled(ax, "crossover:")
    assert star.get_xdata()[0] == pytest.approx(math.log2(crossover["tokens"]))
    assert star.get_ydata()[0] == pytest.approx(100 * crossover["maj_at_k"])
    bar = [line for line in ax.get_lines() if list(line.get_ydata()) == [100 * crossover["maj_at_k"]] * 2]
    assert bar and bar[0].get_xdata()[0] == pytest.approx(math.log2(crossover["tokens_lo"]))
    assert f"crossover from {crossover['tokens']:,.0f} tokens" in _caption(fig)


def test_the_frontier_drawn_is_frontier_csv_not_a_recomputation(crossing_grid):
    table, front, metrics, every = crossing_grid
    edited = front.iloc[:-1]  # a frontier.csv that differs from what the strategies would give
    fig, _ = plot.accuracy_figure(table, edited, PARAMS, "t", 256, metrics, strategies=every)
    (step,) = _labelled(fig.axes[0], "frontier")
    np.testing.assert_allclose(step.get_xdata(), edited["log2_tokens"])
    np.testing.assert_allclose(step.get_ydata(), 100 * edited["maj_at_k"])


def test_the_stopping_rules_are_one_entry_and_the_legend_has_at_most_six(crossing_grid):
    table, front, metrics, every = crossing_grid
    reference = {"name": "ref", "points": [{"k": 1, "accuracy": 0.2, "mean_tokens": 100.0},
                                           {"k": 2, "accuracy": 0.3, "mean_tokens": 200.0}]}
    identified = {**metrics["law"], "identified": True, "slope_points_per_doubling": 10.0, "slope_lo": 5.0,
                  "slope_hi": 15.0, "intercept_points": 0.0}
    # everything the figure can draw at once: law, crossover, stopping rules, a published reference
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, {**metrics, "law": identified}, reference, every)
    labels = _legend_labels(fig)
    assert len(labels) <= MAX_LEGEND_ENTRIES, labels
    early = every[~every["rule"].isin(["fixed", "confidence-weighted"])]
    (rules,) = _labelled(fig.axes[0], "stop early")
    assert len(rules.get_xdata()) >= 1 and set(np.round(rules.get_ydata(), 6)) <= set(np.round(100 * early["maj_at_k"], 6))
    assert not any(label.startswith("stop early:") for label in labels)  # no entry per rule


def test_nothing_runs_past_the_figures_edge(crossing_grid):
    table, front, metrics, every = crossing_grid
    long_title = "qwen2.5-coder-0.5b-instruct on reasoning_gym:chain_sum (forcing)"
    fig, _ = plot.accuracy_figure(table, front, PARAMS, long_title, 256, metrics, strategies=every)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    edge = fig.bbox
    drawn = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)  # every artist drawn, in pixels
    assert edge.x0 - 1 <= drawn.x0 and drawn.x1 <= edge.x1 + 1 and edge.y0 - 1 <= drawn.y0 and drawn.y1 <= edge.y1 + 1, (
        drawn, edge)
    legend = fig.axes[0].get_legend().get_window_extent(renderer)
    assert fig.axes[0].get_window_extent(renderer).contains(legend.x0, legend.y0)  # inside the axes, not beside


def test_the_caption_is_one_line_and_every_number_is_metrics_json(crossing_grid):
    table, front, metrics, every = crossing_grid
    law = {**metrics["law"], "identified": True, "slope_points_per_doubling": 12.345, "slope_lo": 5.5,
           "slope_hi": 19.25, "intercept_points": 0.0, "saturated": True, "saturation_log2_tokens": 8.5,
           "gain_after_saturation": 0.07, "after_saturation": "no significant gain (95%)"}
    shown = {**metrics, "law": law}
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, shown, strategies=every)
    caption = _caption(fig)
    assert "\n" not in caption
    assert "law +12.3 points per doubling (95% CI +5.5 to +19.2)" in caption
    assert f"saturates at ~{2 ** 8.5:,.0f} tokens, then no significant gain (95%) (+7.0 points)" in caption
    gain = 100 * metrics["crossover"]["gain_over_thinking_longer"]
    assert f"({gain:+.1f} points)" in caption
    values = (12.345, 5.5, 19.25, 2 ** 8.5, 7.0, metrics["crossover"]["tokens"], gain, 95)  # 95: the level
    traced = {f(v) for v in values for f in (lambda v: f"{v:+.1f}", lambda v: f"{v:,.0f}", lambda v: f"{v:.1f}")}
    numbers = re.findall(r"[-+]?\d[\d,]*(?:\.\d+)?", caption)
    assert set(numbers) <= traced, set(numbers) - traced


def test_a_law_that_is_not_printed_is_not_drawn_and_the_caption_says_why(crossing_grid):
    table, front, metrics, every = crossing_grid
    law = {**metrics["law"], "identified": False, "slope_points_per_doubling": None, "slope_lo": None,
           "slope_hi": None, "reason": law_fit.too_few_problems_reason(12)}
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, {**metrics, "law": law}, strategies=every)
    assert not _labelled(fig.axes[0], "_the law")
    assert _caption(fig).startswith("no law: too few problems to fit a law |")
    identified = {**metrics["law"], "identified": True, "slope_points_per_doubling": 10.0, "slope_lo": 5.0,
                  "slope_hi": 15.0, "intercept_points": 0.0}
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, {**metrics, "law": identified}, strategies=every)
    (fit,) = _labelled(fig.axes[0], "_the law")
    assert list(fit.get_ydata()) == pytest.approx([10 * x for x in fit.get_xdata()])


def test_the_regions_are_named_inside_the_axes_by_their_evidence(crossing_grid):
    table, front, metrics, every = crossing_grid
    for lo, hi, name in ((-0.01, 0.25, "no significant gain (95%)"), (0.02, 0.2, "still rising (95%)")):
        law = {**metrics["law"], "saturated": True, "saturation_log2_tokens": float(table["log2_tokens"].max()) - 1,
               "gain_after_saturation": 0.07, "gain_after_saturation_lo": lo, "gain_after_saturation_hi": hi,
               "after_saturation": name}
        fig, reg = plot.accuracy_figure(table, front, PARAMS, "t", 256, {**metrics, "law": law}, strategies=every)
        names = [t.get_text() for t in fig.axes[0].texts]
        assert name.replace(" (95%)", "") in names and "majority vote" in names
        assert reg.saturated


def test_no_crossover_draws_no_star_and_the_caption_says_so():
    table, metrics, every = vote.analyse(near_equal_spend_grid(False), PARAMS)
    fig, _ = plot.accuracy_figure(table, frontier.frontier_table(every), PARAMS, "t", 256, metrics, strategies=every)
    assert not _labelled(fig.axes[0], "crossover")
    assert _caption(fig).endswith("no crossover at equal spend")
