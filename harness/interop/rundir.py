"""Imported samples in, a run directory out: params.yaml, the problems, and a store holding every response.

Why a run directory and not a table: an imported pool then goes through the same stages as a native run
(`HARNESS_NO_REQUESTS=1 harness run` sends nothing, because every request the chain would build is already in
the store), so vote, plot, report and compare need no importer-specific code. The imported run is written as
`budgets.method: cap` with `prompt_template: "{problem}"`: the problem text is the exact prompt the other tool
sent, and each budget is the token cap the tool generated under. Responses go in only through the store's
public API (`ResponseStore.append_many`), keyed by the request `chain.first_request` builds.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..files import canonical_json
from ..params import Params
from ..requests.chain import first_request
from ..requests.store import ResponseStore

IMPORT_SHARD = "imported"
PROBLEMS_FILE = "problems.jsonl"
PROVENANCE_FILE = "imported.json"
# No server ever answers an imported run: every response is in store/. A discard-port URL, so a run that
# still lacked a response would fail to connect at once instead of reaching anything.
NO_SERVER_URL = "http://127.0.0.1:9/v1"
# What an import writes into DIR, and the only names `--force` removes before writing them again.
WRITTEN = ("params.yaml", PROBLEMS_FILE, PROVENANCE_FILE, "store", "outputs")

# How a sample's completion tokens were counted (column `tokens_counted` of samples.csv).
COUNT_LOGGED = "logged"  # the tool logged the model's own usage
COUNT_ESTIMATED = "estimated"  # no usage logged and no tokenizer given: estimated from the text (tokens.py)


class InteropError(ValueError):
    """An import or export that cannot proceed, phrased as the one line the user reads."""


@dataclass(frozen=True)
class ImportedSample:
    """One sample of another tool's log, in this harness's terms (everything a stored response needs)."""

    problem_id: str
    sample: int
    budget: int
    prompt: str
    response: str
    gold: str
    reasoning: str = ""
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    tokens_counted: str = COUNT_LOGGED


@dataclass(frozen=True)
class RunInfo:
    """What params.yaml says about the imported run beyond its samples."""

    model: str
    source: str  # the tool and file(s) the samples came from, for imported.json and the summary
    task: str


def refuse_overwrite(into: Path, force: bool) -> None:
    """An import never replaces a run already there unless `--force`; then only what an import writes goes."""
    present = sorted(name for name in WRITTEN if (into / name).exists())
    if present and not force:
        raise InteropError(f"{into}/ already holds a run ({', '.join(present)}); choose another --into, or add "
                           "--force to replace it")
    for name in present:
        path = into / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _problems(samples: list[ImportedSample]) -> list[dict[str, str]]:
    """One problem per id, in first-seen order; its prompt and gold answer must agree across samples."""
    seen: dict[str, dict[str, str]] = {}
    for s in samples:
        if not s.gold.strip():
            raise InteropError(f"problem {s.problem_id!r} sample {s.sample} has no gold answer; every sample needs "
                               "one to be graded (add it to the file)")
        row = seen.setdefault(s.problem_id, {"id": s.problem_id, "problem": s.prompt, "answer": s.gold})
        if row["problem"] != s.prompt:
            raise InteropError(f"problem {s.problem_id!r} was asked with two different prompts; one problem id "
                               "must have one prompt at every budget (give the variants their own ids)")
        if row["answer"] != s.gold:
            raise InteropError(f"problem {s.problem_id!r} has two gold answers ({row['answer']!r}, {s.gold!r})")
    return list(seen.values())


def _within_budgets(samples: list[ImportedSample]) -> None:
    """A budget is the cap the tokens ran under: a sample past it was generated under another one."""
    over = next((s for s in samples if s.completion_tokens is not None and s.completion_tokens > s.budget), None)
    if over is not None:
        raise InteropError(f"problem {over.problem_id!r} sample {over.sample} used {over.completion_tokens} tokens, "
                           f"more than its budget {over.budget}: the budget must be the token cap it was generated "
                           "under; give that cap with --budget N")


def _pools(samples: list[ImportedSample]) -> dict[int, int]:
    """Samples per problem at each budget: equal for every problem, numbered 0..n-1, each once."""
    by_cell = Counter((s.budget, s.problem_id) for s in samples)
    pools: dict[int, int] = {}
    for (budget, problem_id), n in sorted(by_cell.items()):
        if pools.setdefault(budget, n) != n:
            raise InteropError(f"budget {budget}: problem {problem_id!r} has {n} samples, another has "
                               f"{pools[budget]}; every problem needs the same pool at a budget")
    seen = Counter((s.budget, s.problem_id, s.sample) for s in samples)
    twice = next((key for key, n in seen.items() if n > 1), None)
    if twice is not None:
        raise InteropError(f"problem {twice[1]!r} budget {twice[0]} sample {twice[2]} appears twice")
    problems = {s.problem_id for s in samples}
    for budget, n in pools.items():
        if len({p for (b, p) in by_cell if b == budget}) != len(problems):
            raise InteropError(f"budget {budget} lacks some problems; every problem needs samples at every budget")
        bad = next((s for s in samples if s.budget == budget and not 0 <= s.sample < n), None)
        if bad is not None:
            raise InteropError(f"problem {bad.problem_id!r} budget {budget}: sample numbers must be 0..{n - 1}")
    return pools


def params_for(info: RunInfo, pools: dict[int, int]) -> dict[str, Any]:
    """The params.yaml of an imported run: the chain then builds exactly the requests the store holds."""
    budgets = sorted(pools)
    same = len(set(pools.values())) == 1
    return {
        "model": {"base_url": NO_SERVER_URL, "name": info.model, "api_key_env": None},
        "data": {"source": PROBLEMS_FILE, "limit": None, "answer_type": "any"},
        "budgets": {"method": "cap", "requested": budgets, "cap_field": "max_tokens", "prompt_template": "{problem}"},
        "sampling": {"samples": pools[budgets[0]] if same else dict(pools), "vote_samples": None,
                     "concurrency": 1, "seed": 0, "temperature": None, "top_p": None},
    }


def stored_pair(params: Params, sample: ImportedSample) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request the chain will build for this sample, and the response it will read back."""
    request = first_request(params, sample.prompt, sample.problem_id, sample.budget, sample.sample)
    response: dict[str, Any] = {"text": sample.response, "finish_reason": sample.finish_reason,
                                "completion_tokens": sample.completion_tokens, "tokens_counted": sample.tokens_counted}
    for name in ("reasoning_tokens", "prompt_tokens"):
        if getattr(sample, name) is not None:
            response[name] = getattr(sample, name)
    if sample.reasoning:
        response["reasoning"] = sample.reasoning
    return request, response


def write_run(samples: list[ImportedSample], info: RunInfo, into: Path, force: bool) -> Params:
    """Make `into` a run directory holding `samples` (checked whole before the first file is written)."""
    if not samples:
        raise InteropError(f"{info.source}: no samples to import")
    if any("{budget}" in s.prompt for s in samples):
        raise InteropError("a prompt contains the text {budget}, which the harness would replace; edit it out")
    problems = _problems(samples)
    _within_budgets(samples)
    raw = params_for(info, _pools(samples))
    params = Params.model_validate(raw)
    refuse_overwrite(into, force)
    into.mkdir(parents=True, exist_ok=True)
    (into / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    (into / PROBLEMS_FILE).write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in problems))
    counted = Counter(s.tokens_counted for s in samples)
    (into / PROVENANCE_FILE).write_text(canonical_json({"source": info.source, "task": info.task, "model": info.model,
                                                        "samples": len(samples), "tokens_counted": dict(counted)}) + "\n")
    store = ResponseStore(into / "store", IMPORT_SHARD)
    store.append_many([stored_pair(params, s) for s in samples])
    return params
