"""The fixture-based end-to-end replay: the committed response store regenerates the committed outputs.

A copy of the repository (as a fresh git repo) runs `dvc repro -f` twice with HARNESS_NO_REQUESTS=1, so
a single missing response fails the run instead of starting a model; every output must have the same
sha256 as the committed file, both times.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO

EXCLUDE = {".git", ".venv", ".nox", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".benchmarks", "__pycache__"}


def _outputs() -> list[str]:
    """Every stage output and metric that dvc.yaml declares, except the store (an input here)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    files = []
    for stage in stages.values():
        for kind in ("outs", "metrics"):
            for entry in stage.get(kind, []):
                name = entry if isinstance(entry, str) else next(iter(entry))
                if not name.startswith("store/"):
                    files.append(name)
    return files


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("replay") / "repo"
    shutil.copytree(REPO, dest, ignore=lambda d, names: [n for n in names if n in EXCLUDE])
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "replay"], cwd=dest, check=True)
    return dest


def _repro(cwd: Path) -> None:
    env = {**os.environ, "HARNESS_NO_REQUESTS": "1", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(["dvc", "repro", "-f"], check=False, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_outputs_exist():
    missing = [f for f in _outputs() if not (REPO / f).exists()]
    assert not missing, f"not committed: {missing}"


def test_dvc_repro_twice_regenerates_committed_outputs_byte_for_byte(clone):
    committed = {f: _sha(REPO / f) for f in _outputs()}
    for f in committed:
        (clone / f).unlink()
    _repro(clone)
    first = {f: _sha(clone / f) for f in committed}
    _repro(clone)
    second = {f: _sha(clone / f) for f in committed}
    assert first == second, "dvc repro -f is not deterministic"
    assert first == committed, [f for f in committed if first[f] != committed[f]]


def test_replay_rewrote_no_store_line(clone):
    for shard in ("store/calibrate.jsonl", "store/sample.jsonl"):
        assert _sha(clone / shard) == _sha(REPO / shard)
