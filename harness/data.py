"""Fetch stage: a dataset source -> the canonical problem list (`outputs/problems.jsonl`) + fingerprint.

Sources (`data.source`):
- a local ``.jsonl`` file with ``id``, ``problem``, ``answer`` on every line;
- ``reasoning_gym:<task>``: problems generated offline by reasoning-gym, deterministic per ``data.seed``,
  with ``data.config`` passed to the generator (e.g. difficulty knobs);
- anything else is a Hugging Face dataset id loaded with ``datasets.load_dataset(source, split=...)``.

Every later stage reads `outputs/problems.jsonl`, never the source, so a run is pinned to the exact
problems it was fetched with; the fingerprint (sha256 of the canonical list) says which ones.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from .files import OUTPUTS, write_json, write_jsonl
from .params import Params, looks_like_local_file
from .store import canonical_json

PROBLEMS = OUTPUTS / "problems.jsonl"
DATASET_INFO = OUTPUTS / "dataset.json"
REASONING_GYM_PREFIX = "reasoning_gym:"


class DataError(ValueError):
    """A dataset problem, phrased with file and line where there is one."""


def fingerprint(problems: list[dict[str, str]]) -> str:
    """sha256 of the canonical problem list: same problems, same order, same answers -> same hash."""
    return hashlib.sha256(canonical_json(problems).encode("utf-8")).hexdigest()


def load_local_jsonl(path: Path) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: each line must be a JSON object with id, problem, answer")
        problems.append(_canonical_row(row, f"{path}:{number}", seen))
    if not problems:
        raise DataError(f"{path}: no problems found")
    return problems


def _canonical_row(row: dict[str, Any], where: str, seen: set[str]) -> dict[str, str]:
    for field in ("id", "problem", "answer"):
        value = row.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(f"{where}: missing or empty '{field}'")
    pid = str(row["id"])
    if pid in seen:
        raise DataError(f"{where}: duplicate id {pid!r}")
    seen.add(pid)
    return {"id": pid, "problem": str(row["problem"]), "answer": str(row["answer"]).strip()}


def load_reasoning_gym(task: str, params: Params) -> list[dict[str, str]]:
    with warnings.catch_warnings():  # one of its dependencies has SyntaxWarnings on import
        warnings.simplefilter("ignore", SyntaxWarning)
        import reasoning_gym  # local import: generating is only needed by the fetch stage

    size = params.data.limit or 50
    try:
        dataset = reasoning_gym.create_dataset(task, size=size, seed=params.data.seed, **params.data.config)
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"data.source = {REASONING_GYM_PREFIX}{task}: {exc}") from None
    seen: set[str] = set()
    return [
        _canonical_row(
            {"id": f"{task}-{i}", "problem": entry["question"], "answer": entry["answer"]},
            f"{task}[{i}]",
            seen,
        )
        for i, entry in enumerate(dataset)
    ]


def load_hub(source: str, params: Params) -> list[dict[str, str]]:
    """The real Hugging Face path (unreachable on an offline machine: use a local .jsonl there)."""
    import datasets

    try:
        ds = datasets.load_dataset(source, split=params.data.split)
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; all mean "could not load"
        raise DataError(
            f"data.source = {source!r}: could not load from the Hugging Face Hub ({type(exc).__name__}); "
            "offline, point data.source at a local .jsonl with id, problem, answer"
        ) from None
    seen: set[str] = set()
    problems = []
    for i, row in enumerate(ds):
        problem = row.get("problem", row.get("question"))
        problems.append(
            _canonical_row(
                {"id": row.get("id", row.get("unique_id", i)), "problem": problem, "answer": row.get("answer")},
                f"{source}[{i}]",
                seen,
            )
        )
    return problems


def load_problems(params: Params) -> list[dict[str, str]]:
    source = params.data.source
    if source.startswith(REASONING_GYM_PREFIX):
        problems = load_reasoning_gym(source.removeprefix(REASONING_GYM_PREFIX), params)
    elif looks_like_local_file(source):
        problems = load_local_jsonl(Path(source))
    else:
        problems = load_hub(source, params)
    if params.data.limit is not None:
        problems = problems[: params.data.limit]
    return problems


def read_problems() -> list[dict[str, str]]:
    if not PROBLEMS.exists():
        raise DataError(f"{PROBLEMS}: not found; run `harness fetch` (or `dvc repro`) first")
    return [json.loads(line) for line in PROBLEMS.read_text(encoding="utf-8").splitlines() if line]


def run(params: Params) -> None:
    problems = load_problems(params)
    write_jsonl(PROBLEMS, problems)
    write_json(
        DATASET_INFO,
        {"source": params.data.source, "problems": len(problems), "fingerprint": fingerprint(problems)},
    )
    print(f"fetch: {len(problems)} problems from {params.data.source} -> {PROBLEMS}")
