"""The few lines a user reads after `harness run` or `harness reproduce`: what the run rests on and found.

Why from files: `harness reproduce` runs each stage in a DVC subprocess, so the summary reads what the
stages wrote (the sample table, the metrics, the dataset record) plus how many records the store gained
while the command ran. It never talks to a model and never writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .analysis.bill import billed_tokens, dollars_by_billing
from .budget_axis import as_budget, budget_rank
from .files import ACCURACY_PNG, CALIBRATION_PNG, DATASET_INFO, METRICS, SAMPLES, THINKING_PNG, read_json
from .params import Params
from .stages.sample import STATUSES


@dataclass(frozen=True)
class RunFacts:
    """What the summary reports, gathered from the run's files (pure data, so the wording is testable)."""

    problems: int | None
    source: str | None
    statuses: dict[str, int]
    requests_total: int
    requests_sent: int
    completion_tokens: int
    prompt_tokens: int
    input_tokens: int  # every request's prompt, the text a chain sends again with each later request included
    billed: dict[str, dict[str, int]]  # bill.billed_tokens of the sample table: live/batch x input/cached/output
    law: dict[str, Any]
    seconds: float
    crossover: dict[str, Any] | None = None  # metrics.json's: its `statement` is the summary's line
    thinking: dict[str, Any] = field(default_factory=dict)  # metrics.json `thinking`
    adaptive: dict[str, Any] = field(default_factory=dict)  # metrics.json `adaptive`
    vote_budget: Any = None  # metrics.json `vote_budget`: where the stopping rules are summarised
    frontier: dict[str, Any] = field(default_factory=dict)  # metrics.json `frontier`: over every strategy
    measured_to: float | None = None  # the most tokens a point of the law's path spent (metrics.json tokens_by_k)


def gather(sent: int, seconds: float) -> RunFacts:
    """Read the finished run's outputs; `sent` is how many responses the store gained during the command."""
    samples = pd.read_csv(SAMPLES, dtype={"answer": str}) if SAMPLES.exists() else pd.DataFrame()
    dataset = read_json(DATASET_INFO)
    counts = samples["status"].value_counts().to_dict() if len(samples) else {}
    metrics = read_json(METRICS)
    return RunFacts(
        problems=dataset.get("problems"),
        source=dataset.get("source"),
        statuses={s: int(counts[s]) for s in STATUSES if s in counts},
        requests_total=_sum(samples, "requests"),
        requests_sent=sent,
        completion_tokens=_sum(samples, "completion_tokens"),
        prompt_tokens=_sum(samples, "prompt_tokens"),
        input_tokens=_sum(samples, "input_tokens"),
        billed=billed_tokens(samples),
        law=metrics.get("law", {}),
        seconds=seconds,
        crossover=metrics.get("crossover"),
        thinking=metrics.get("thinking", {}),
        adaptive=metrics.get("adaptive", {}),
        vote_budget=metrics.get("vote_budget"),
        frontier=metrics.get("frontier", {}),
        measured_to=max(metrics.get("tokens_by_k", {}).values(), default=None),
    )


def _sum(frame: pd.DataFrame, column: str) -> int:
    return int(frame[column].fillna(0).sum()) if column in frame else 0


def dollars(facts: RunFacts, params: Params) -> dict[str, float] | None:
    """What the figure's tokens cost at `prices`, live and batch: the figures of metrics.json's `cost`
    (None when no price is set: a local model is free)."""
    if not params.prices.is_set:
        return None
    return dollars_by_billing(facts.billed, params.prices)


def lines(facts: RunFacts, params: Params) -> list[str]:
    """The summary, one fact per line, in the order a reader asks: what, how much, what it found, where."""
    total = sum(facts.statuses.values())
    by_status = ", ".join(f"{name} {count}" for name, count in facts.statuses.items()) or "none"
    replayed = max(facts.requests_total - facts.requests_sent, 0)
    cost = dollars(facts, params)
    return [
        "summary:",
        f"  problems     {facts.problems if facts.problems is not None else '?'} ({facts.source or 'unknown source'})",
        f"  samples      {total}: {by_status}",
        f"  requests     {facts.requests_sent} sent to the model, {replayed} replayed from the store",
        f"  tokens       {_tokens(facts)}",
        f"  cost         {_cost(cost, facts)}",
        f"  wall time    {_duration(facts.seconds)}",
        f"  law          {_law(facts.law)}",
        f"  saturation   {_saturation(facts.law, facts.measured_to)}",
        f"  frontier     {_frontier(facts.frontier)}",
        f"  crossover    {_crossover(facts.crossover)}",
        f"  thinking     {_thinking(facts.thinking)}",
        f"  stop early   {_stop_early(facts.adaptive, facts.vote_budget)}",
        f"  figures      {ACCURACY_PNG}, {CALIBRATION_PNG}, {THINKING_PNG}",
    ]


def _thinking(thinking: dict[str, Any]) -> str:
    """Per budget: the share that hit the cap and the median thinking tokens; the tokens to a first correct
    answer at the largest budget."""
    by_budget = by_budget_order(thinking.get("by_budget", {}))
    if not by_budget:
        return "not measured"
    parts = []
    for budget, m in by_budget.items():
        share, median = m.get("capped_share"), m["thinking_tokens"].get("p50")
        parts.append(f"{budget}: {'?' if share is None else f'{100 * share:.0f}%'} capped, median "
                     f"{'?' if median is None else f'{median:,.0f}'}")
    last, m = list(by_budget.items())[-1]
    first = m["first_correct"]
    never = first["problems_without"]
    where = (f"; first correct at {last} after {first['mean_tokens']:,.0f} tokens on average "
             f"({never} problem{'' if never == 1 else 's'} never)" if first.get("mean_tokens") is not None
             else f"; no correct answer at {last}")
    ignored = thinking.get("budget_ignored")
    return ", ".join(parts) + where + (f"; WARNING: {ignored}" if ignored else "")


