"""inspect_ai's logs: `harness export inspect` writes one log per budget with inspect_ai's own `write_eval_log`;
`harness import inspect` reads `.eval` and `.json` logs (epochs are the pool) into a run directory.

inspect-ai is an optional extra (`pip install 'scaling-harness[interop]'`), imported only here and only when
one of these commands runs: nothing else in the harness needs it, and its fsspec pin conflicts with the lock's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from ..budget_axis import Budget
from ..data import read_problems
from ..files import SAMPLES, store_dir
from ..params import Params
from ..requests.chain import Fetch, Job, Outcome, render_prompt, stored, walk
from ..requests.store import ResponseStore, request_key
from .rundir import COUNT_LOGGED, PROVENANCE_FILE, ImportedSample, InteropError, RunInfo

INSTALL = "inspect-ai is not installed: pip install 'scaling-harness[interop]' (or `nox -s interop`), then rerun"
# A fixed creation time: the same run exports the same log contents (inspect's viewer lists logs by it).
CREATED = "2000-01-01T00:00:00+00:00"
# inspect names models <api>/<model> and refuses other names (even `inspect score` with a model-free scorer):
# an exported model without an api is logged under this one, and an import takes the prefix off again
MODEL_API = "harness/"
EXPECTED = "expected an inspect_ai log (.eval or .json) written by inspect eval"


def inspect_log_module() -> Any:
    try:
        import inspect_ai.log
    except ImportError:
        raise InteropError(INSTALL) from None
    return inspect_ai.log


def recording(fetch: Fetch, keys: list[str]) -> Fetch:
    """The store's fetch, noting the key of every request a sample's chain reads (its metadata)."""

    async def fetch_noted(request: dict[str, Any]) -> dict[str, Any]:
        keys.append(request_key(request))
        return await fetch(request)

    return fetch_noted


def replayed(params: Params, rows: pd.DataFrame) -> list[tuple[Outcome, list[str]]]:
    """Each answered sample of samples.csv walked again over the store (nothing is sent), with its keys."""
    problems = {p["id"]: p for p in read_problems()}
    fetch = stored(ResponseStore(store_dir(), "sample", readonly=True))

    async def walk_all() -> list[tuple[Outcome, list[str]]]:
        out = []
        for row in rows.itertuples():
            problem = problems[str(row.problem_id)]
            job = Job(problem["id"], problem["problem"], problem["answer"], _budget(row.budget), int(row.sample))
            keys: list[str] = []
            out.append((await walk(params, job, recording(fetch, keys)), keys))
        return out

    return asyncio.run(walk_all())


def _budget(value: Any) -> Budget:
    return int(value) if str(value).isdigit() else str(value)


def inspect_model(params: Params) -> str:
    name = params.model.name
    return name if "/" in name else MODEL_API + name


def usage(outcome: Outcome) -> Any:
    from inspect_ai.model import ModelUsage

    out, inp = outcome.completion_tokens or 0, outcome.input_tokens or 0
    return ModelUsage(input_tokens=inp, output_tokens=out, total_tokens=inp + out,
                      reasoning_tokens=outcome.reasoning_tokens)


def eval_sample(params: Params, outcome: Outcome, keys: list[str], row: Any) -> Any:
    """One sample as inspect logs it: the thinking as ContentReasoning, the answer as ContentText, our grade."""
    from inspect_ai.log import EvalSample
    from inspect_ai.model import (
        ChatCompletionChoice,
        ChatMessageAssistant,
        ChatMessageUser,
        ContentReasoning,
        ContentText,
        ModelOutput,
    )
    from inspect_ai.scorer import Score

    job = outcome.job
    prompt = render_prompt(params.prompt_template, job.problem, job.budget)
    content = ([ContentReasoning(reasoning=outcome.reasoning)] if outcome.reasoning else []) + [
        ContentText(text=outcome.answer)]
    reply = ChatMessageAssistant(content=content, model=inspect_model(params))
    stop = "max_tokens" if outcome.finish_reason == "length" else "stop"
    answer = None if pd.isna(row.answer) else str(row.answer)
    return EvalSample(
        id=job.problem_id, epoch=job.sample + 1, input=prompt, target=job.gold,
        messages=[ChatMessageUser(content=prompt), reply],
        output=ModelOutput(model=inspect_model(params), choices=[ChatCompletionChoice(message=reply, stop_reason=stop)],
                           usage=usage(outcome)),
        scores={"match": Score(value="C" if bool(row.correct) else "I", answer=answer)},
        metadata={"budget": job.budget, "method": params.budgets.method, "store_keys": keys},
        model_usage={inspect_model(params): usage(outcome)},
    )


def results_metadata(budget: Budget) -> dict[str, Any]:
    """maj@k at this budget (outputs/curve.csv) and the run's frontier (outputs/frontier.csv), as plain JSON."""
    curve = pd.read_csv(SAMPLES.parent / "curve.csv")
    at = curve[curve["budget"].astype(str) == str(budget)]
    frontier_path = SAMPLES.parent / "frontier.csv"
    frontier = pd.read_csv(frontier_path).to_dict("records") if frontier_path.exists() else []
    return {"maj_at_k": {str(int(r.k)): float(r.maj_at_k) for r in at.itertuples()},
            "frontier": [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frontier]}


