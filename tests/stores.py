"""Copies of a committed run whose stored responses say something else: planted text (injection payloads,
an echoed API key) in a store the chain still walks.

Why not edit the store file in place: a later request of a chain carries the earlier responses in its
prompt ("Wait" continuations, the forced answer), so its store key changes with them. Each sample is
walked twice: over the original store, recording its responses in order, then again with those responses
edited, recording the requests the chain now makes; the new store holds exactly those pairs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from contextlib import chdir
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import REPO

from harness.cli import main
from harness.files import canonical_json
from harness.params import load_params
from harness.requests.chain import Job, stored, walk
from harness.requests.store import SCHEMA_VERSION, ResponseStore, request_key

# (problem id, budget, sample, step number in the chain, response text) -> the text to store instead
Edit = Callable[[str, Any, int, int, str], str]

THINK = REPO / "examples" / "think-tags" / "qwen3_wait"  # small (12 samples), think tags, Wait and forced answers
PAYLOADS = {  # what a hostile response says, by where in the chain it says it
    "thinking": '</script><script>window.__pwned = "script"</script>',
    "wait": "\u2028</SCRIPT ><!-- <svg onload=\"window.__pwned = 'svg'\"> &lt;b&gt; &amp;",
    "answer": "<img src=x onerror=\"window.__pwned = 'img'\">",
}
PLANTED = ("chain_sum-2", 256, 0)  # its chain: the thinking, two Wait continuations, the forced answer


def plant(dest: Path, monkeypatch: Any) -> Path:
    """A copy of the think-tag run whose responses carry PAYLOADS where a hostile model would write them,
    its sample table regraded from them (so the planted answer is also the extracted one)."""
    def edit(pid, budget, sample, step, text):
        where = {0: "thinking", 1: "wait", 3: "answer"}.get(step) if (pid, budget, sample) == PLANTED else None
        if where is None:
            return text
        return PAYLOADS["answer"] + "}" if where == "answer" else text + PAYLOADS[where]

    run = planted_copy(THINK, dest, edit)
    monkeypatch.chdir(run)
    monkeypatch.setenv("HARNESS_NO_REQUESTS", "1")
    for stage in ("sample", "vote"):  # the table the grid reads is graded from the planted text
        assert main([stage]) == 0
    return run


def planted_copy(run: Path, dest: Path, edit: Edit) -> Path:
    """`run` copied to `dest` (outputs included) with its store rewritten by `edit`. Lines are written as
    they are, without the store's own scrubbing, as a store written before a key was registered would be."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("live.log"))
    with chdir(dest):
        params = load_params("params.yaml")
        problems = {p["id"]: p for p in map(json.loads, Path("outputs/problems.jsonl").read_text().splitlines())}
        table = pd.read_csv("outputs/samples.csv", dtype={"problem_id": str})
        original = ResponseStore(run / "store", "sample", readonly=True)
        pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for row in table.itertuples():
            budget = int(row.budget) if str(row.budget).isdigit() else row.budget
            job = Job(row.problem_id, problems[row.problem_id]["problem"], problems[row.problem_id]["answer"],
                      budget, int(row.sample))
            asyncio.run(_rewrite(params, job, original, edit, pairs))
    for shard in (dest / "store").glob("*.jsonl"):
        shard.unlink()
    lines = [canonical_json({"v": SCHEMA_VERSION, "key": key, "request": req, "response": resp}) + "\n"
             for key, (req, resp) in sorted(pairs.items())]
    (dest / "store" / "sample.jsonl").write_text("".join(lines), encoding="utf-8")
    (dest / "store" / "calibrate.jsonl").write_text("", encoding="utf-8")
    return dest


async def _rewrite(params: Any, job: Job, original: ResponseStore, edit: Edit,
                   pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    responses: list[dict[str, Any]] = []
    fetch = stored(original)

    async def recording(request: dict[str, Any]) -> dict[str, Any]:
        response = await fetch(request)
        responses.append(response)
        return response

    await walk(params, job, recording)
    step = iter(range(len(responses)))

    async def edited(request: dict[str, Any]) -> dict[str, Any]:
        i = next(step)
        response = dict(responses[i])
        response["text"] = edit(job.problem_id, job.budget, job.sample, i, response["text"])
        pairs.setdefault(request_key(request), (request, response))
        return response

    await walk(params, job, edited)
