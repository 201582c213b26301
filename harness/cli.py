"""The `harness` command: parse arguments, load params, run one stage. No logic of its own.

Every user-facing error (bad params, bad data, damaged store, unreachable server) is printed as one
line on stderr with exit code 2, before anything is sent or written; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

from .files import store_dir
from .params import Params, ParamsError, load_params
from .preflight import preflight
from .redact import ScrubbedStream, register, scrub
from .requests.store import count_records

STAGES = ("fetch", "calibrate", "sample", "vote", "plot", "report")
EXIT_USAGE = 2
EXIT_IO = 1
EXIT_INTERRUPTED = 130


def _stage(name: str) -> Callable[[Params], None]:
    # Imported lazily: `harness vote` should not pay for importing the HTTP client or matplotlib.
    from importlib import import_module

    module = f".stages.{name}" if name in STAGES else f".{name}"  # estimate is a command, not a DVC stage
    return import_module(module, __package__).run  # type: ignore[no-any-return]


def _interrupted() -> type[BaseException]:
    from .requests.engine import (
        Interrupted,  # lazily, as in _user_errors: only a failed stage pays for the import
    )

    return Interrupted


def _user_errors() -> tuple[type[BaseException], ...]:
    from .compare import CompareError
    from .data import DataError
    from .files import MissingInput
    from .interop.rundir import InteropError
    from .report.build import ReportError
    from .requests.client import AuthFailed, RequestFailed
    from .requests.engine import NoAnswers, RunRejected
    from .requests.store import StoreError
    from .requests.thinking import LimitIgnored, TemplateWithoutThinking
    from .servers.embedded import EmbeddedError
    from .share import ShareError
    from .stages.vote import VoteError

    return (ParamsError, DataError, StoreError, EmbeddedError, VoteError, RequestFailed, AuthFailed,
            CompareError, RunRejected, NoAnswers, MissingInput, LimitIgnored, ReportError, ShareError,
            InteropError, TemplateWithoutThinking)


def reproduce(params_path: str, params: Params, incremental: bool) -> int:
    """The main job: `dvc repro --force`, every stage regenerated from the store.

    Forced because "reproduce" should visibly rebuild every output; it costs seconds, since the
    calibrate and sample stages only ask the model for responses missing from the store.
    """
    if params_path != "params.yaml":
        raise ParamsError("reproduce: DVC reads params.yaml; edit it (or use `dvc exp run -S key=value`)")
    preflight(params)  # bad data, a damaged store, no key, no server: fail before DVC starts anything
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.call(["dvc", "repro", *([] if incremental else ["--force"])], env=env)


def run_all(params: Params) -> int:
    """`harness run`: every stage in order, without DVC."""
    preflight(params)  # every stage's inputs checked before the first one writes anything
    for name in STAGES:
        _stage(name)(params)
    return 0


def summarized(params: Params, command: Callable[[], int]) -> int:
    """Run `command`; when it succeeds, print the run summary (how many responses the store gained, time)."""
    from .summary import gather, lines

    started, stored = time.monotonic(), count_records(store_dir())
    code = command()
    if code == 0:
        print("\n".join(lines(gather(count_records(store_dir()) - stored, time.monotonic() - started), params)))
    return code


def _one_line(error: BaseException | str) -> str:
    """What the user reads: one line, and never the API key, even if a provider echoed it in an error."""
    return "harness: " + scrub(" ".join(str(error).split()))


def main(argv: list[str] | None = None) -> int:
    """Run one command with stdout and stderr scrubbed of the API key (restored afterwards)."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedStream(sys.stdout), ScrubbedStream(sys.stderr)  # type: ignore[assignment]
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = streams