def task_name(params: Params) -> str:
    """One task for every budget (inspect's viewer groups by it): an imported run's own, else the data source."""
    provenance = Path(PROVENANCE_FILE)
    if provenance.exists():
        return str(json.loads(provenance.read_text(encoding="utf-8"))["task"])
    return params.data.source


def budget_log(params: Params, budget: Budget, walked: list[tuple[Outcome, list[str]]], rows: pd.DataFrame) -> Any:
    """The EvalLog of one budget: epochs = the pool, results = accuracy (k = 1) plus maj@k and the frontier."""
    log = inspect_log_module()
    from inspect_ai.model import GenerateConfig

    samples = [eval_sample(params, o, keys, row) for (o, keys), row in zip(walked, rows.itertuples(), strict=True)]
    accuracy = float(rows["correct"].astype(bool).mean())
    ids = list(dict.fromkeys(str(p) for p in rows["problem_id"]))
    task = task_name(params)
    digest = hashlib.sha256(f"{params.model.name}:{task}:{params.budgets.method}:{budget}".encode()).hexdigest()[:22]
    spec = log.EvalSpec(
        eval_id=digest, run_id=digest, task_id=digest, created=CREATED, task=task, model=inspect_model(params),
        dataset=log.EvalDataset(name=params.data.source, samples=len(ids), sample_ids=ids),
        config=log.EvalConfig(epochs=int(rows["sample"].max()) + 1),
        model_generate_config=GenerateConfig(max_tokens=budget if isinstance(budget, int) else None),
        metadata={"token_budget": budget, "method": params.budgets.method, "exported_by": "scaling-harness"},
    )
    scores = [log.EvalScore(name="match", scorer="match", metrics={"accuracy": log.EvalMetric(name="accuracy",
                                                                                               value=accuracy)})]
    return log.EvalLog(eval=spec, status="success", samples=samples,
                       results=log.EvalResults(total_samples=len(samples), completed_samples=len(samples),
                                               scores=scores, metadata=results_metadata(budget)))


def export_command(params: Params, out: str, fmt: str = "eval") -> None:
    """`harness export inspect`: one log per budget of this run, written by inspect_ai's own writer."""
    log = inspect_log_module()
    if not SAMPLES.exists():
        raise InteropError(f"{SAMPLES} not found: export reads a finished run; run `harness run` first")
    frame = pd.read_csv(SAMPLES, dtype={"problem_id": str, "budget": str})
    frame = frame[frame["status"] != "failed-after-retries"]
    Path(out).mkdir(parents=True, exist_ok=True)
    for budget in params.budgets.requested:
        rows = frame[frame["budget"] == str(budget)].reset_index(drop=True)
        if rows.empty:
            continue
        path = Path(out) / f"{params.model.name}_{params.budgets.method}_{budget}.{fmt}".replace("/", "-")
        log.write_eval_log(budget_log(params, budget, replayed(params, rows), rows), str(path), format=fmt)
        print(f"export inspect: budget {budget}: {len(rows)} samples -> {path}")
    print(f"open them with: inspect view --log-dir {out}")


