"""Sharing a run through a real DVC remote on loopback: push, fresh clone, pull, reproduce.

The publisher is a copy of this repository shared with `harness share` (the README's recipe: the results
DVC-tracked, committed, pushed), then shared again to each remote; a fresh `git clone` of it has no store and
no outputs until `dvc pull` fetches them, and then `dvc repro -f` (HARNESS_NO_REQUESTS=1: any missing
response fails the run instead of reaching a model) regenerates every output with the same sha256.

Remote kinds, each a real server or directory on this machine: a local directory; S3 (moto's S3 server
on 127.0.0.1, DVC's own s3 plugin); HTTP (pull only: `python -m http.server` on 127.0.0.1 serving a
directory remote that was pushed to).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from gitrepo import GIT, SHARDS, copy_repo, env, hashes, outputs, run

# the module-scoped repositories below are built once: its tests stay on one xdist worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("remote")

BUCKET = "harness-runs"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
# Never let botocore look for credentials or a region beyond this machine.
AWS_ENV = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}


def _env() -> dict[str, str]:
    return env(**GIT_ENV, **AWS_ENV)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A copy of the repository whose store and outputs are DVC-tracked (the committed run, unchanged)."""
    publisher = tmp_path_factory.mktemp("publisher")
    repo = copy_repo(publisher / "repo")
    _remote_add(repo, str(publisher / "first-remote"))
    run("harness", "share", cwd=repo, environ=_env())  # each test below shares again, to its own remote
    return repo


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    # plain imports: a missing dvc[s3] or moto[server] (both in requirements.lock) is a broken install,
    # and must fail here like any other missing package, never turn into a skip
    import boto3
    import dvc_s3  # noqa: F401 - `dvc push` to an s3:// remote loads it
    from moto import server as moto_server

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture
def http_server(tmp_path) -> Iterator[tuple[Path, str]]:
    """`python -m http.server` on a free loopback port, serving a directory (filled later by a push)."""
    root = tmp_path / "http-root"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 43117 (http://127.0.0.1:43117/) ..."
        port = line.split(" port ")[1].split()[0]
        yield root, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _remote_add(repo: Path, url: str, **options: str) -> None:
    """Configure the default remote in .dvc/config.local, as a user would for their own credentials."""
    run("dvc", "remote", "add", "--local", "--default", "--force", "shared", url, cwd=repo, environ=_env())
    for key, value in options.items():
        run("dvc", "remote", "modify", "--local", "shared", key, value, cwd=repo, environ=_env())


def _clone_pull(published: Path, dest: Path, url: str, **options: str) -> dict[str, str]:
    """A fresh clone has no results; `dvc pull` from the remote brings every one back, byte for byte, and
    `dvc status` finds them to be the run dvc.lock describes. Returns their sha256."""
    expected = hashes(published, outputs(store=True))
    run(*GIT, "clone", "-q", str(published), str(dest), cwd=dest.parent)
    absent = [f for f in expected if (dest / f).exists()]
    assert not absent, f"a fresh clone of a DVC-tracked run must not carry results in git: {absent}"

    _remote_add(dest, url, **options)
    run("dvc", "pull", cwd=dest, environ=_env())
    assert hashes(dest, list(expected)) == expected, "dvc pull did not fetch the pushed run"
    assert "up to date" in run("dvc", "status", cwd=dest, environ=_env())
    return expected


def _clone_pull_reproduce(published: Path, dest: Path, url: str, **options: str) -> None:
    """Pulled, then reproduced from the pulled store with zero requests: the same outputs. (Done for one
    remote kind only: what a reproduction proves does not depend on where the store was pulled from, and
    each `dvc repro -f` is a whole pipeline run; the other kinds check the pull itself.)"""
    expected = _clone_pull(published, dest, url, **options)
    run("dvc", "repro", "-f", cwd=dest, environ=_env())  # HARNESS_NO_REQUESTS=1: zero model requests
    after = hashes(dest, list(expected))
    assert after == expected, f"reproduced outputs differ: {[f for f in expected if after[f] != expected[f]]}"
    assert "up to date" in run("dvc", "status", cwd=dest, environ=_env())


def test_publisher_tracks_results_with_dvc_not_git(published):
    tracked = run("git", "ls-files", cwd=published).split()
    assert not set(outputs(store=True)) & set(tracked)
    assert "cache: false" not in (published / "dvc.yaml").read_text()
    # The conversion keeps every result and every hash: dvc.lock describes the same run.
    assert hashes(published, outputs(store=True)) == hashes(REPO, outputs(store=True))
    assert "up to date" in run("dvc", "status", cwd=published, environ=_env())


@pytest.mark.pinned
def test_local_directory_remote(published, tmp_path):
    remote = tmp_path / "remote"
    _remote_add(published, str(remote))
    run("harness", "share", cwd=published, environ=_env())
    assert any((remote / "files" / "md5").rglob("*")), "dvc push wrote nothing to the remote"
    _clone_pull_reproduce(published, tmp_path / "fresh", str(remote))


def test_s3_remote_on_loopback(published, tmp_path, s3_endpoint):
    url = f"s3://{BUCKET}/scaling-harness"
    _remote_add(published, url, endpointurl=s3_endpoint)
    run("harness", "share", cwd=published, environ=_env())
    _clone_pull(published, tmp_path / "fresh", url, endpointurl=s3_endpoint)


def test_http_remote_pull_only(published, tmp_path, http_server):
    root, url = http_server
    _remote_add(published, str(root))  # HTTP servers are read-only for DVC: publish to the served directory
    run("harness", "share", cwd=published, environ=_env())
    _clone_pull(published, tmp_path / "fresh", url)


def test_pull_without_a_remote_says_what_to_do(published, tmp_path):
    fresh = tmp_path / "fresh"
    run(*GIT, "clone", "-q", str(published), str(fresh), cwd=tmp_path)
    result = subprocess.run(["dvc", "pull"], cwd=fresh, env=_env(), capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "remote" in (result.stdout + result.stderr).lower()


def test_sharing_again_commits_nothing_new(published):
    head = run("git", "rev-parse", "HEAD", cwd=published)
    assert "up to date" in run("harness", "share", cwd=published, environ=_env())
    assert run("git", "rev-parse", "HEAD", cwd=published) == head
    assert SHARDS[0] not in run("git", "ls-files", cwd=published).splitlines()