def by_budget_order(by_budget: dict[str, Any]) -> dict[str, Any]:
    """metrics.json keys are sorted as text ("128" before "16"): back in budget order."""
    return dict(sorted(by_budget.items(), key=lambda item: budget_rank(as_budget(item[0]))))


def _stop_early(adaptive: dict[str, Any], vote_budget: Any) -> str:
    """Each stopping rule at the vote budget against the vote over the whole pool there."""
    key = str(vote_budget)
    rules = {label: r["by_budget"][key] for label, r in adaptive.get("rules", {}).items() if key in r["by_budget"]}
    if not rules:
        return "no stopping rule evaluated (vote.adaptive; pools of one sample cannot stop early)"
    whole = next(iter(rules.values()))["whole_pool"]
    parts = [f"{label} {100 * r['accuracy']:.1f}% with {r['mean_samples']:.1f} samples" for label, r in rules.items()]
    return (f"at {key}: " + ", ".join(parts) + f"; all {whole['mean_samples']:.0f}: {100 * whole['maj_at_k']:.1f}%")


def _cost(cost: dict[str, float] | None, facts: RunFacts) -> str:
    if cost is None:
        return "no prices set in params.yaml (prices)"
    text = f"${sum(cost.values()):,.2f}"
    cached = sum(t["cached_input_tokens"] for t in facts.billed.values())
    details = ([f"${cost['batch']:,.2f} of it in batches"] if facts.billed["batch"]["output_tokens"] else []) + (
        [f"{cached:,} input tokens cached"] if cached else [])
    return text + (f" ({'; '.join(details)})" if details else "")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s" if minutes else f"{seconds:.1f} s"


def _law(law: dict[str, Any]) -> str:
    slope = law.get("slope_points_per_doubling")
    if law.get("identified") is False:
        return f"not printed: {law.get('reason', 'the data do not carry a slope')}"
    if slope is None:
        return f"no slope ({law.get('reason', 'too few points rise above the floor')})"
    lo, hi = law.get("slope_lo"), law.get("slope_hi")
    interval = f" (95% CI {lo:+.1f} to {hi:+.1f})" if lo is not None and hi is not None else " (no interval)"
    return f"{slope:+.1f} accuracy points per doubling of tokens{interval}"


def _tokens(facts: RunFacts) -> str:
    """Completion and input tokens, as metrics.json `cost` counts them. Why both input figures: a sample's
    prompt is sent once per request of its chain (a forced answer sends the prompt and the thinking again),
    so the input billed is more than the prompts; the prompts alone were the only figure here once, and did
    not match metrics.json."""
    return (f"{facts.completion_tokens:,} completion, {facts.input_tokens:,} input "
            f"({facts.prompt_tokens:,} of it first prompts; a chain's later requests send them again)")


def _saturation(law: dict[str, Any], measured_to: float | None = None) -> str:
    """Where the fitted rise ends, and whether a measured point lies beyond it: a saturation point inside
    the measured tokens with no point after it is located, not yet seen as a plateau."""
    at = law.get("saturation_log2_tokens")
    if at is None:
        return "not located (the law's rise was not measured: see law)"
    where = f"log2 tokens {at:.2f} (~{2 ** at:,.0f} tokens)"
    lo, hi = law.get("saturation_log2_tokens_lo"), law.get("saturation_log2_tokens_hi")
    interval = f" (95% CI {lo:.2f} to {hi:.2f})" if lo is not None and hi is not None else " (no interval)"
    if not law.get("saturated"):
        if measured_to is None or 2 ** at > measured_to:
            return f"not reached in the measured tokens: the fitted rise ends at {where}"
        return (f"not established: the fitted rise ends at {where}, and only the last measured point "
                f"({measured_to:,.0f} tokens) lies past it, so no gain after it is measured")
    gain, g_lo, g_hi = (law.get(f"gain_after_saturation{end}") for end in ("", "_lo", "_hi"))
    after = law.get("after_saturation")
    if not after or gain is None or g_lo is None or g_hi is None:
        return f"at {where}{interval}"
    return (f"at {where}{interval}; after it: {after}, {100 * gain:+.1f} points "
            f"(95% CI {100 * g_lo:+.1f} to {100 * g_hi:+.1f})")


def _frontier(frontier: dict[str, Any]) -> str:
    """The frontier over every strategy: how many points, from what to what, and which strategies beyond a
    fixed vote are on it."""
    points = sorted(frontier.get("points", {}).values(), key=lambda p: p["tokens"] or 0)
    if not points:
        return "not computed (no metrics.json)"
    first, last = points[0], points[-1]
    rules = sorted({p["rule"] for p in points if p.get("rule") not in (None, "fixed")})
    on = f"; on it besides fixed votes: {', '.join(rules)}" if rules else ""
    return (f"{len(points)} points, {100 * first['maj_at_k']:.1f}% at {first['tokens']:,.0f} tokens to "
            f"{100 * last['maj_at_k']:.1f}% at {last['tokens']:,.0f} (outputs/frontier.csv){on}")


def _crossover(crossover: dict[str, Any] | None) -> str:
    if not crossover:
        return "not computed (no metrics.json)"
    return str(crossover.get("statement") or ("none: " + str(crossover.get("reason", "no reason given"))))
