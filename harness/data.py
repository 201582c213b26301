"""Fetch stage: every dataset source, each read in one place, into the canonical problem list.

Sources (`data.source`):
- a local ``.jsonl`` file with ``id``, ``problem``, ``answer`` on every line;
- a named benchmark (``aime2024``, ``aime2025``, ``math500``, ``gsm8k``; see `CATALOG`): where it lives on
  the Hub, which rows are it (the seed's "rows of AI-MO/aimo-validation-aime whose url contains 2024", 30
  problems) and how a row becomes a problem. The same selection is applied to a local copy at
  ``data.path`` (JSONL or Parquet), so both give the same fingerprint; answers of integer datasets are
  canonicalised ("025" -> "25": copies of AIME differ in zero padding);
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import PROBLEMS, canonical_json
from .params import REASONING_GYM_PREFIX, Params, looks_like_local_file

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


def read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every row of a local JSONL file with where it is (file:line); the first broken line stops the run."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check data.source") from None
    rows = []
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
        rows.append((f"{path}:{number}", row))
    return rows


def load_local_jsonl(path: Path, integer_answers: bool = False) -> list[dict[str, str]]:
    """Every row of a local JSONL dataset, checked; the first broken row stops the run with file:line."""
    seen: dict[str, str] = {}
    problems = [canonical_row(row, where, seen, integer_answers) for where, row in read_jsonl(path)]
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
    integer = integer_answers(params)
    return [
        canonical_row(
            {"id": f"{task}-{i}", "problem": entry["question"], "answer": entry["answer"]},
            f"{task}[{i}]",
            seen,
            integer,
        )
        for i, entry in enumerate(dataset)
    ]


def read_hub(source: str, split: str) -> list[dict[str, Any]]:
    """The rows of `data.source` on the Hugging Face Hub: a named dataset's own id, config and split, or
    any dataset id at `split`. Offline it fails with a message that names the local alternative."""
    import datasets

    named = CATALOG.get(source)
    hub_id, config, split = (named.hub_id, named.config, named.split) if named else (source, None, split)
    try:
        ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; all mean "could not load"
        loaded, instead = ((f" {hub_id}", "set data.path to a local .jsonl/.parquet copy") if named
                           else ("", "point data.source at a local .jsonl with id, problem, answer"))
        raise DataError(
            f"data.source = {source!r}: could not load{loaded} from the Hugging Face Hub ({type(exc).__name__}); "
            f"offline, {instead}"
        ) from None
    return [dict(row) for row in ds]


def load_hub(source: str, params: Params) -> list[dict[str, str]]:
    """Any Hub dataset with id (or unique_id), problem (or question) and answer columns."""
    rows = read_hub(source, params.data.split)
    seen: dict[str, str] = {}
    integer = integer_answers(params)
    return [
        canonical_row(
            {"id": row.get("id", row.get("unique_id", i)), "problem": row.get("problem", row.get("question")),
             "answer": row.get("answer")},
            f"{source}[{i}]",
            seen,
            integer,
        )
        for i, row in enumerate(rows)
    ]


def _url_has(year: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: year in str(row.get("url") or row.get("source_url") or "")


def _gsm8k_answer(row: dict[str, Any]) -> str:
    return str(row["answer"]).split("####")[-1].strip().replace(",", "")


@dataclass(frozen=True)
class NamedDataset:
    """A named benchmark: where it lives on the Hub, which rows are it, how a row becomes a problem."""

    hub_id: str
    split: str
    count: int | None  # the exact number of problems, or None when any size is fine
    integer_answers: bool
    config: str | None = None
    keep: Callable[[dict[str, Any]], bool] = lambda row: True
    id_fields: tuple[str, ...] = ("id",)
    answer: Callable[[dict[str, Any]], str] = lambda row: str(row["answer"])


# One entry per name params.py accepts (params.NAMED_DATASETS; a test keeps them equal).
CATALOG: dict[str, NamedDataset] = {
    # The seed's selection: AI-MO/aimo-validation-aime (AIME 2022-2024), rows whose url contains "2024".
    "aime2024": NamedDataset("AI-MO/aimo-validation-aime", "train", 30, True, keep=_url_has("2024")),
    "aime2025": NamedDataset("MathArena/aime_2025", "train", 30, True, id_fields=("id", "problem_idx")),
    "math500": NamedDataset("HuggingFaceH4/MATH-500", "test", 500, False, id_fields=("unique_id", "id")),
    "gsm8k": NamedDataset("openai/gsm8k", "test", 1319, True, config="main", id_fields=(),
                          answer=_gsm8k_answer),
}


def canonical_answer(answer: str, integer: bool) -> str:
    answer = answer.strip()
    if integer and answer.lstrip("+-").isdigit():
        return str(int(answer))
    return answer


def canonical_rows(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The catalog's selection of raw rows, as {id, problem, answer} in source order."""
    spec = CATALOG[name]
    out = []
    for index, row in enumerate(r for r in rows if spec.keep(r)):
        pid = next((row[f] for f in spec.id_fields if row.get(f) not in (None, "")), index)
        problem = row.get("problem", row.get("question"))
        out.append({"id": str(pid), "problem": problem,
                    "answer": canonical_answer(spec.answer(row), spec.integer_answers)})
    if spec.count is not None and len(out) != spec.count:
        raise DataError(
            f"data.source = {name!r}: the selection has {len(out)} problems, expected exactly {spec.count}; "
            "the source is not the dataset the catalog describes (check data.path or the hub revision)"
        )
    return out


def load_named(name: str, path: str | None) -> list[dict[str, Any]]:
    """A named benchmark's selection, from its local copy at `path` (.jsonl or .parquet) or from the Hub."""
    if path is None:
        rows = read_hub(name, CATALOG[name].split)
    elif path.endswith(".parquet"):
        import pandas as pd

        rows = list(pd.read_parquet(path).to_dict(orient="records"))
    else:
        rows = [row for _, row in read_jsonl(Path(path))]
    return canonical_rows(name, rows)


def load_catalog(name: str, params: Params) -> list[dict[str, str]]:
    """A named benchmark (aime2024, ...) from the Hub, or from its local copy at `data.path`."""
    rows = load_named(name, params.data.path)
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
        problems = load_local_jsonl(Path(source), integer_answers(params))
    else:
        problems = load_hub(source, params)
    if params.data.limit is not None:
        problems = problems[: params.data.limit]
    return problems


def integer_answers(params: Params) -> bool:
    """Are the task's answers integers? Then a non-integer gold answer is a broken row (AIME's are
    0..999), grading refuses unevaluated expressions and votes keep exact spellings.

    Yes for a named dataset of integer answers; otherwise `data.answer_type`, where `auto` means "when
    the source names aime".
    """
    named = CATALOG.get(params.data.source)
    if named is not None and named.integer_answers:
        return True
    if params.data.answer_type == "auto":
        return "aime" in params.data.source.lower()
    return params.data.answer_type == "integer"


def read_problems() -> list[dict[str, str]]:
    """The fetched problems; a hand-edited or damaged file is reported like any dataset, with its line."""
    if not PROBLEMS.exists():
        raise DataError(f"{PROBLEMS}: not found; run `harness fetch` (or `dvc repro`) first")
    return load_local_jsonl(PROBLEMS)

