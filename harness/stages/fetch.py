"""The `fetch` stage: the problems params.yaml selects, as outputs/problems.jsonl, and their fingerprint.

Reading every dataset source is harness/data.py's job (estimate and preflight read them too); this stage
only writes what it read.
"""

from __future__ import annotations

from ..data import fingerprint, load_problems
from ..files import DATASET_INFO, PROBLEMS, write_json, write_jsonl
from ..params import Params


def run(params: Params) -> None:
    problems = load_problems(params)
    write_jsonl(PROBLEMS, problems)
    write_json(
        DATASET_INFO,
        {"source": params.data.source, "problems": len(problems), "fingerprint": fingerprint(problems)},
    )
    print(f"fetch: {len(problems)} problems from {params.data.source} -> {PROBLEMS}")
