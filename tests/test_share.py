"""`harness share` on a real copy of this repository and a real DVC remote (a local directory).

What a researcher meets: no git identity (refused before any change, and the rerun completes), no remote
(refused with the command that adds one), a second run (nothing new: no commit, nothing pushed twice), and a
sweep's shared store (`HARNESS_STORE`) tracked and pushed, again after it grew. The clone-pull-reproduce
half of sharing, on a directory, S3 and HTTP remote, is tests/test_remote.py, whose publisher runs this
command too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from gitrepo import GIT, SHARDS, copy_repo, outputs, run

pytestmark = pytest.mark.xdist_group("share")

IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def _env(tmp: Path, identity: bool = True, **extra: str) -> dict[str, str]:
    """A user's environment: no global or system git config (so no identity unless `identity`), replay only."""
    config = tmp / "gitconfig"
    config.write_text("[user]\n\tuseConfigOnly = true\n", encoding="utf-8")  # no guessing user@host
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_"))}
    return {**base, "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1", "HARNESS_NO_REQUESTS": "1",
            "DVC_NO_ANALYTICS": "1", **(IDENTITY if identity else {}), **extra}


def _share(repo: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["harness", "share"], cwd=repo, env=environ, capture_output=True, text=True, check=False)


def _state(repo: Path) -> tuple[str, str, str]:
    """HEAD, `git status`, dvc.yaml: what a refused share must leave exactly as it found it."""
    return (run("git", "rev-parse", "HEAD", cwd=repo), run("git", "status", "--porcelain", cwd=repo),
            (repo / "dvc.yaml").read_text())


def _remote(repo: Path, where: Path, environ: dict[str, str]) -> Path:
    run("dvc", "remote", "add", "--local", "--default", "shared", str(where), cwd=repo, environ=environ)
    return where


def _files(remote: Path) -> int:
    return sum(1 for p in remote.rglob("*") if p.is_file())


def test_without_a_git_identity_nothing_changes_and_the_rerun_shares(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    remote = _remote(repo, tmp_path / "remote", _env(tmp_path))
    before = _state(repo)

    refused = _share(repo, _env(tmp_path, identity=False))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.count("\n") == 1 and "git config user.email" in refused.stderr, refused.stderr
    assert _state(repo) == before and not remote.exists(), "a refused share changed something"

    shared = _share(repo, _env(tmp_path))
    assert shared.returncode == 0, shared.stdout + shared.stderr
    tracked = run("git", "ls-files", cwd=repo).split()
    assert not set(outputs(store=True)) & set(tracked), "results still in git"
    assert "cache: false" not in (repo / "dvc.yaml").read_text()
    assert run("git", "status", "--porcelain", cwd=repo) == "", "share left uncommitted changes"
    assert _files(remote) == len(outputs(store=True)), "every output and store shard pushed, once"

    head = run("git", "rev-parse", "HEAD", cwd=repo)
    again = _share(repo, _env(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Everything is up to date" in again.stdout, again.stdout
    assert run("git", "rev-parse", "HEAD", cwd=repo) == head, "a rerun with nothing new made a commit"


def test_without_a_remote_it_says_how_to_add_one_and_changes_nothing(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    before = _state(repo)
    refused = _share(repo, _env(tmp_path))
    assert refused.returncode == 2
    assert "no default DVC remote" in refused.stderr and "dvc remote add -d shared" in refused.stderr
    assert _state(repo) == before
    assert SHARDS[0] in run("git", "ls-files", cwd=repo).split()


def test_staged_changes_are_refused_before_anything_changes(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    _remote(repo, tmp_path / "remote", _env(tmp_path))
    (repo / "notes.txt").write_text("mine\n")
    run("git", "add", "notes.txt", cwd=repo)
    before = _state(repo)
    refused = _share(repo, _env(tmp_path))
    assert refused.returncode == 2 and "staged changes" in refused.stderr, refused.stderr
    assert _state(repo) == before


def test_a_sweeps_shared_store_is_tracked_and_pushed_again_once_it_grew(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    remote = _remote(repo, tmp_path / "remote", _env(tmp_path))
    (repo / "shared-store").mkdir()
    shard = repo / "shared-store" / "sample.jsonl"
    lines = (repo / SHARDS[1]).read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:10]))
    sweep = _env(tmp_path, HARNESS_STORE="shared-store")

    assert _share(repo, sweep).returncode == 0
    assert "shared-store.dvc" in run("git", "ls-files", cwd=repo).split()
    pushed = _files(remote)
    assert pushed == len(outputs(store=True)) + 2  # the outputs, and the shared store: its listing and one shard

    shard.write_text("".join(lines[:20]))  # the sweep paid for ten more responses
    grew = _share(repo, sweep)
    assert grew.returncode == 0, grew.stdout + grew.stderr
    assert "the results as they are now committed" in grew.stdout
    assert _files(remote) == pushed + 2, "the new shard and its listing, nothing else"
    assert run("git", "status", "--porcelain", cwd=repo) == ""
    clone = tmp_path / "clone"
    run(*GIT, "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    _remote(clone, remote, sweep)
    run("dvc", "pull", "shared-store.dvc", cwd=clone, environ=sweep)
    assert (clone / "shared-store" / "sample.jsonl").read_text() == "".join(lines[:20])