def _text(content: Any) -> tuple[str, str]:
    """(thinking, answer) of a message's content: ContentReasoning parts, and the text parts."""
    if isinstance(content, str):
        return "", content
    thinking = "".join(getattr(c, "reasoning", "") or "" for c in content if getattr(c, "type", "") == "reasoning")
    answer = "".join(getattr(c, "text", "") or "" for c in content if getattr(c, "type", "") == "text")
    return thinking, answer


def _prompt(value: Any) -> str:
    if isinstance(value, str):
        return value
    users = [m for m in value if getattr(m, "role", "") == "user"]
    return _text(users[-1].content)[1] if users else ""


def sample_budget(log: Any, sample: Any, flag: int | None, path: Path) -> int:
    """The flag, else metadata.token_budget (the sample's, then the log's), else generate_config.max_tokens."""
    found = flag or (sample.metadata or {}).get("token_budget") or (log.eval.metadata or {}).get("token_budget")
    found = found or log.eval.model_generate_config.max_tokens or (log.plan.config.max_tokens if log.plan else None)
    if not isinstance(found, int) or found <= 0:
        raise InteropError(f"{path}: no metadata.token_budget or generate_config.max_tokens to take the budget "
                           "from; give it with --budget N")
    return found


def imported(log: Any, sample: Any, budget: int, index: int) -> ImportedSample:
    """One epoch of one sample; tokens from its ModelUsage (output tokens, reasoning included)."""
    thinking, answer = _text(sample.output.choices[0].message.content) if sample.output.choices else ("", "")
    used = list((sample.model_usage or {}).values())
    total = (lambda name: sum(getattr(u, name) or 0 for u in used) if used else None)
    target = sample.target[0] if isinstance(sample.target, list) and sample.target else sample.target
    stop = sample.output.choices[0].stop_reason if sample.output.choices else None
    return ImportedSample(
        problem_id=str(sample.id), sample=index, budget=budget, prompt=_prompt(sample.input), response=answer,
        gold=str(target or "").strip(), reasoning=thinking, completion_tokens=total("output_tokens"),
        reasoning_tokens=total("reasoning_tokens"), prompt_tokens=total("input_tokens"),
        finish_reason="length" if stop == "max_tokens" else "stop", tokens_counted=COUNT_LOGGED,
    )


def read_one(path: Path) -> Any:
    log = inspect_log_module()
    if not path.exists():
        raise InteropError(f"{path}: no such file")
    try:
        return log.read_eval_log(str(path))
    except Exception as exc:  # noqa: BLE001 - inspect raises zip, JSON, validation errors alike for a foreign file
        raise InteropError(f"{path}: cannot be read as an inspect log ({type(exc).__name__}); {EXPECTED}") from None


def read_inspect(paths: list[Path], task: str | None, budget: int | None) -> tuple[list[ImportedSample], RunInfo]:
    """Every sample of the logs of one task; several logs at one budget add to its pool, in file order."""
    logs = [(p, read_one(p)) for p in paths]
    tasks = sorted({lg.eval.task for _, lg in logs})
    if task is None and len(tasks) > 1:
        raise InteropError(f"the logs hold {len(tasks)} tasks ({', '.join(tasks)}); one run is one task: import "
                           "each with --task NAME into its own --into DIR")
    chosen = [(p, lg) for p, lg in logs if task is None or lg.eval.task == task]
    if not chosen:
        raise InteropError(f"--task {task}: no log of that task; the logs hold {', '.join(tasks)}")
    numbered: Counter[tuple[int, str]] = Counter()
    samples = []
    for path, lg in chosen:
        for s in sorted(lg.samples or [], key=lambda s: (str(s.id), s.epoch)):
            at = sample_budget(lg, s, budget, path)
            samples.append(imported(lg, s, at, numbered[(at, str(s.id))]))
            numbered[(at, str(s.id))] += 1
    model = chosen[0][1].eval.model
    info = RunInfo(model=model.removeprefix(MODEL_API), source="inspect: " + ", ".join(p.name for p, _ in chosen),
                   task=chosen[0][1].eval.task)
    return samples, info
