"""The fixture-based end-to-end replay: the committed response store regenerates the committed outputs.

A copy of the repository (as a fresh git repo, at another absolute path than the one the committed
outputs were made in) runs `dvc repro -f` twice with HARNESS_NO_REQUESTS=1, so a single missing response
fails the run instead of starting a model; every output must have the same sha256 as the committed file,
both times, and carry no timestamp or absolute path.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from conftest import REPO
from gitrepo import SHARDS, copy_repo, hashes, outputs, run

# A date-time as libraries stamp it (ISO 8601, or PNG/PDF "Creation Time" text chunks).
TIMESTAMP = re.compile(rb"\b20\d\d-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d|Creation Time|CreationDate")


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("replay") / "repo")


@pytest.fixture(scope="module")
def reruns(clone) -> tuple[dict[str, str], dict[str, str]]:
    """Delete every output, then `dvc repro -f` twice; the sha256 of every output after each run."""
    for f in outputs():
        (clone / f).unlink()
    run("dvc", "repro", "-f", cwd=clone)
    first = hashes(clone, outputs())
    run("dvc", "repro", "-f", cwd=clone)
    return first, hashes(clone, outputs())


def test_committed_outputs_exist():
    missing = [f for f in outputs(store=True) if not (REPO / f).exists()]
    assert not missing, f"not committed: {missing}"


@pytest.mark.pinned
def test_dvc_repro_twice_regenerates_committed_outputs_byte_for_byte(reruns):
    first, second = reruns
    assert first == second, f"dvc repro -f is not deterministic: {[f for f in first if first[f] != second[f]]}"
    committed = hashes(REPO, outputs())
    assert first == committed, f"differ from the committed files: {[f for f in committed if first[f] != committed[f]]}"


def test_replay_rewrote_no_store_line(clone, reruns):
    assert hashes(clone, list(SHARDS)) == hashes(REPO, list(SHARDS))


def test_dvc_status_is_clean_after_replay(clone, reruns):
    """dvc.lock matches what the replay produced: nothing left to reproduce."""
    assert "up to date" in run("dvc", "status", cwd=clone)


def test_outputs_carry_no_timestamp_or_absolute_path(clone, reruns):
    leaks = {}
    for f in outputs():
        data = (clone / f).read_bytes()
        found = [m.group().decode(errors="replace") for m in TIMESTAMP.finditer(data)]
        found += [p for p in (str(clone), str(REPO), str(Path.home())) if p.encode() in data]
        if f.endswith(".png"):
            found += [c for c in _png_chunks(data) if c in {"tIME", "tEXt", "iTXt", "zTXt"}]
        if found:
            leaks[f] = found
    assert not leaks, f"outputs must not depend on when or where they were made: {leaks}"


def _png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        chunks.append(data[i + 4:i + 8].decode("ascii"))
        i += 12 + length
    return chunks


REASONING = "examples/reasoning-1.5b"  # the real 1.5B reasoning run, its own DVC pipeline


@pytest.mark.pinned
def test_the_reasoning_example_replays_through_its_own_dvc_pipeline_byte_for_byte(clone):
    """`cd examples/reasoning-1.5b && dvc repro` on a clone: its dvc.lock is current, and with every output
    deleted the pipeline regenerates each one byte for byte from the committed store with zero requests
    (HARNESS_NO_REQUESTS=1: one missing response would fail the run) and rewrites no store line."""
    example = clone / REASONING
    assert "up to date" in run("dvc", "status", cwd=example)
    files = [f"{REASONING}/{f}" for f in outputs()]
    store = [f"{REASONING}/{f}" for f in SHARDS]
    for f in files:
        (clone / f).unlink()
    run("dvc", "repro", cwd=example)
    assert hashes(clone, files) == hashes(REPO, files)
    assert hashes(clone, store) == hashes(REPO, store)
    assert "up to date" in run("dvc", "status", cwd=example)
