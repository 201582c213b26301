"""Sessions: `nox -s tests replay` is what CI runs; `nox -s reproduce` is the main job.

Every session installs the pinned, hashed lock (requirements.lock) and then this package without
dependencies, so figures are rendered by the same library versions everywhere (byte-identical PNGs).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "replay"]
nox.options.reuse_venv = "yes"

ENV = {"DVC_NO_ANALYTICS": "1", "TOKENIZERS_PARALLELISM": "false"}


def install(session: nox.Session) -> None:
    session.install("--require-hashes", "-r", "requirements.lock")
    session.install("--no-deps", "-e", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real HTTP to local servers, the real embedded model), no replay."""
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
    install(session)
    session.run("ruff", "check", "harness", "tests", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session)
    session.run("mypy", "harness")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks live in benchmarks/, outside the default test run; results go to .benchmarks/."""
    install(session)
    session.run("pytest", "benchmarks", "--benchmark-json=benchmarks/results.json", *session.posargs, env=ENV)
