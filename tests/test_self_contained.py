"""A clone stands on its own: nothing tracked may point outside the repository.

Why a test: a user clones the repository into an empty directory. A test, an example or a params file
that reads `../something` (or a path of the machine it was written on) works on ours and fails on theirs.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Directories that exist only on some machine: a developer's checkout, home or scratch space.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home|Users|tmp|var/folders|private/tmp)/[\w.-]")
PARENT_PATH = re.compile(r"(?:\.\./)+[\w.-]*")
SIBLING = ".." + "/shared"  # the one sibling folder our own machines have (spelt so this file passes its own scan)
# Lines that name such a path as a pattern or as a placeholder, not as a place to read.
ALLOWED = {".gitignore": {"/tmp/"}}


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = []
    for name in names.decode().split("\0"):
        path = REPO / name
        if not name or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if b"\0" not in data[:8192]:  # text only: PNGs and weights cannot name a path
            files.append(path)
    return files


def escapes(path: Path, reference: str) -> bool:
    """Does `reference` (`../x`), read relative to the file that holds it, leave the repository? The one
    sibling folder our own machines have (SIBLING) counts wherever it is named."""
    if reference.startswith(SIBLING):
        return True
    target = Path(os.path.normpath(path.parent / reference))
    return target != REPO and REPO not in target.parents


def outside_references(path: Path) -> list[str]:
    rel = path.relative_to(REPO).as_posix()
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        for match in MACHINE_PATH.finditer(line):
            if not any(allowed in line for allowed in ALLOWED.get(rel, ())):
                found.append(f"{rel}:{number}: machine path {match.group(0)!r}")
        for match in PARENT_PATH.finditer(line):
            if escapes(path, match.group(0)):
                found.append(f"{rel}:{number}: {match.group(0)!r} leaves the repository")
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository():
    files = tracked_text_files()
    assert len(files) > 50  # the scan really saw the repository
    found = [hit for path in files for hit in outside_references(path)]
    assert not found, "\n".join(found)


def test_the_scan_catches_what_it_is_for(tmp_path):
    """The detector itself: a sibling folder, a home directory, a scratch path are caught; an in-repo
    relative link is not."""
    probe = REPO / "docs" / "probe.md"
    lines = {
        f"params: {SIBLING}/data/aime2024.jsonl": True,
        "open('/" + "work/main/data/x.jsonl')": True,
        "see /" + "root/.cache/thing": True,
        "[data](../data/README.md)": False,  # docs/ -> data/: inside
        "[up](" + "../" * 2 + "elsewhere.md)": True,
        "path: data/aime2024.jsonl": False,
    }
    for line, bad in lines.items():
        tmp = tmp_path / "f.md"
        tmp.write_text(line)
        hits = [m.group(0) for m in MACHINE_PATH.finditer(line)] + [
            m.group(0) for m in PARENT_PATH.finditer(line) if escapes(probe, m.group(0))
        ]
        assert bool(hits) is bad, (line, hits)


# An issue of our own tracker named by its number in code, a test, a benchmark or a doc:
# a newcomer has no tracker, so the thing is named by what it is instead. (Other projects' issues, cited as
# evidence in prose, carry their project's name: "inspect_ai #1557".)
OUR_ISSUE = re.compile(r"\bissues? ?#?\d+|\bissue[_-]\d+", re.IGNORECASE)


def test_nothing_tracked_names_one_of_our_issues_by_number():
    found = []
    for path in tracked_text_files():
        if path.suffix in {".lock", ".jsonl", ".html"} or path.name == "dvc.lock":
            continue  # data and generated pages: model text may say anything
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUR_ISSUE.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found[:10])
