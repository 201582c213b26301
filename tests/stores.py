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

from harness.chain import Job, stored, walk
from harness.params import load_params
from harness.store import SCHEMA_VERSION, ResponseStore, canonical_json, request_key

# (problem id, budget, sample, step number in the chain, response text) -> the text to store instead
Edit = Callable[[str, Any, int, int, str], str]


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
