"""Atomic, deterministic output files.

Why: DVC caches whatever a stage leaves behind, so a crash must never leave a half-written table, and the
same inputs must give the same bytes (no timestamps, no absolute paths, fixed ordering and float format).
Every output goes through a temp file in the same directory, fsync, then rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OUTPUTS = Path("outputs")
STORE_DIR = Path("store")


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))


def write_csv(path: Path, frame: Any) -> None:
    """A pandas DataFrame as CSV with a fixed float format, so reruns are byte-identical."""
    write_text(path, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
