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

import difflib
import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

from .catalog import CATALOG, CatalogError, load_named
from .files import DATASET_INFO, PROBLEMS, write_json, write_jsonl
from .params import REASONING_GYM_PREFIX, Params, looks_like_local_file
from .store import canonical_json

_INTEGER = re.compile(r"[+-]?\d+")


class DataError(ValueError):
    """A dataset problem, phrased with file and line where there is one."""


def fingerprint(problems: list[dict[str, str]]) -> str:
    """sha256 of the canonical problem list: same problems, same order, same answers -> same hash."""
    return hashlib.sha256(canonical_json(problems).encode("utf-8")).hexdigest()


def decode_utf8(path: Path, data: bytes) -> str:
    """The file as text; a stray Latin-1 byte is reported with its line, since that is where users look."""
    try:
        return data.decode("utf-8-sig")  # a BOM (Windows editors add one) is not a problem
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def load_local_jsonl(path: Path, integer_answers: bool = False) -> list[dict[str, str]]:
    """Every row of a local JSONL dataset, checked; the first broken row stops the run with file:line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check data.source") from None
    problems: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(decode_utf8(path, data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); one JSON object per line"
            ) from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: each line must be a JSON object with id, problem, answer")
        problems.append(canonical_row(row, f"{path}:{number}", seen, integer_answers))
    if not problems:
        raise DataError(f"{path}: no problems found; each line must be a JSON object with id, problem, answer")
    return problems


def canonical_row(
    row: dict[str, Any], where: str, seen: dict[str, str], integer_answers: bool = False
) -> dict[str, str]:
    """One problem as {id, problem, answer} strings, or a DataError naming the row and the field.

    Pure: `seen` maps ids already read to where they were, so a duplicate names both places.
    """
    for field in ("id", "problem", "answer"):
        value = row.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(f"{where}: missing or empty '{field}'; every row needs id, problem and answer")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise DataError(
                f"{where}: '{field}' = {_short(value)}: must be a string or a number, not {type(value).__name__}"
            )
    pid = str(row["id"])
    if pid in seen:
        raise DataError(f"{where}: duplicate id {pid!r} (first at {seen[pid]}); ids must be unique")
    seen[pid] = where
    answer = str(row["answer"]).strip()
    if integer_answers and not _INTEGER.fullmatch(answer):
        raise DataError(
            f"{where}: answer = {_short(answer)}: AIME answers are integers; fix the row, or set "
            "data.answer_type: any if this dataset is not AIME"
        )
    return {"id": pid, "problem": str(row["problem"]), "answer": answer}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_reasoning_gym(task: str, params: Params) -> list[dict[str, str]]:
    with warnings.catch_warnings():  # one of its dependencies has SyntaxWarnings on import
        warnings.simplefilter("ignore", SyntaxWarning)
        import reasoning_gym  # local import: generating is only needed by the fetch stage
        from reasoning_gym.factory import DATASETS

    if task not in DATASETS:
        close = difflib.get_close_matches(task, list(DATASETS), n=1)
        hint = f" (did you mean '{REASONING_GYM_PREFIX}{close[0]}'?)" if close else ""
        raise DataError(
            f"params.yaml: data.source = {REASONING_GYM_PREFIX + task!r}: unknown reasoning-gym task{hint}; "
            f"{len(DATASETS)} tasks exist, e.g. chain_sum, basic_arithmetic"
        )
    size = params.data.limit or 50
    try:
        dataset = reasoning_gym.create_dataset(task, size=size, seed=params.data.seed, **params.data.config)
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"params.yaml: data.source = {REASONING_GYM_PREFIX}{task}, data.config: {exc}") from None
    seen: dict[str, str] = {}
    return [
        canonical_row(
            {"id": f"{task}-{i}", "problem": entry["question"], "answer": entry["answer"]},
            f"{task}[{i}]",
            seen,
            params.data.integer_answers,
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
    seen: dict[str, str] = {}
    problems = []
    for i, row in enumerate(ds):
        problem = row.get("problem", row.get("question"))
        problems.append(
            canonical_row(
                {"id": row.get("id", row.get("unique_id", i)), "problem": problem, "answer": row.get("answer")},
                f"{source}[{i}]",
                seen,
                params.data.integer_answers,
            )
        )
    return problems


def load_catalog(name: str, params: Params) -> list[dict[str, str]]:
    """A named benchmark (aime2024, ...) from the Hub, or from its local copy at `data.path`."""
    try:
        rows = load_named(name, params.data.path)
    except CatalogError as exc:
        raise DataError(str(exc)) from None
    where = params.data.path or CATALOG[name].hub_id
    seen: dict[str, str] = {}
    integer = integer_answers(params)
    return [canonical_row(row, f"{where}[{i}]", seen, integer) for i, row in enumerate(rows)]


def load_problems(params: Params) -> list[dict[str, str]]:
    """The checked problem list of `data.source` (no file written: the preflight of `harness run` uses it)."""
    source = params.data.source
    if source in CATALOG:
        problems = load_catalog(source, params)
    elif source.startswith(REASONING_GYM_PREFIX):
        problems = load_reasoning_gym(source.removeprefix(REASONING_GYM_PREFIX), params)
    elif looks_like_local_file(source):
        problems = load_local_jsonl(Path(source), params.data.integer_answers)
    else:
        problems = load_hub(source, params)
    if params.data.limit is not None:
        problems = problems[: params.data.limit]
    return problems


def integer_answers(params: Params) -> bool:
    """Whether the task's answers are integers (`data.answer_type`, or a named dataset the catalog knows
    as integer-valued): there grading refuses unevaluated expressions and votes keep exact spellings."""
    named = CATALOG.get(params.data.source)
    return params.data.integer_answers or bool(named and named.integer_answers)


def read_problems() -> list[dict[str, str]]:
    """The fetched problems; a hand-edited or damaged file is reported like any dataset, with its line."""
    if not PROBLEMS.exists():
        raise DataError(f"{PROBLEMS}: not found; run `harness fetch` (or `dvc repro`) first")
    return load_local_jsonl(PROBLEMS)


def run(params: Params) -> None:
    problems = load_problems(params)
    write_jsonl(PROBLEMS, problems)
    write_json(
        DATASET_INFO,
        {"source": params.data.source, "problems": len(problems), "fingerprint": fingerprint(problems)},
    )
    print(f"fetch: {len(problems)} problems from {params.data.source} -> {PROBLEMS}")
