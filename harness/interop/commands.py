"""`harness import FORMAT FILE... --into DIR` and `harness export inspect`: the file formats dispatched to their
readers and writers, and the lines the user reads afterwards."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .rundir import ImportedSample, InteropError, RunInfo, write_run

FORMATS = ("lm-eval", "inspect", "jsonl")


def read_format(fmt: str, paths: list[Path], task: str | None, budget: int | None, id_field: str | None,
                tokenizer: Path | None, model: str | None) -> tuple[list[ImportedSample], RunInfo]:
    """The samples of `paths` read as `fmt` (each reader checks its own files whole)."""
    if fmt == "lm-eval":
        from .lm_eval import read_lm_eval
        from .tokens import counter

        return read_lm_eval(paths, task, budget, id_field, counter(tokenizer))
    if fmt == "inspect":
        from .inspect_log import read_inspect

        return read_inspect(paths, task, budget)
    from .jsonl import read_samples

    if len(paths) != 1:
        raise InteropError("import jsonl takes one file; join the lines into one file first")
    return read_samples(paths[0], budget), RunInfo(model=model or "imported", source=f"jsonl: {paths[0].name}",
                                                   task=task or paths[0].stem)


def import_command(fmt: str, files: list[str], into: str, force: bool, task: str | None = None,
                   budget: int | None = None, id_field: str | None = None, tokenizer: str | None = None,
                   model: str | None = None) -> None:
    """Read, check everything, then write DIR; say what was imported and how to go on."""
    if budget is not None and budget <= 0:
        raise InteropError(f"--budget {budget}: must be a positive number of tokens")
    samples, info = read_format(fmt, [Path(f) for f in files], task, budget, id_field,
                                Path(tokenizer) if tokenizer else None, model)
    if model is not None:
        info = RunInfo(model=model, source=info.source, task=info.task)
    params = write_run(samples, info, Path(into), force)
    counted = Counter(s.tokens_counted for s in samples)
    problems = len({s.problem_id for s in samples})
    print(f"import {fmt}: {len(samples)} samples of {problems} problems at budgets "
          f"{params.budgets.requested} ({info.model}, task {info.task}) -> {into}/")
    print("tokens: " + ", ".join(f"{n} {how}" for how, n in sorted(counted.items())) + " (samples.csv tokens_counted)")
    print(f"next: cd {into} && HARNESS_NO_REQUESTS=1 harness run   (every response is in {into}/store/)")
