"""Sessions: `nox -s lint typecheck tests replay` is what CI runs; `nox -s reproduce` is the main job.

Every session installs the pinned, hashed lock (requirements.lock) and then this package without
dependencies, so figures are rendered by the same library versions everywhere (byte-identical PNGs).
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "replay"]
nox.options.reuse_venv = "yes"

ENV = {"DVC_NO_ANALYTICS": "1", "TOKENIZERS_PARALLELISM": "false"}


def install(session: nox.Session) -> None:
    session.install("--require-hashes", "-r", "requirements.lock")
    session.install("--no-deps", "-e", ".")


def install_from_lock(session: nox.Session, *names: str) -> None:
    """Install only `names` (without dependencies) with their pinned versions and hashes from the lock."""
    blocks, keep = [], False
    for line in Path("requirements.lock").read_text().splitlines():
        if line and not line[0].isspace():
            keep = line.split("==")[0].lower() in names
        if keep and (not line[0].isspace() or "--hash" in line):
            blocks.append(line)
    assert blocks, f"{names} not in requirements.lock"
    subset = Path(session.create_tmp()) / "subset.lock"
    subset.write_text("\n".join(blocks) + "\n")
    session.install("--require-hashes", "--no-deps", "-r", str(subset))


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real HTTP, the embedded model, DVC remotes and experiments, Dockerfile)."""
    install(session)
    session.run("pytest", "--ignore=tests/test_replay.py", *session.posargs, env=ENV)


@nox.session
def replay(session: nox.Session) -> None:
    """The fixture-based end-to-end replay: `dvc repro -f` on the committed store equals committed outputs."""
    install(session)
    session.run("pytest", "tests/test_replay.py", *session.posargs, env=ENV)


@nox.session
def reproduce(session: nox.Session) -> None:
    """The main job: `dvc repro` (replays the committed store; runs the embedded model only if needed)."""
    install(session)
    session.run("harness", "reproduce", *session.posargs, env=ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything Python in the repository (only ruff is installed, at the lock's version)."""
    install_from_lock(session, "ruff")
    session.run("ruff", "check", "harness", "tests", "benchmarks", "noxfile.py", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on the package."""
    install(session)
    session.run("mypy", "harness", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark on benchmarks/ (outside `pytest`'s default run); JSON to .benchmarks/bench.json,
    or to the path given after `--`: `nox -s bench -- --benchmark-json=out.json`."""
    install(session)
    args = session.posargs or ["--benchmark-json=.benchmarks/bench.json"]
    session.run("mkdir", "-p", ".benchmarks", external=True)
    session.run("pytest", "benchmarks", "-p", "no:cacheprovider", *args, env=ENV)


@nox.session(name="docker-check")
def docker_check(session: nox.Session) -> None:
    """The Dockerfile without an engine: hadolint, its structure, and the image's entry command run outside
    a container (tests/test_docker.py; also part of `tests`)."""
    install(session)
    session.run("hadolint", "Dockerfile")
    session.run("pytest", "tests/test_docker.py", *session.posargs, env=ENV)


@nox.session(name="docker-build", venv_backend="none")
def docker_build(session: nox.Session) -> None:
    """A real image build and run with podman, no registry, --network none (root; the llama.cpp compile dominates, docs/sharing.md has the measured time; not in CI)."""
    session.run("docker/build-offline", *session.posargs, external=True)
