"""The accuracy figure draws what the vote stage wrote: the frontier as frontier.csv holds it, the crossover
of metrics.json as a marked point with its interval, the law or why none is printed, the region
past saturation named by its evidence, and a legend that covers no data."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from grids import near_equal_spend_grid

from harness import law as law_fit
from harness import plot, vote
from harness.params import Params

matplotlib.use("Agg")
PARAMS = Params.model_validate({"data": {"answer_type": "any"}, "budgets": {"requested": [16, 32, 64, 128, 256]}})


@pytest.fixture(scope="module")
def crossing_grid():
    table, metrics = vote.compute(near_equal_spend_grid(True), PARAMS)
    return table, vote.frontier_table(table), metrics


def _labelled(ax, prefix: str):
    return [line for line in ax.get_lines() if str(line.get_label()).startswith(prefix)]


def test_the_crossover_of_metrics_json_is_a_marked_point_with_its_interval(crossing_grid):
    table, front, metrics = crossing_grid
    crossover = metrics["crossover"]
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, metrics)
    ax = fig.axes[0]
    (star,) = _labelled(ax, "crossover:")
    assert star.get_xdata()[0] == pytest.approx(math.log2(crossover["tokens"]))
    assert star.get_ydata()[0] == pytest.approx(100 * crossover["maj_at_k"])
    assert f"from {crossover['tokens']:,.0f} tokens" in star.get_label()
    bar = [line for line in ax.get_lines() if list(line.get_ydata()) == [100 * crossover["maj_at_k"]] * 2]
    assert bar and bar[0].get_xdata()[0] == pytest.approx(math.log2(crossover["tokens_lo"]))


def test_the_frontier_drawn_is_frontier_csv_not_a_recomputation(crossing_grid):
    table, front, metrics = crossing_grid
    edited = front.iloc[:-1]  # a frontier.csv that differs from what the curve would give
    fig, _ = plot.accuracy_figure(table, edited, PARAMS, "t", 256, metrics)
    (step,) = _labelled(fig.axes[0], "compute-optimal frontier")
    np.testing.assert_allclose(step.get_xdata(), edited["log2_tokens"])
    np.testing.assert_allclose(step.get_ydata(), 100 * edited["maj_at_k"])


def test_the_legend_covers_no_data(crossing_grid):
    table, front, metrics = crossing_grid
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, metrics)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent()), "the legend sits outside the axes"


def test_the_region_past_saturation_is_named_by_its_gain_interval(crossing_grid):
    table, front, metrics = crossing_grid
    for lo, hi, name in ((-0.01, 0.25, "no significant gain (95%)"), (0.02, 0.2, "still rising (95%)")):
        law = {**metrics["law"], "saturated": True, "saturation_log2_tokens": float(table["log2_tokens"].max()) - 1,
               "gain_after_saturation": 0.07, "gain_after_saturation_lo": lo, "gain_after_saturation_hi": hi,
               "after_saturation": name}
        fig, reg = plot.accuracy_figure(table, front, PARAMS, "t", 256, {**metrics, "law": law})
        labels = [p.get_label() for p in fig.axes[0].patches]
        assert f"past saturation: {name}, +7.0 points (95% CI {100 * lo:+.1f} to {100 * hi:+.1f})" in labels
        assert reg.saturated


def test_a_law_that_is_not_identified_is_not_drawn_and_the_figure_says_so(crossing_grid):
    table, front, metrics = crossing_grid
    law = {**metrics["law"], "identified": False, "slope_points_per_doubling": None, "slope_lo": None,
           "slope_hi": None, "reason": law_fit.too_few_problems_reason(12)}
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, {**metrics, "law": law})
    ax = fig.axes[0]
    assert _labelled(ax, "no law printed: too few problems to fit a law")
    assert not _labelled(ax, "fit:")
    identified = {**metrics["law"], "identified": True, "slope_points_per_doubling": 10.0, "slope_lo": 5.0,
                  "slope_hi": 15.0, "intercept_points": 0.0}
    fig, _ = plot.accuracy_figure(table, front, PARAMS, "t", 256, {**metrics, "law": identified})
    (fit,) = _labelled(fig.axes[0], "fit: +10.0 points per doubling (95% CI +5.0 to +15.0)")
    assert list(fit.get_ydata()) == pytest.approx([10 * x for x in fit.get_xdata()])


def test_no_crossover_is_said_in_the_legend():
    table, metrics = vote.compute(near_equal_spend_grid(False), PARAMS)
    fig, _ = plot.accuracy_figure(table, vote.frontier_table(table), PARAMS, "t", 256, metrics)
    assert _labelled(fig.axes[0], "no crossover at equal spend")
    assert not _labelled(fig.axes[0], "crossover:")
