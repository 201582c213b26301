"""`harness share`: the response store and the outputs DVC-tracked, committed and pushed to a DVC remote.

Why a command: the committed default keeps its results in git (`cache: false` in dvc.yaml) so that a clone
reproduces offline with no remote, and then `dvc push` has nothing to push. A team sharing a paid run needs
the results in DVC's cache instead, dvc.lock committed beside them and the cache pushed. Done by hand that
took four tools and stopped half-way when git had no identity (results staged, nothing committed, and the
rerun refused). Here every check that can fail (a git repository, an identity, a DVC remote, no unrelated
staged changes) runs before anything changes; a step that still fails is rolled back, so rerunning is always
safe, and a rerun on a shared repository commits the new dvc.lock (if any) and pushes what the remote lacks.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .files import STORE_DIR, store_dir

RESULTS = ("outputs", "store")  # what dvc.yaml's `cache: false` keeps in git in the committed default
GIT_IGNORES = ("outputs/.gitignore", "store/.gitignore")  # written by DVC for its cached outputs
GIT_TRACKED_MARK = "cache: false"
REMOTE_HINT = ("add one, e.g. `dvc remote add -d shared s3://BUCKET/PATH` or `dvc remote add -d shared "
               "/mnt/team/dvc-store` (credentials with `--local`: docs/sharing.md#remote-setup), then rerun "
               "`harness share`")


class ShareError(RuntimeError):
    """Sharing cannot start or could not finish: the message says why and what to do next."""


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if check and done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines() or ["no output"]
        raise ShareError(f"`{' '.join(cmd)}` failed: {said[-1]}")
    return done


def _check_git() -> None:
    """A git repository, and an identity for the commit (checked before any change: a commit that fails
    after DVC took the results out of git is what left the hand-made recipe half done)."""
    if _run("git", "rev-parse", "--show-toplevel", check=False).returncode != 0:
        raise ShareError("share: not in a git repository; run it in the project's clone")
    for who in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        if _run("git", "var", who, check=False).returncode != 0:
            raise ShareError("share: git has no identity to commit the DVC-tracked results with; run "
                             "`git config user.name \"Your Name\"` and `git config user.email you@example.org`, "
                             "then rerun `harness share` (nothing was changed)")
    if _run("git", "diff", "--cached", "--quiet", check=False).returncode != 0:
        raise ShareError("share: git has staged changes that are not part of sharing; commit or unstage them "
                         "(`git restore --staged .`), then rerun `harness share` (nothing was changed)")


def default_remote() -> tuple[str, str]:
    """The default DVC remote's name and URL, or a ShareError that says how to add one."""
    found = _run("dvc", "remote", "default", check=False)  # exit 1, "No default remote set", without one
    name = found.stdout.strip()
    if found.returncode != 0 or not name:
        raise ShareError(f"share: no default DVC remote to push to; {REMOTE_HINT} (nothing was changed)")
    for line in _run("dvc", "remote", "list").stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return name, fields[1] if len(fields) > 1 else ""
    return name, ""


def git_tracked_results() -> bool:
    """True while dvc.yaml keeps results in git (the committed default)."""
    return GIT_TRACKED_MARK in Path("dvc.yaml").read_text(encoding="utf-8")


def _switch_to_dvc() -> None:
    """dvc.yaml's outputs cached by DVC, the results out of git's index (they stay on disk) and in DVC's
    cache; dvc.lock keeps the same hashes, so a colleague's `dvc repro` checks the figure against yours."""
    if _run("git", "diff", "--quiet", "HEAD", "--", "dvc.yaml", check=False).returncode != 0:
        raise ShareError("share: dvc.yaml has uncommitted edits; commit or discard them first, then rerun "
                         "`harness share` (nothing was changed)")
    dvc_yaml = Path("dvc.yaml")
    dvc_yaml.write_text(dvc_yaml.read_text(encoding="utf-8").replace(GIT_TRACKED_MARK, "cache: true"),
                        encoding="utf-8")
    tracked = [p for p in RESULTS if _run("git", "ls-files", "--", p).stdout.strip()]
    if tracked:
        _run("git", "rm", "-r", "--cached", "-q", "--", *tracked)
    _run("dvc", "commit", "--force", "--quiet")
    _run("git", "add", "--", "dvc.yaml", "dvc.lock", *[p for p in GIT_IGNORES if Path(p).exists()])


def _roll_back(before: dict[str, bytes | None]) -> None:
    """Undo a switch that could not be committed: dvc.yaml and dvc.lock as they were, the index as HEAD has
    it (nothing else was staged), DVC's new .gitignore files gone (the results never left the disk)."""
    _run("git", "reset", "-q", "--", "dvc.yaml", "dvc.lock", *RESULTS, check=False)
    for name, content in before.items():
        if content is not None:
            Path(name).write_bytes(content)
        else:
            Path(name).unlink(missing_ok=True)


def _shared_store() -> list[str]:
    """A HARNESS_STORE inside the repository (a sweep's shared store): `dvc add`ed, its .dvc file to commit.
    The project's own store/ is a pipeline output and goes with the outputs."""
    store, root = store_dir().resolve(), Path.cwd().resolve()
    if store == (root / STORE_DIR).resolve() or not store.is_relative_to(root) or not store.exists():
        return []
    relative = str(store.relative_to(root))
    _run("dvc", "add", "--quiet", relative)
    ignore = str(Path(relative).parent / ".gitignore")
    return [f"{relative}.dvc", ignore]


def _commit(message: str, paths: list[str]) -> str | None:
    """Commit `paths` if any changed; the short hash, or None when there was nothing new."""
    _run("git", "add", "--", *paths)
    if _run("git", "diff", "--cached", "--quiet", check=False).returncode == 0:
        return None
    _run("git", "commit", "-q", "-m", message)
    return _run("git", "rev-parse", "--short", "HEAD").stdout.strip()


def record() -> list[str]:
    """The results DVC-tracked and committed; what was done, one line each."""
    said = []
    if git_tracked_results():
        before = {p: Path(p).read_bytes() if Path(p).exists() else None
                  for p in ("dvc.yaml", "dvc.lock", *GIT_IGNORES)}
        try:
            _switch_to_dvc()
            commit = _commit("Track the response store and outputs with DVC (shared through a DVC remote)",
                             ["dvc.yaml", "dvc.lock"])
        except BaseException:
            _roll_back(before)
            raise
        said.append(f"share: store/ and outputs/ are now DVC-tracked, out of git (commit {commit})")
    else:
        _run("dvc", "commit", "--force", "--quiet")
    commit = _commit("Results as shared: dvc.lock of the pushed run", ["dvc.lock", *_shared_store()])
    if commit:
        said.append(f"share: the results as they are now committed ({commit}: dvc.lock, a shared store's .dvc)")
    return said


def run() -> int:
    """Check, record, push; print what happened and what a colleague runs."""
    _check_git()
    name, url = default_remote()
    lines = record()
    pushed = _run("dvc", "push").stdout.strip().splitlines()
    lines.append(f"share: DVC remote '{name}' ({url}): {pushed[-1] if pushed else 'pushed'}")
    lines.append("share: `git push` this branch, then a colleague runs `git pull && dvc pull && harness reproduce`")
    print("\n".join(lines))
    return 0