def build_parser() -> argparse.ArgumentParser:
    """Every command and its flags: the stages, then the commands that are not stages."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Measure test-time compute scaling: fetch -> calibrate -> sample -> vote -> plot, report.",
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in STAGES[:-1]:
        sub.add_parser(name, help=f"run the {name} stage")
    _add_report(sub)
    sub.add_parser("run", help="run every stage in order, without DVC")
    sub.add_parser("estimate", help="dry run: requests, tokens and cost still missing from the store")
    _add_compare(sub)
    _add_share(sub)
    _add_import(sub)
    _add_export(sub)
    _add_store(sub)
    repro = sub.add_parser("reproduce", help="the main job: `dvc repro --force` (zero requests with a warm store)")
    repro.add_argument("--incremental", action="store_true", help="plain `dvc repro`: only stages whose inputs changed")
    return parser


def _add_report(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="the offline HTML page to read every sample (outputs/report.html); "
                            "two runs: side by side")
    report.add_argument("runs", nargs="*", metavar="RUN", help="run directories (default: this project)")
    report.add_argument("-o", "--output", help="the page to write (default: RUN/outputs/report.html for one "
                        "run, outputs/report_compare.html for two)")
    report.add_argument("--split", action="store_true", help="cells in per-problem files beside the page "
                        "(automatic past the size one file holds)")


def _add_compare(sub: argparse._SubParsersAction) -> None:
    comp = sub.add_parser("compare", help="several finished runs on one accuracy-vs-tokens figure")
    comp.add_argument("runs", nargs="+", metavar="RUN", help="a project directory or a curve.csv")
    comp.add_argument("--label", action="append", help="a legend label per run, in order")
    comp.add_argument("--reference", metavar="NAME", help="a published curve drawn beside the runs, no interval "
                      "(data/references/NAME.json, e.g. seed-o1-mini, or a path)")
    comp.add_argument("--target", type=float, metavar="ACCURACY", help="the accuracy (0-1) whose cost in tokens the "
                      "efficiency ratio compares (default: the lower of the two runs' best)")


def _add_share(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("share", help="the store and outputs DVC-tracked, committed and pushed to the default DVC "
                   "remote (safe to rerun)")


def _add_import(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser("import", help="another tool's samples (lm-eval, inspect, JSONL) as a run directory")
    imp.add_argument("format", choices=("lm-eval", "inspect", "jsonl"), help="the tool that wrote the files")
    imp.add_argument("files", nargs="+", metavar="FILE", help="lm-eval samples_*.jsonl, inspect .eval/.json logs, "
                     "or one JSONL file in the schema of docs/interop.md")
    imp.add_argument("--into", required=True, metavar="DIR", help="the run directory to make")
    imp.add_argument("--force", action="store_true", help="replace the run already in DIR")
    imp.add_argument("--budget", type=int, metavar="N", help="the token budget, where the files do not say it")
    imp.add_argument("--task", help="the task to import, where the files hold several")
    imp.add_argument("--model", help="the model's name (default: what the files say)")
    imp.add_argument("--id-field", metavar="NAME", help="lm-eval: the document field holding the problem id "
                     "(default: id when the documents have one, else lm-eval's doc_id)")
    imp.add_argument("--tokenizer", metavar="GGUF", help="lm-eval: count tokens with this model file's "
                     "vocabulary (default: estimated from the text)")


def _add_export(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("export", help="this run's samples as another tool's logs")
    exp.add_argument("format", choices=("inspect",), help="inspect: one inspect_ai log per budget")
    exp.add_argument("--out", default="logs", metavar="DIR", help="where the logs go (default: logs/)")


def _add_store(sub: argparse._SubParsersAction) -> None:
    store = sub.add_parser("store", help="the response store itself: seal (compress) shards no run writes to")
    actions = store.add_subparsers(dest="action", required=True)
    seal = actions.add_parser("seal", help="compress the shards of writers that have ended, record by record, "
                              "readable with zcat (docs/store.md)")
    seal.add_argument("dir", nargs="?", default=None, metavar="STORE", help="the store directory (default: store/)")
    seal.add_argument("--all", action="store_true", help="the stages' shards too: only when no run is writing to "
                      "the store and the store is tracked as a whole (not as the pipeline's per-stage outputs)")


def _seal(directory: str | None, every: bool) -> int:
    """`harness store seal`: what was sealed, and the bytes before and after."""
    from pathlib import Path

    from .requests.store import StoreError, seal_store

    root = Path(directory) if directory else store_dir()
    if not root.is_dir():
        raise StoreError(f"{root}: no such store directory; give the directory holding the *.jsonl shards")
    sizes = {p: p.stat().st_size for p in root.glob("*.jsonl")}
    done = seal_store(root, every)
    before = sum(sizes[old] for old, _ in done)
    after = sum(new.stat().st_size for _, new in done)
    for old, new in done:
        print(f"sealed {old.name} -> {new.name}")
    left = len(sizes) - len(done)
    print(f"store seal: {len(done)} shards, {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"
          + (f" ({after / before:.2f}x)" if before else "")
          + (f"; {left} left as they are (a run may still write to them{'' if every else ': --all seals them'})"
             if left else ""))
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    """Run one command; commands over finished runs need no params.yaml of their own."""
    if args.command == "compare":  # reads finished runs only: no params, no model
        from .compare import run as compare_runs

        compare_runs(args.runs, args.label, args.reference, args.target)
        return 0
    if args.command == "share":  # git and DVC only: no params, no model
        from .share import run as share

        return share()
    if args.command == "report" and (args.runs or args.output or args.split):  # other runs: their own params
        from .report.build import report_command

        report_command(args.runs, args.output, args.split)
        return 0
    if args.command == "import":  # makes a run directory: no params of its own
        from .interop.commands import import_command

        import_command(args.format, args.files, args.into, args.force, args.task, args.budget, args.id_field,
                       args.tokenizer, args.model)
        return 0
    if args.command == "store":  # the store's files only: no params, no model
        return _seal(args.dir, args.all)
    params = load_params(args.params)
    if args.command == "export":
        from .interop.inspect_log import export_command

        export_command(params, args.out)
        return 0
    if params.model.key_variable:  # a provider may echo the key: nothing we write may contain it
        register(os.environ.get(params.model.key_variable))
    if args.command == "reproduce":
        return summarized(params, lambda: reproduce(args.params, params, args.incremental))
    if args.command == "run":
        return summarized(params, lambda: run_all(params))
    _stage(args.command)(params)
    return 0


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return _dispatch(args)
    except _interrupted() as exc:
        print(_one_line(exc), file=sys.stderr)
        return EXIT_INTERRUPTED
    except _user_errors() as exc:
        print(_one_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # disk full, permission denied: the environment, not the harness
        where = f"{exc.filename}: " if exc.filename else ""
        print(_one_line(f"{where}{exc.strerror or exc}; free space or fix permissions, then rerun"), file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("harness: interrupted; every response received so far is in the store, rerun to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED

if __name__ == "__main__":
    sys.exit(main())
