"""`harness import jsonl`: anyone's own samples, one JSON object a line, in the schema docs/interop.md documents.

Required per line: `problem_id`, `prompt`, `response`, `gold`, and `budget` (or `--budget` for every line).
Optional: `sample` (else numbered in file order per problem and budget), `reasoning`, `completion_tokens`,
`reasoning_tokens`, `prompt_tokens`, `finish_reason`. Lines without `completion_tokens` are estimated.
Every Eval Ever's single-turn instance rows are accepted too, one sample per response of `output.raw`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .rundir import COUNT_ESTIMATED, COUNT_LOGGED, ImportedSample, InteropError
from .tokens import estimate_tokens

REQUIRED = ("problem_id", "prompt", "response", "gold")
OPTIONAL_INTS = ("sample", "completion_tokens", "reasoning_tokens", "prompt_tokens")
OPTIONAL_TEXTS = ("reasoning", "finish_reason")
KNOWN = {*REQUIRED, "budget", *OPTIONAL_INTS, *OPTIONAL_TEXTS}
EXPECTED = ("expected one JSON object a line with problem_id, budget, prompt, response, gold "
            "(the schema in docs/interop.md)")
# Keys that give another tool's file away, and the command that reads it.
OTHER_FORMATS = {"resps": "lm-eval", "doc_id": "lm-eval", "epochs": "inspect", "eval": "inspect"}


def read_rows(path: Path, expected: str = EXPECTED) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line, or one line naming the file and what was expected."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InteropError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InteropError(f"{path}: not UTF-8 text; {expected}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InteropError(f"{path}:{number}: not JSON; {expected}") from None
        if not isinstance(row, dict):
            raise InteropError(f"{path}:{number}: not a JSON object; {expected}")
        rows.append((number, row))
    if not rows:
        raise InteropError(f"{path}: empty; {expected}")
    return rows


def _check_row(path: Path, number: int, row: dict[str, Any], budget: int | None) -> None:
    other = next((tool for key, tool in OTHER_FORMATS.items() if key in row), None)
    if other is not None and not set(REQUIRED) <= set(row):
        raise InteropError(f"{path}: looks like {other}'s output, not the harness JSONL schema; use "
                           f"`harness import {other}`")
    missing = [key for key in REQUIRED if key not in row]
    if missing:
        raise InteropError(f"{path}:{number}: missing {', '.join(missing)}; {EXPECTED}")
    if "budget" not in row and budget is None:
        raise InteropError(f"{path}:{number}: no budget; add `budget` to every line or give --budget N")
    for key in ("prompt", "response"):
        if not isinstance(row[key], str):
            raise InteropError(f"{path}:{number}: {key} must be a string")
    for key in ("budget", *OPTIONAL_INTS):
        value = row.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InteropError(f"{path}:{number}: {key} = {value!r} must be a non-negative integer")
    if row.get("budget") == 0:
        raise InteropError(f"{path}:{number}: budget must be a positive number of tokens")


def sample_of(row: dict[str, Any], budget: int, number: int) -> ImportedSample:
    logged = row.get("completion_tokens") is not None
    text = (row.get("reasoning") or "") + row["response"]
    return ImportedSample(
        problem_id=str(row["problem_id"]), sample=number, budget=budget, prompt=row["prompt"],
        response=row["response"], gold=str(row["gold"]).strip() if row["gold"] is not None else "",
        reasoning=row.get("reasoning") or "",
        completion_tokens=row["completion_tokens"] if logged else estimate_tokens(text),
        reasoning_tokens=row.get("reasoning_tokens"), prompt_tokens=row.get("prompt_tokens"),
        finish_reason=row.get("finish_reason") or "stop",
        tokens_counted=COUNT_LOGGED if logged else COUNT_ESTIMATED,
    )


# Every Eval Ever (EvalEval coalition): its instance-level rows, `instance_level_eval.schema.json`
EEE_SCHEMA = "instance_level_eval"


def eee_rows(path: Path, number: int, row: dict[str, Any], budget: int | None) -> list[dict[str, Any]]:
    """An Every Eval Ever single-turn instance row as rows of our schema, one per response in `output.raw`.

    The schema has no budget: `metadata.token_budget` (its metadata values are strings) or --budget. Its
    `token_usage` is per row: kept when the row holds one response, else each response is estimated.
    """
    if row.get("interaction_type") != "single_turn" or not isinstance(row.get("output"), dict):
        raise InteropError(f"{path}:{number}: an Every Eval Ever row of type {row.get('interaction_type')!r}; "
                           "only single_turn rows (with output.raw) can be imported")
    found = str((row.get("metadata") or {}).get("token_budget") or "")
    at = budget or (int(found) if found.isdigit() else None)
    if at is None:
        raise InteropError(f"{path}:{number}: no metadata.token_budget; give the budget with --budget N")
    inp, out = row.get("input") or {}, row["output"]
    responses = [str(r) for r in out.get("raw") or []]
    traces = out.get("reasoning_trace") or []
    usage = row.get("token_usage") or {}
    reference = inp.get("reference") or [None]
    return [{"problem_id": row.get("sample_id"), "budget": at, "prompt": inp.get("formatted") or inp.get("raw") or "",
             "response": text, "gold": reference[0],
             "reasoning": traces[i] if len(traces) == len(responses) else None,
             "completion_tokens": usage.get("output_tokens") if len(responses) == 1 else None,
             "reasoning_tokens": usage.get("reasoning_tokens") if len(responses) == 1 else None}
            for i, text in enumerate(responses)]


def our_rows(path: Path, budget: int | None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row in our schema): Every Eval Ever rows are converted, ours pass as they are."""
    rows = []
    for number, row in read_rows(path):
        if str(row.get("schema_version", "")).startswith(EEE_SCHEMA):
            rows += [(number, {k: v for k, v in r.items() if v is not None}) for r in eee_rows(path, number, row, budget)]
        else:
            rows.append((number, row))
    return rows


def read_samples(path: Path, budget: int | None) -> list[ImportedSample]:
    """Every line of `path` as a sample, checked line by line before anything is written."""
    numbered: Counter[tuple[str, int]] = Counter()
    samples = []
    for number, row in our_rows(path, budget):
        _check_row(path, number, row, budget)
        at = row.get("budget") or budget
        assert at is not None  # _check_row made sure
        cell = (str(row["problem_id"]), at)
        index = row["sample"] if row.get("sample") is not None else numbered[cell]
        numbered[cell] += 1
        samples.append(sample_of(row, at, index))
    return samples
