"""`harness report [RUN_A [RUN_B]]` and the `report` stage: one offline HTML page per run
(`outputs/report.html`) to read what the model thought, sample by sample.

What it reads, for each run directory: params.yaml, the fetched problems and their fingerprint
(outputs/problems.jsonl, outputs/dataset.json), the graded sample table (outputs/samples.csv), the curve and
the metrics of the vote stage (outputs/curve.csv, outputs/metrics.json), and the response store. Every
sample's transcript comes from walking its request chain over the store, as the replay does
(`chain.walk` with `chain.stored`), so each "Wait,", forced `</think>` and answer cue is marked where the
harness inserted it (`Outcome.segments`), and nothing is ever sent. Two runs give one page with both
grids on the problems they share.

The numbers on the page are the run's own: the grid's from the sample table (grid.py, the vote
stage's rules), the summary read by key from metrics.json, the curve from curve.csv. The page itself
(escaping, the content-security policy, compression) is page.py's; its HTML, CSS and script are
package files (assets/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import pandas as pd

from ..analysis import grade
from ..analysis.confidence import LOGPROB_COLUMN
from ..analysis.thinking_measures import hit_cap
from ..budget_axis import Budget, as_budget, budget_rank, largest, ordered
from ..data import integer_answers, read_problems
from ..files import (
    CURVE,
    DATASET_INFO,
    METRICS,
    REPORT,
    SAMPLES,
    atomic_writer,
    read_json,
    require,
    scratch_file,
    store_dir,
)
from ..params import Params, load_params
from ..redact import register, scrub
from ..requests.chain import INSERTIONS, Job, Missing, Outcome, first_request, stored, walk
from ..requests.store import ResponseStore, store_summary
from . import grid as report_grid
from . import page as report_page
from .transcript import pieces

# One sample of the page's index, as an array in this order (field names once, not 4,800 times).
SAMPLE_FIELDS = ("sample", "status", "tick", "answer", "vote_class", "correct", "completion_tokens",
                 "reasoning_tokens", "reasoning_count", "prompt_tokens", "input_tokens", "cached_input_tokens",
                 "finish_reason", "requests", "latency_s", "error", "answer_logprob", "hit_budget", "disagrees",
                 "insertions")
RUN_IDS = ("A", "B")
COMPARE_REPORT = REPORT.with_name("report_compare.html")


class ReportError(RuntimeError):
    """A run cannot be reported as it is; the message says which file and what to do."""


@dataclass(frozen=True)
class RunData:
    """Everything one run's page section is made of, read from its directory."""

    label: str
    params: Params
    problems: list[dict[str, str]]
    samples: pd.DataFrame
    curve: pd.DataFrame
    metrics: dict[str, Any]
    dataset: dict[str, Any]
    store: dict[str, Any]
    outcomes: Walks


def report_command(runs: list[str], output: str | None, split: bool) -> Path:
    """`harness report [RUN_A [RUN_B]] [-o PAGE] [--split]`: one run's page goes into its own outputs/, two
    runs' page into this directory's outputs/report_compare.html."""
    paths = [Path(r) for r in runs] or [Path(".")]
    if output is not None:
        out = Path(output)
    else:
        out = paths[0] / REPORT if len(paths) == 1 else COMPARE_REPORT
    return write_report(paths, out.resolve(), True if split else None)


