"""Every benchmark script still runs: each one end to end with two repetitions (`--reps 2`), so a change to
the harness that breaks a simulation or a timing script shows up in the fast lane, not months later when
someone wants its table again. The numbers of such a run mean nothing; that it prints its table does.

Why the grids are trimmed: with `--reps 2` over their whole grids the coverage scripts still cost 5-39 s of
CPU each (coverage_law 39, coverage_frontier 28, coverage_adaptive 21, measured on the project machine),
because every repetition of every case runs the vote stage with its 2,000 bootstrap replicates. The smoke
run keeps each script's own `main` and every code path of a case, on the first case of its grid only (the
script's module constants set before `main` runs): a few seconds each.

The scripts that need what the fast lane does not have are named here with the reason (the list is held to
benchmarks/ so a new script cannot slip past both); the pytest-benchmark files run under `nox -s bench`.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
# script -> (its arguments, the grid trimmed to its first case, what its output must show)
SMOKE = {
    "coverage_adaptive.py": (["--reps", "2"], "CASES = CASES[:1]; ACCURACIES = ACCURACIES[:1]", "| 12 | 8 | 0.3 |"),
    "coverage_compare.py": (["--reps", "2"], "", "### The efficiency ratio"),
    "coverage_frontier.py": (["--reps", "2"], "GRIDS = dict(list(GRIDS.items())[:1]); CASES = CASES[:1]",
                             "| near-equal | 12 | 8 |"),
    "coverage_law.py": (["--reps", "2", "--curve", "seed"], "CASES = CASES[:1]", "| seed | 12 | 2 |"),
    "coverage_points.py": (["--reps", "2"], ("PROBLEMS = PROBLEMS[:1]; POOLS = range(1, 3); "
                           "TRUE_ACCURACIES = TRUE_ACCURACIES[:2]"), "minimum over every cell: 12 problems"),
    "bench_engine.py": (["--requests", "16", "--skip-embedded"], "", '"harness_req_per_s"'),
}
# Load the script as a module, trim its grid in its own namespace, run its main (argv from the command line).
RUNNER = """
import importlib.util, sys
script, trim, *arguments = sys.argv[1:]
spec = importlib.util.spec_from_file_location("benchmark", script)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
exec(trim, vars(module))
sys.argv = [script, *arguments]
module.main()
"""
NOT_HERE = {
    "bench_servers.py": "runs both real model servers on the 1.5B weights (nox -s llama-server's machine)",
    "bench_report.py": "builds a ~100 MB synthetic run and opens it in Debian's chromium (minutes, not seconds)",
    "bench_store.py": "writes a million responses (0.4 GB) or whole forcing runs under /usr/bin/time (minutes)",
}


def test_every_benchmark_script_is_smoke_run_or_says_why_not():
    scripts = {p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("test_")}
    assert scripts == set(SMOKE) | set(NOT_HERE)


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_the_benchmark_script_runs_with_two_repetitions(script, tmp_path):
    arguments, trim, shown = SMOKE[script]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", RUNNER, str(BENCHMARKS / script), trim, *arguments], cwd=REPO,
                          env=env, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert shown in done.stdout, done.stdout[-2000:]
