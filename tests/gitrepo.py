"""Helpers for the tests that run DVC on a real copy of this repository (replay, remotes, experiments).

A copy is the working tree (minus virtualenvs and caches) committed into a fresh git repository, so the
tests see uncommitted edits too; DVC then runs as a real subprocess, exactly as a user would run it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import yaml
from conftest import REPO

EXCLUDE = {".git", ".venv", ".nox", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".benchmarks", "__pycache__",
           "dvc_plots", "tmp", "cache", "config.local", "scaling_harness.egg-info", "wheels",
           # claims and batches of a run in flight (store/.claims, store/.batches): local state that comes and
           # goes while the copy is made (a live example run in the working tree), never part of the project
           ".claims", ".batches"}
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false"]
SHARDS = ("store/calibrate.jsonl", "store/sample.jsonl")


def env(**extra: str) -> dict[str, str]:
    """The environment of every DVC call in tests: replay only (a missing response fails the run)."""
    return {**os.environ, "HARNESS_NO_REQUESTS": "1", "DVC_NO_ANALYTICS": "1", **extra}


def run(*cmd: str, cwd: Path, environ: dict[str, str] | None = None) -> str:
    """Run a command; on failure the assertion shows its full output."""
    result = subprocess.run(cmd, cwd=cwd, env=environ or env(), capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    return result.stdout


def copy_repo(dest: Path) -> Path:
    """Copy the working tree to `dest` and commit it into a fresh git repository."""
    shutil.copytree(REPO, dest, ignore=lambda d, names: [n for n in names if n in EXCLUDE])
    run(*GIT, "init", "-q", cwd=dest)
    run(*GIT, "add", "-A", cwd=dest)
    run(*GIT, "commit", "-qm", "copy of the working tree", cwd=dest)
    return dest


def outputs(store: bool = False) -> list[str]:
    """Every stage output and metric that dvc.yaml declares; the store shards only if `store`."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    files = []
    for stage in stages.values():
        for kind in ("outs", "metrics"):
            for entry in stage.get(kind, []):
                name = entry if isinstance(entry, str) else next(iter(entry))
                if store or not name.startswith("store/"):
                    files.append(name)
    return files


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes(root: Path, files: list[str]) -> dict[str, str]:
    return {f: sha(root / f) for f in files}