def write_report(runs: list[Path], out: Path, split: bool | None = None) -> Path:
    """Read each run, build the page, write it (atomically; a split page's files first, then the page).

    The cells' payloads wait in a scratch file beside the page (`Spool`), and the page is written piece by
    piece: the report's memory is the index's and one cell's, never the run's text."""
    if not 1 <= len(runs) <= len(RUN_IDS):
        raise ReportError(f"report: give one run, or two to compare side by side (got {len(runs)})")
    with Spool(out.with_name(out.stem + "_cells")) as spool:
        entries = [_built(RUN_IDS[i], path, spool) for i, path in enumerate(runs)]
        if len(runs) > 1:  # which run is which, as the command named them (relative paths stay the same anywhere)
            for entry, path in zip(entries, runs):
                entry["label"] = f"{path.as_posix()}: {entry['label']}"
        index: dict[str, Any] = {"runs": entries, "sample_fields": list(SAMPLE_FIELDS)}
        if split is None:
            split = spool.total() > report_page.SINGLE_FILE_LIMIT
        files_dir = out.with_name(out.stem + "_files")
        around = report_page.frame(index, split, files_dir.name)
        if files_dir.is_dir() and all(re.fullmatch(r"[A-Z]-\d+\.js", f.name) for f in files_dir.iterdir()):
            shutil.rmtree(files_dir)  # an earlier split page's cells must not linger beside this one
        files = _write_cell_files(files_dir, index, spool) if split else 0
        _write_page(out, around, index, spool, split)
    where = f" and {files} cell files in {files_dir}/" if files else ""
    print(f"report: {sum(len(r['cells']) for r in entries)} cells, "
          f"{sum(len(r['problems']) for r in entries)} problem rows -> {out}{where}")
    return out


class Spool:
    """The cells' packed payloads, written to a scratch file beside the page as the runs are built and read
    back one at a time as the page is written; in memory only each cell's (offset, length). The file is
    made with the first cell (a run that cannot be read leaves nothing behind) and removed when the `with`
    block ends, however it ends.

    Why: the payloads are the page's bulk (65 of the 67 MB of a 300-problem forcing run's page). Held as
    strings, then joined into the page, then encoded, they made the report's peak memory grow with the
    run's text: 0.49 GB at 300 problems, 1.4 GB projected at 1,200; spooled, 0.23 GB at 300
    (benchmarks/bench_store.py's run, `harness report` alone under /usr/bin/time -v)."""

    def __init__(self, beside: Path):
        self.beside = beside
        self.closing = contextlib.ExitStack()
        self.fh: IO[bytes] | None = None
        self.spans: dict[str, list[tuple[int, int]]] = {}
        self.end = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.close()

    def add(self, run_id: str, text: str) -> None:
        data = text.encode("ascii")  # base85: one byte per character
        if self.fh is None:
            self.fh = self.closing.enter_context(scratch_file(self.beside))
        self.fh.seek(self.end)
        self.fh.write(data)
        self.spans.setdefault(run_id, []).append((self.end, len(data)))
        self.end += len(data)

    def text(self, run_id: str, cell: int) -> str:
        offset, length = self.spans[run_id][cell]
        assert self.fh is not None  # a cell was added, so the file exists
        self.fh.seek(offset)
        data = self.fh.read(length)
        if len(data) != length:
            raise ReportError(f"report: the scratch file of the cells ended early ({len(data)} of {length} bytes "
                              f"of cell {run_id}-{cell}); was it removed or truncated while the report ran?")
        return data.decode("ascii")

    def count(self, run_id: str) -> int:
        return len(self.spans.get(run_id, []))

    def total(self) -> int:
        """Every cell's payload length, summed: the size the split decision weighs."""
        return sum(length for spans in self.spans.values() for _, length in spans)


# Every chunk below is scrubbed on its own. The scrub replaces registered secrets (API keys), and every chunk
# ends in a newline (the page's part before its cells, each cell's element or line, each file); no secret
# holds one (a key with a line break cannot be sent in an HTTP header), so no secret can span two chunks,
# and scrubbing chunk by chunk gives the bytes that scrubbing the whole page at once gave.

def _write_page(out: Path, around: report_page.Frame, index: dict[str, Any], spool: Spool, split: bool) -> None:
    """The page, streamed into its atomic temp file: the part before the cells, each cell, the part after."""
    with atomic_writer(out) as fh:
        fh.write(scrub(around.head).encode("utf-8"))
        runs = [] if split else [run["id"] for run in index["runs"]]  # a split page's cells are in its files
        for run_id in runs:
            for c in range(spool.count(run_id)):
                fh.write(scrub(report_page.cell_element(run_id, c, spool.text(run_id, c))).encode("utf-8"))
        fh.write(scrub(around.tail).encode("utf-8"))


def _write_cell_files(files_dir: Path, index: dict[str, Any], spool: Spool) -> int:
    """A split page's per-problem script files, each streamed like the page; how many were written."""
    names = report_page.problem_files(index)
    for name, run_id, cells in names:
        with atomic_writer(files_dir / name) as fh:
            for c in cells:
                fh.write(scrub(report_page.cell_line(run_id, c, spool.text(run_id, c))).encode("utf-8"))
    return len(names)


