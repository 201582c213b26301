"""What a sample table cost in dollars: its billed tokens, live and batch, times `prices`.

Why one module: metrics.json (`cost`), the run summary and `harness estimate` must show the same figures,
so they all price tokens with `PriceParams.dollars` and the first two sum the same columns of the same
table, here. Output tokens are `completion_tokens` (reasoning tokens included, as providers bill them);
input tokens are every request's prompt tokens (`input_tokens`), of which `cached_input_tokens` are
billed at the cached price. A sample answered through a Batch API (`billing` = batch) is priced at
`prices.batch_discount` off. A chain answered partly live, partly in a batch is priced live (an upper bound).
A table written before these columns existed is priced from `prompt_tokens`, all live and uncached.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..params import PriceParams

BILLINGS = ("live", "batch")


def _column(frame: pd.DataFrame, name: str, fallback: str | None = None) -> pd.Series:
    if name not in frame and fallback is not None:
        name = fallback
    if name not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce").fillna(0.0)


def billed_tokens(samples: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{billing: {input_tokens, cached_input_tokens, output_tokens}} over the table (failed rows bill 0)."""
    billing = samples["billing"].fillna("live").astype(str) if "billing" in samples else \
        pd.Series("live", index=samples.index)
    columns = {"input_tokens": _column(samples, "input_tokens", fallback="prompt_tokens"),
               "cached_input_tokens": _column(samples, "cached_input_tokens"),
               "output_tokens": _column(samples, "completion_tokens")}
    return {kind: {name: int(values[billing == kind].sum()) for name, values in columns.items()}
            for kind in BILLINGS}


def dollars_by_billing(tokens: dict[str, dict[str, int]], prices: PriceParams) -> dict[str, float]:
    return {kind: prices.dollars(t["input_tokens"], t["output_tokens"], t["cached_input_tokens"],
                                 batch=kind == "batch")
            for kind, t in tokens.items()}


def cost_section(samples: pd.DataFrame, prices: PriceParams) -> dict[str, Any]:
    """The dollar part of metrics.json's `cost`: tokens as billed, the prices, and what they come to."""
    tokens = billed_tokens(samples)
    dollars = dollars_by_billing(tokens, prices)
    return {
        "dollars": round(sum(dollars.values()), 6),
        "dollars_live": round(dollars["live"], 6),
        "dollars_batch": round(dollars["batch"], 6),
        "input_tokens": sum(t["input_tokens"] for t in tokens.values()),
        "cached_input_tokens": sum(t["cached_input_tokens"] for t in tokens.values()),
        "output_tokens": sum(t["output_tokens"] for t in tokens.values()),
        "batch_input_tokens": tokens["batch"]["input_tokens"],
        "batch_cached_input_tokens": tokens["batch"]["cached_input_tokens"],
        "batch_output_tokens": tokens["batch"]["output_tokens"],
        "prices": {"input_per_million": prices.input_per_million,
                   "cached_input_per_million": prices.cached_price,
                   "output_per_million": prices.output_per_million,
                   "batch_discount": prices.batch_discount},
    }
