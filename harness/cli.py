"""The `harness` command: parse arguments, load params, run one stage. No logic of its own.

Every user-facing error (bad params, bad data, damaged store, unreachable server) is printed as one
line on stderr with exit code 2, before anything is sent or written; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable

from .params import Params, ParamsError, load_params

STAGES = ("fetch", "calibrate", "sample", "vote", "plot")
EXIT_USAGE = 2


def _stage(name: str) -> Callable[[Params], None]:
    # Imported lazily: `harness vote` should not pay for importing the HTTP client or matplotlib.
    from importlib import import_module

    module = {"fetch": "data"}.get(name, name)
    return import_module(f".{module}", __package__).run  # type: ignore[no-any-return]


def _user_errors() -> tuple[type[BaseException], ...]:
    from .client import RequestFailed
    from .data import DataError
    from .embedded import EmbeddedError
    from .store import StoreError
    from .vote import VoteError

    return (ParamsError, DataError, StoreError, EmbeddedError, VoteError, RequestFailed)


def reproduce(params_path: str, incremental: bool) -> int:
    """The main job: `dvc repro --force`, every stage regenerated from the store.

    Forced because "reproduce" should visibly rebuild every output; it costs seconds, since the
    calibrate and sample stages only ask the model for responses missing from the store.
    """
    if params_path != "params.yaml":
        raise ParamsError("reproduce: DVC reads params.yaml; edit it (or use `dvc exp run -S key=value`)")
    load_params(params_path)  # fail on bad params before DVC starts anything
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.call(["dvc", "repro", *([] if incremental else ["--force"])], env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Measure test-time compute scaling: fetch -> calibrate -> sample -> vote -> plot.",
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in STAGES:
        sub.add_parser(name, help=f"run the {name} stage")
    sub.add_parser("run", help="run every stage in order, without DVC")
    repro = sub.add_parser("reproduce", help="the main job: `dvc repro --force` (zero requests with a warm store)")
    repro.add_argument("--incremental", action="store_true", help="plain `dvc repro`: only stages whose inputs changed")
    args = parser.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if args.command == "reproduce":
            return reproduce(args.params, args.incremental)
        params = load_params(args.params)
        stages = STAGES if args.command == "run" else (args.command,)
        for name in stages:
            _stage(name)(params)
    except _user_errors() as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted; every response received so far is in the store, rerun to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