@contextlib.contextmanager
def _inside(path: Path) -> Iterator[None]:
    """Read a run from its own directory, as every stage does (its params name files relative to it)."""
    if not path.is_dir():
        raise ReportError(f"report: {path}: not a directory; give a run directory (one with params.yaml)")
    with contextlib.chdir(path):
        yield


def read_run(path: Path) -> RunData:
    with _inside(path):
        params = load_params("params.yaml")
        if params.model.key_variable:  # the key itself never reaches the page, even if a response echoed it
            register(os.environ.get(params.model.key_variable))
        problems = read_problems()
        samples = pd.read_csv(require(SAMPLES, "sample"), dtype={"problem_id": str, "answer": str, "gold": str,
                                                                  "error": str, "status": str},
                              keep_default_na=False, na_values=[""])
        curve = pd.read_csv(require(CURVE, "vote"))
        root = store_dir()
        store = ResponseStore(root.resolve(), "sample", readonly=True)  # read again later, from anywhere
        _check_problems(samples, problems)
        outcomes = Walks(params, problems, store)
        store_info = {"responses": len(store), **store_summary(root)}
        return RunData(label=run_label(params) + tokens_note(samples), params=params, problems=problems, samples=samples,
                       curve=curve, metrics=read_json(METRICS), dataset=read_json(DATASET_INFO), store=store_info,
                       outcomes=outcomes)


def run_label(params: Params) -> str:
    """model · method · dataset, from params alone: never the directory, whose name and place differ from
    one checkout to the next while the page must not."""
    return f"{params.model.name} · {params.budgets.method} · {params.data.source}"


def tokens_note(samples: pd.DataFrame) -> str:
    """An imported run (samples.csv has `tokens_counted`) says in its label how its tokens were counted: an
    estimate moves every point along the x-axis, and the reader must know it. Native runs: nothing."""
    if "tokens_counted" not in samples.columns:
        return ""
    counted = samples["tokens_counted"].dropna().astype(str).value_counts().sort_index()
    return " · tokens " + ", ".join(f"{how} ({n})" for how, n in counted.items())


def _check_problems(samples: pd.DataFrame, problems: list[dict[str, str]]) -> None:
    unknown = set(samples["problem_id"].astype(str)) - {p["id"] for p in problems}
    if unknown:
        first = next(str(pid) for pid in samples["problem_id"] if str(pid) in unknown)
        raise ReportError(f"report: {SAMPLES} names problem {first!r}, which outputs/problems.jsonl does not have; "
                          "rerun the pipeline (`dvc repro`) so the two agree")


def _built(run_id: str, path: Path, spool: Spool) -> dict[str, Any]:
    """One run read and built into the spool; an answered sample whose chain the store lacks stops the
    report here, before the page is written (the spool goes with the error)."""
    data = read_run(path)
    entry = build_run(run_id, data, spool)
    _check_chains(data, path)
    return entry


def _check_chains(data: RunData, path: Path) -> None:
    """Every sample was walked over the store as its cell was built (Walks); those that stopped short and
    are not failed samples (which never had a whole chain) mean the store and samples.csv disagree."""
    gaps = data.outcomes.gaps
    if not gaps:
        return
    missing = []
    for row in data.samples.itertuples(index=False):  # in samples.csv order
        gap = gaps.get((str(row.problem_id), as_budget(row.budget), int(row.sample)))
        if gap is not None and not str(row.status).startswith("failed"):
            missing.append(f"{row.problem_id} at {row.budget} sample {row.sample} ({gap.step} request)")
    if missing:
        with _inside(path):
            where = store_dir()
        raise ReportError(
            f"report: {len(missing)} answered sample(s) of {SAMPLES} have no complete chain in {where}/ "
            f"(first: {missing[0]}); the report reads every transcript from the store: restore it "
            "(`git checkout store`, `dvc pull`) or rerun `harness sample`")


