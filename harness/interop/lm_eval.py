"""`harness import lm-eval`: lm-evaluation-harness's `--log_samples` output as one run's sample pool.

lm-eval writes `samples_<task>_<date>.jsonl` (one line per document and filter: the same generations once
per filter, so only each document's first line is kept) and `results_<date>.json` beside it (the model's
name). With `repeats: k` a document's `resps[0]` holds its k generations; the budget is the generation
cap, `arguments.gen_args_0.arg_1.max_gen_toks`. Files at several budgets make one run. lm-eval's own
filters and scores are ignored: every sample is graded again here, against `target`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .jsonl import read_rows
from .rundir import ImportedSample, InteropError, RunInfo

SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d\d-\d\dT[0-9\-.]+)\.jsonl$")
EXPECTED = "expected lm-eval's samples_<task>_<date>.jsonl, written with --log_samples"


def task_of(path: Path) -> tuple[str, str]:
    """(task, date) from lm-eval's file name."""
    match = SAMPLES_NAME.match(path.name)
    if match is None:
        raise InteropError(f"{path}: not named samples_<task>_<date>.jsonl; {EXPECTED}")
    return match["task"], match["date"]


def pick_task(paths: list[Path], task: str | None) -> list[Path]:
    """The files of one task: the one asked for, or the only one there is."""
    tasks = sorted({task_of(p)[0] for p in paths})
    if task is not None:
        chosen = [p for p in paths if task_of(p)[0] == task]
        if not chosen:
            raise InteropError(f"--task {task}: no file of that task; the files hold {', '.join(tasks)}")
        return chosen
    if len(tasks) > 1:
        raise InteropError(f"the files hold {len(tasks)} tasks ({', '.join(tasks)}); one run is one task: "
                           "import each with --task NAME into its own --into DIR")
    return paths


def model_of(path: Path) -> str | None:
    """The model's name from the results_<date>.json lm-eval wrote beside the samples, if it is there."""
    results = path.with_name(f"results_{task_of(path)[1]}.json")
    if not results.exists():
        return None
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InteropError(f"{results}: not JSON; expected lm-eval's results file") from None
    args = (data.get("config") or {}).get("model_args")
    if isinstance(args, dict) and args.get("model"):
        return str(args["model"])
    if isinstance(args, str):  # older lm-eval: "model=NAME,base_url=..."
        named = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
        if named.get("model") or named.get("pretrained"):
            return named.get("model") or named.get("pretrained")
    return str(data["model_name"]) if data.get("model_name") else None


def prompt_of(arg_0: Any) -> str:
    """The prompt lm-eval sent: plain text, or with --apply_chat_template a JSON list of chat messages
    (logged as a one-element list holding that JSON); a single user message is kept as its text."""
    if isinstance(arg_0, list) and len(arg_0) == 1:
        arg_0 = arg_0[0]
    if not isinstance(arg_0, str):
        return json.dumps(arg_0, ensure_ascii=False)
    try:
        messages = json.loads(arg_0)
    except json.JSONDecodeError:
        return arg_0
    if isinstance(messages, list) and len(messages) == 1 and isinstance(messages[0], dict):
        return str(messages[0].get("content", arg_0))
    return arg_0


def budget_of(path: Path, number: int, row: dict[str, Any], budget: int | None) -> int:
    args = ((row.get("arguments") or {}).get("gen_args_0") or {}).get("arg_1") or {}
    found = args.get("max_gen_toks") if isinstance(args, dict) else None
    if budget is not None:
        return budget
    if not isinstance(found, int) or found <= 0:
        raise InteropError(f"{path}:{number}: no arguments.gen_args_0.arg_1.max_gen_toks to take the budget "
                           "from; give it with --budget N")
    return found


def problem_id_of(row: dict[str, Any], id_field: str | None) -> str:
    """The document's own id (`doc[id_field]`, by default `doc['id']` when the task has one), else lm-eval's
    doc_id, its position in the split: what pairs the run with a native one on the same problems."""
    raw = row.get("doc")
    doc: dict[str, Any] = raw if isinstance(raw, dict) else {}
    field = id_field or "id"
    if field in doc:
        return str(doc[field])
    if id_field is not None:
        raise InteropError(f"--id-field {id_field}: the documents have no such field (they have "
                           f"{', '.join(sorted(doc)) or 'none'})")
    return str(row["doc_id"])


def file_samples(path: Path, budget: int | None, id_field: str | None,
                 count: tuple[Callable[[str], int], str]) -> list[ImportedSample]:
    """Every generation of one samples file, the first line of each document only (one line per filter)."""
    seen: set[Any] = set()
    samples = []
    for number, row in read_rows(path, EXPECTED):
        if not {"doc_id", "resps", "target", "arguments"} <= set(row):
            raise InteropError(f"{path}:{number}: no doc_id, resps, target and arguments; {EXPECTED}")
        if row["doc_id"] in seen:
            continue
        seen.add(row["doc_id"])
        at = budget_of(path, number, row, budget)
        pool = row["resps"][0] if row["resps"] and isinstance(row["resps"][0], list) else row["resps"]
        target = row["target"][0] if isinstance(row["target"], list) and row["target"] else row["target"]
        for index, text in enumerate(pool):
            samples.append(generation(row, problem_id_of(row, id_field), index, at, str(text), target, count))
    return samples


def generation(row: dict[str, Any], problem_id: str, index: int, budget: int, text: str, target: Any,
               count: tuple[Callable[[str], int], str]) -> ImportedSample:
    """One of a document's k generations. lm-eval logs no finish reason: a count at the cap is a cut text;
    a count past it (an estimate, or another tokenizer than the server's) is held to the cap it ran under."""
    tokens = count[0](text)
    return ImportedSample(
        problem_id=problem_id, sample=index, budget=budget, prompt=prompt_of(row["arguments"]["gen_args_0"]["arg_0"]),
        response=text, gold="" if target is None else str(target).strip(), completion_tokens=min(tokens, budget),
        finish_reason="length" if tokens >= budget else "stop", tokens_counted=count[1],
    )


def read_lm_eval(paths: list[Path], task: str | None, budget: int | None, id_field: str | None,
                 count: tuple[Callable[[str], int], str]) -> tuple[list[ImportedSample], RunInfo]:
    """Every sample of one task's files, with the run's model (results json, else `lm-eval`) and source."""
    for path in paths:
        task_of(path)
    chosen = pick_task(paths, task)
    samples = [s for path in chosen for s in file_samples(path, budget, id_field, count)]
    model = next((m for m in map(model_of, chosen) if m), "lm-eval")
    info = RunInfo(model=model, source="lm-eval: " + ", ".join(p.name for p in chosen), task=task_of(chosen[0])[0])
    return samples, info
