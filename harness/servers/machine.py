"""This machine: where the harness keeps what it builds and assembles (the embedded model's weights, the
llama-server binary, compiled wheels), how it checks them, and how many cores it may use.

Why a module of its own: the embedded model (embedded.py) and the llama-server build (llama_server.py) both
need these, and neither should import the other to get them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """~/.cache/scaling-harness (or under XDG_CACHE_HOME): what the harness builds once per machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scaling-harness"


def sha256_file(path: Path) -> str:
    """A file's sha256, read in blocks (a GGUF is a gigabyte): how everything built or assembled is checked."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. `taskset -c 0 harness run`), not every core
    of the machine: llama.cpp's threads spin while they wait for each other, so a thread per core of a
    machine shared with another run (or confined by a cpuset) makes both crawl."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity is not None else (os.cpu_count() or 1))