class Walks:
    """Each sample's chain walked over the store when the page asks for it, one cell's samples kept at a time.

    Why not every walk up front: a walk holds its sample's whole text, and a run of 57,600 forced samples
    held gigabytes; the page is built cell by cell, so it needs one cell's transcripts at once. Each sample
    is walked once (a first pass to find the gaps read the whole store a second time): a chain the store
    lacks is kept as its `Missing`, and judged once the run is built (`_check_chains`).
    """

    def __init__(self, params: Params, problems: list[dict[str, str]], store: ResponseStore):
        self.params, self.store = params, store
        self.gaps: dict[tuple[str, Budget, int], Missing] = {}  # the samples whose chain stops short
        self.problems = {p["id"]: p for p in problems}
        self.fetch = stored(store)
        self.cell: tuple[str, Budget] | None = None
        self.walked: dict[int, Outcome] = {}
        self.loop = asyncio.new_event_loop()  # one loop for every walk (a new one per sample costs a millisecond)

    def __getitem__(self, where: tuple[str, Budget, int]) -> Outcome | Missing:
        if where in self.gaps:
            return self.gaps[where]
        pid, budget, sample = where
        if self.cell != (pid, budget):
            self.cell, self.walked = (pid, budget), {}
        if sample not in self.walked:
            problem = self.problems[pid]
            job = Job(problem["id"], problem["problem"], problem["answer"], budget, sample)
            try:
                self.walked[sample] = self.loop.run_until_complete(walk(self.params, job, self.fetch))
            except Missing as gap:  # kept: the page shows it, and _check_chains judges it
                self.gaps[where] = gap
                return gap
        return self.walked[sample]


# ---- assembly: the run's data -> the page's index and its cells' payloads ----

def build_run(run_id: str, data: RunData, spool: Spool) -> dict[str, Any]:
    """One run's part of the page: its index entry; its cells' packed payloads go to `spool`, in cell order."""
    params, frame = data.params, data.samples
    budgets = ordered(frame["budget"]) if len(frame) else []
    ids = [p["id"] for p in data.problems if p["id"] in set(frame["problem_id"].astype(str))]
    integer = integer_answers(params)
    frame = frame.assign(_budget=[as_budget(b) for b in frame["budget"]], _hit=_hit_budget(frame, params))
    cells: list[dict[str, Any]] = []
    fractions: dict[tuple[str, Budget], float | None] = {}
    verdicts: dict[str, list[tuple[Budget, float | None]]] = {}
    vote_budget = _vote_budget(data.metrics, budgets)
    ks = sorted(int(k) for b, k in zip(data.curve["budget"], data.curve["k"]) if as_budget(b) == vote_budget and k > 1)
    votes: dict[str, list[float | None]] = {}
    groups = {key: g for key, g in frame.groupby(["problem_id", "_budget"], sort=False)}
    for p, pid in enumerate(ids):
        for b, budget in enumerate(budgets):
            rows = groups.get((pid, budget))
            if rows is None:
                continue
            rows = rows.sort_values("sample", kind="stable")
            graded = report_grid.classed((_graded(r) for r in rows.itertuples(index=False)),
                                         lambda a: grade.vote_key(a, integer))
            cell = report_grid.cell(graded)
            fractions[pid, budget] = cell.fraction
            verdicts.setdefault(pid, []).append((budget, cell.verdict))
            if budget == vote_budget:
                votes[pid] = [report_grid.maj_at_k(graded, k, params.sampling.seed) for k in ks]
            cells.append(_cell_entry(p, b, cell, graded, rows, data.outcomes))
            spool.add(run_id, report_page.packed(scrub(report_page.compact_json(_payload(params, data, pid, budget,
                                                                                          rows)))))
    difficulties = [report_grid.difficulty(fractions.get((pid, b)) for b in budgets) for pid in ids]
    flips = [f for pid in ids for f in report_grid.flips(pid, verdicts.get(pid, []))]
    problems = {p["id"]: p for p in data.problems}
    entry = {
        "id": run_id,
        "label": data.label,
        "provenance": provenance(data),
        # sampling.stream is how responses travelled, not what was measured: a streamed run's page is the
        # same bytes as the non-streamed run's, as its store is
        "params": params.model_dump(mode="json", exclude={"sampling": {"stream"}}),
        "metrics": data.metrics,
        "summary": metric_tables(data.metrics, budgets),
        "curve": curve_points(data.curve),
        "budgets": [str(b) for b in budgets],
        "vote": {"budget": None if vote_budget is None else str(vote_budget), "ks": ks,
                 "values": [votes.get(pid, [None] * len(ks)) for pid in ids]},
        "problems": [{"id": pid, "gold": problems[pid]["answer"], "difficulty": difficulties[i]}
                     for i, pid in enumerate(ids)],
        "hardest_first": report_grid.hardest_first(difficulties),
        "cells": cells,
        "flips": [{"p": ids.index(f.problem_id), "before": str(f.before), "after": str(f.after),
                   "direction": f.direction} for f in flips],
    }
    return entry


