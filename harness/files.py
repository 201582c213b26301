"""Atomic, deterministic output files.

Why: DVC caches whatever a stage leaves behind, so a crash must never leave a half-written table, and the
same inputs must give the same bytes (no timestamps, no absolute paths, fixed ordering and float format).
Every output goes through a temp file in the same directory, fsync, then rename: a process killed at
any instant leaves either the previous file or the new one, never a mix. What a kill can leave is the
hidden temp file itself (`.<name>.<pid>.<random>.tmp`); the next write of that output removes it once
its writer is gone (two runs sharing a checkout may be writing the same output at the same moment). A
writer's scratch file (`scratch_file`) is named and cleaned up the same way.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .redact import scrub

OUTPUTS = Path("outputs")
STORE_DIR = Path("store")  # the project's own store; `store_dir()` says which store a run uses
STORE_ENV = "HARNESS_STORE"  # a store directory shared by every experiment of a repository (docs/sweeps.md)
EXPERIMENT_COPIES = (".dvc", "tmp", "exps")  # where `dvc exp run --queue/--temp` runs each experiment
# Every output path, here so that a stage never imports another stage just for a file name; one line
# per stage that writes them.
PROBLEMS, DATASET_INFO = OUTPUTS / "problems.jsonl", OUTPUTS / "dataset.json"  # fetch
CALIBRATION, CALIBRATION_SUMMARY = OUTPUTS / "calibration.csv", OUTPUTS / "calibration.json"  # calibrate
SAMPLES = OUTPUTS / "samples.csv"  # sample
CURVE, METRICS = OUTPUTS / "curve.csv", OUTPUTS / "metrics.json"  # vote
STRATEGIES = OUTPUTS / "strategies.csv"  # vote: every strategy point (fixed k, stopping rules, confidence votes)
FRONTIER = OUTPUTS / "frontier.csv"  # vote: the strategy points nothing beats
ACCURACY_PNG, CALIBRATION_PNG, REGIONS_JSON = (  # plot
    OUTPUTS / "accuracy_vs_tokens.png", OUTPUTS / "requested_vs_actual.png", OUTPUTS / "regions.json")
THINKING_PNG = OUTPUTS / "thinking_tokens.png"  # plot: thinking tokens per budget
COMPARE_PNG, COMPARE_CSV, COMPARE_JSON = (  # compare
    OUTPUTS / "compare.png", OUTPUTS / "compare.csv", OUTPUTS / "compare.json")
REPORT = OUTPUTS / "report.html"  # report: the page to read a run's samples in a browser


def store_dir() -> Path:
    """The response store this run reads and appends to: `store/`, or the directory `HARNESS_STORE` names.

    Why a setting: DVC runs each queued experiment in its own temporary copy of the repository, so with
    `store/` every copy would have its own store and pay again for responses another experiment already
    has. With HARNESS_STORE every experiment reads and appends to one store (same lock, fsync and claims
    as always). A relative HARNESS_STORE is resolved against the repository root, also from inside an
    experiment's temporary copy (`<repo>/.dvc/tmp/exps/<tmp>/`): every copy then names the same place.
    """
    raw = os.environ.get(STORE_ENV, "").strip()
    if not raw:
        return STORE_DIR
    path = Path(raw).expanduser()
    return path if path.is_absolute() else repository_root() / path


def repository_root(cwd: Path | None = None) -> Path:
    """The repository a stage runs for: the working directory, or for an experiment running in DVC's
    temporary copy, the repository that copy was made from."""
    here = (cwd or Path.cwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - len(EXPERIMENT_COPIES), 0, -1):
        if parts[i:i + len(EXPERIMENT_COPIES)] == EXPERIMENT_COPIES:
            return Path(*parts[:i])
    return here


class MissingInput(RuntimeError):
    """A stage's input file is not there yet: the message names it and the stage that makes it."""


def require(path: Path, made_by: str) -> Path:
    """`path`, or a MissingInput saying which command writes it (a stage run before its inputs exist)."""
    if not path.exists():
        raise MissingInput(f"{path}: not found; run `harness {made_by}` (or `dvc repro`) first")
    return path


def read_json(path: Path) -> dict[str, Any]:
    """An optional JSON output (metrics, dataset record): its content, or {} before its stage has run."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}  # type: ignore[no-any-return]


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, text as it is: one object, one string (a request's key, a problem's
    fingerprint), whoever writes it."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def json_number(v: float | None, digits: int = 6) -> float | None:
    """A number as the JSON outputs hold it: rounded (the same inputs give the same bytes), and null where
    it does not exist (no fit, no interval: JSON has no NaN)."""
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (temp file, fsync, rename, fsync of the directory)."""
    with atomic_writer(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """A binary file whose bytes replace `path` atomically when the block ends (temp file, fsync, rename,
    fsync of the directory); if the block raises, the temp file goes and `path` keeps its previous bytes.

    Why a writer and not only `write_bytes`: an output too large to hold as one string (the report of a
    run of thousands of problems) is written piece by piece, with the same guarantees as every other.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def scratch_file(path: Path) -> Iterator[IO[bytes]]:
    """A temp file beside `path` to write and read back (opened "w+b"), deleted however the block ends.

    Why beside `path` and named like its temp files: a writer's scratch data is as large as its output
    (the report spools its cells' payloads here), so it belongs on the output's filesystem, not in a
    small /tmp; and if the writer is killed, the next scratch file of `path` removes the dead one's.
    `path` itself is never written: give a name no output has (the report uses `report_cells`).
    """
    path = Path(os.path.abspath(path))  # the block may change directory (the report reads each run from its own)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = _create_temp(path, os.O_RDWR)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_temp(path: Path, access: int = os.O_WRONLY) -> tuple[int, str]:
    """A new, empty temp file beside `path`, created with mode 0666 less the user's umask.

    Why not tempfile.mkstemp: it creates 0600 whatever the umask, so every output (report.html too) was
    unreadable to a colleague on a shared filesystem or to a web server. Outputs are not secret (keys are
    scrubbed before they are written), so they get the permissions any other tool's files get.
    """
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, access | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:  # a name already taken (4 random bytes: practically never): draw again
            continue


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable: after a power cut the directory entry points at the new file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_files(path: Path) -> list[Path]:
    """Temp files of `path` left by a killed writer (only SIGKILL or a power cut can leave one)."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def remove_stale_temps(path: Path) -> None:
    """Remove the temp files of `path` whose writer is dead; a live writer's (another run) is left alone."""
    for temp in temp_files(path):
        writer = temp.name[len(path.name) + 2:].split(".", 1)[0]
        if not (writer.isdigit() and process_alive(int(writer))):
            temp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Is `pid` a running process on this machine? (Another user's process counts as running.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text(path: Path, text: str) -> None:
    """Every text output passes here: the last place an echoed API key can be stopped."""
    write_bytes(path, scrub(text).encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))


def write_csv(path: Path, frame: Any) -> None:
    """A pandas DataFrame as CSV with a fixed float format, so reruns are byte-identical."""
    write_text(path, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
