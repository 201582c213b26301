"""Named benchmark datasets (`data.source: aime2024`, ...): where each lives on the Hugging Face Hub, how
its rows become (id, problem, answer), and how many problems it must have.

Why a catalog: the seed's exact selection matters ("rows of AI-MO/aimo-validation-aime whose url
contains 2024", 30 problems). The same selection and canonical rows are applied whether the rows come
from the Hub or from a local copy (`data.path`, JSONL or Parquet), so both give the same fingerprint.
Answers of integer datasets are canonicalised ("025" -> "25"): copies of AIME differ in zero padding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CatalogError(ValueError):
    """A named dataset could not be loaded or is not the selection it should be."""


def _url_has(year: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: year in str(row.get("url") or row.get("source_url") or "")


def _gsm8k_answer(row: dict[str, Any]) -> str:
    return str(row["answer"]).split("####")[-1].strip().replace(",", "")


@dataclass(frozen=True)
class NamedDataset:
    hub_id: str
    split: str
    count: int | None  # the exact number of problems, or None when any size is fine
    integer_answers: bool
    config: str | None = None
    keep: Callable[[dict[str, Any]], bool] = lambda row: True
    id_fields: tuple[str, ...] = ("id",)
    answer: Callable[[dict[str, Any]], str] = lambda row: str(row["answer"])


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
        raise CatalogError(
            f"data.source = {name!r}: the selection has {len(out)} problems, expected exactly {spec.count}; "
            "the source is not the dataset the catalog describes (check data.path or the hub revision)"
        )
    return out


def read_local_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pandas as pd

        return list(pd.read_parquet(path).to_dict(orient="records"))
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise CatalogError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return rows


def read_hub_rows(name: str) -> list[dict[str, Any]]:
    """The real Hugging Face path; offline it fails with a message that names the local alternative."""
    import datasets

    spec = CATALOG[name]
    try:
        ds = datasets.load_dataset(spec.hub_id, spec.config, split=spec.split)
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; all mean "could not load"
        raise CatalogError(
            f"data.source = {name!r}: could not load {spec.hub_id} from the Hugging Face Hub "
            f"({type(exc).__name__}); offline, set data.path to a local .jsonl/.parquet copy"
        ) from None
    return [dict(row) for row in ds]


def load_named(name: str, path: str | None) -> list[dict[str, Any]]:
    rows = read_local_rows(Path(path)) if path else read_hub_rows(name)
    return canonical_rows(name, rows)