def _vote_budget(metrics: dict[str, Any], budgets: list[Budget]) -> Budget | None:
    """Where the votes are: metrics.json's vote budget when it is one of the run's, else the largest."""
    if not budgets:
        return None
    named = metrics.get("vote_budget")
    return as_budget(named) if named is not None and as_budget(named) in budgets else largest(budgets)


def _hit_budget(frame: pd.DataFrame, params: Params) -> list[bool]:
    """thinking_measures.hit_cap per row (the metrics' own "capped"); a failed sample hit nothing."""
    if not len(frame):
        return []
    failed = frame["status"].astype(str).str.startswith("failed")
    return [bool(h) and not f for h, f in zip(hit_cap(frame, params.budgets.method), failed)]


def _truth(value: Any) -> bool:
    return value is True or str(value).strip().lower() in {"true", "1", "1.0"}


def _graded(row: Any) -> report_grid.Graded:
    failed = str(row.status).startswith("failed")
    answer = None if failed or _blank(row.answer) else str(row.answer)
    return report_grid.Graded(int(row.sample), str(row.status), None if failed else _truth(row.correct), answer)


def _blank(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """A table value as JSON has it: None for blanks, Python numbers for numpy's."""
    if _blank(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _cell_entry(p: int, b: int, cell: report_grid.Cell, graded: list[report_grid.Graded], rows: pd.DataFrame,
                outcomes: Walks) -> dict[str, Any]:
    top = list(cell.winners)
    samples = []
    for g, row in zip(graded, rows.to_dict("records")):
        walked = outcomes[str(row["problem_id"]), row["_budget"], g.sample]
        values = {
            "sample": g.sample, "status": g.status, "tick": report_grid.tick(g), "answer": g.answer,
            "vote_class": g.vote_class, "correct": g.correct, "hit_budget": bool(row["_hit"]),
            "disagrees": report_grid.disagrees(g, top), "insertions": _insertions(walked),
            "answer_logprob": _plain(row.get(LOGPROB_COLUMN)),
        }
        for name in SAMPLE_FIELDS:
            if name not in values:
                values[name] = _plain(row.get(name))
        samples.append([values[name] for name in SAMPLE_FIELDS])
    return {"p": p, "b": b, "graded": cell.graded, "correct": cell.correct, "ticks": cell.ticks,
            "verdict": cell.verdict, "winners": top, "tie": cell.tie,
            "groups": [{"class": g.vote_class, "spellings": list(g.spellings), "samples": list(g.samples),
                        "correct": g.correct} for g in cell.groups],
            "samples": samples}


def _payload(params: Params, data: RunData, pid: str, budget: Budget, rows: pd.DataFrame) -> dict[str, Any]:
    """What a cell's transcripts need and the grid does not: the prompt and each sample's pieces."""
    problem = next(p for p in data.problems if p["id"] == pid)
    prompt = prompt_text(first_request(params, problem["problem"], pid, budget, int(rows["sample"].iloc[0])))
    transcripts: list[dict[str, Any]] = []
    for sample in rows["sample"]:
        walked = data.outcomes[pid, budget, int(sample)]
        if isinstance(walked, Missing):
            transcripts.append({"sample": int(sample), "pieces": None,
                                "missing": f"the store has no response to this sample's {walked.step} request"})
        else:
            transcripts.append({"sample": int(sample), "pieces": [list(p) for p in pieces(walked.segments)]})
    return {"prompt": prompt, "samples": transcripts}


def _insertions(walked: Outcome | Missing) -> dict[str, int]:
    """How many of each insertion the harness made in the sample (none for a chain the store lacks)."""
    if isinstance(walked, Missing):
        return {}
    return dict(sorted(Counter(kind for kind, _ in walked.segments if kind in INSERTIONS).items()))


def prompt_text(request: dict[str, Any]) -> str:
    """What the model was shown first: the completions prompt as sent (chat template and all), or the chat
    messages one after another with their roles."""
    if "prompt" in request:
        return str(request["prompt"])
    return "\n\n".join(f"[{m.get('role', '?')}]\n{m['content'] if isinstance(m.get('content'), str) else json.dumps(m.get('content'))}"
                       for m in request.get("messages", []))


def provenance(data: RunData) -> dict[str, Any]:
    """Where the run's numbers come from: the model and its server, the method, the dataset and its
    sha256, the store. The API key is never here: params hold only the name of its variable."""
    p = data.params
    return {
        "model": p.model.name, "server": p.model.base_url, "api_key_env": p.model.key_variable,
        "chat_template": p.model.chat_template, "method": p.budgets.method,
        "budgets": [str(b) for b in p.budgets.requested],
        "dataset": data.dataset.get("source", p.data.source), "dataset_sha256": data.dataset.get("fingerprint"),
        "problems": data.dataset.get("problems"), "samples": len(data.samples),
        "store_responses": data.store["responses"], "store_bytes": data.store["bytes"],
        "store_shards": data.store["shards"],
    }


def curve_points(curve: pd.DataFrame) -> list[dict[str, Any]]:
    """curve.csv's points in budget order, with the columns the page draws (whichever the table has)."""
    keep = [c for c in ("budget", "k", "maj_at_k", "maj_lo", "maj_hi", "pass_at_k", "mean_tokens", "log2_tokens",
                        "problems", "samples") if c in curve.columns]
    rows = [{c: _plain(v) for c, v in zip(keep, values)} for values in curve[keep].itertuples(index=False)]
    for row in rows:
        row["budget"] = str(as_budget(row["budget"]))
    return sorted(rows, key=lambda r: (budget_rank(r["budget"]), r.get("k", 1)))


def metric_tables(metrics: dict[str, Any], budgets: list[Budget]) -> dict[str, Any]:
    """metrics.json laid out for reading, by shape and never by a fixed list of names (the statistics
    grow): the sentences it states, its top-level numbers, its per-budget and per-k maps as two tables,
    and each other section's own numbers. Pure."""
    names = {str(b) for b in budgets}
    sentences, scalars, sections = [], [], []
    by_budget: dict[str, dict[str, Any]] = {}
    by_k: dict[str, dict[str, Any]] = {}
    for key, value in sorted(metrics.items()):
        if _is_scalar(value):
            scalars.append([key, value])
        elif not isinstance(value, dict) or not value:
            continue  # a list or an empty map: in the page's full metrics.json only
        elif all(_is_scalar(v) or _is_interval(v) for v in value.values()) and (
                set(value) <= names or all(k.isdigit() for k in value)):
            (by_budget if set(value) <= names else by_k)[key] = {k: _shown(v) for k, v in value.items()}
        else:
            said = value.get("statement") or value.get("reason")
            if isinstance(said, str):
                sentences.append([key, said])
            leaves = [[k, _shown(v)] for k, v in sorted(value.items())
                      if (_is_scalar(v) or _is_interval(v)) and k not in ("statement", "reason")]
            if leaves:
                sections.append([key, leaves])
    budget_rows = [[str(b), *[by_budget[m].get(str(b)) for m in by_budget]] for b in budgets]
    k_names = sorted({k for m in by_k.values() for k in m}, key=int)
    return {"sentences": sentences, "scalars": scalars, "sections": sections,
            "by_budget": {"columns": list(by_budget), "rows": budget_rows},
            "by_k": {"columns": list(by_k), "rows": [[k, *[by_k[m].get(k) for m in by_k]] for k in k_names]}}


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_interval(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"lo", "hi"} and all(_is_scalar(v) for v in value.values())


def _shown(value: Any) -> Any:
    return [value["lo"], value["hi"]] if _is_interval(value) else value
