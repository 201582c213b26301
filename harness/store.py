"""The response store: every model response, persisted the moment it arrives.

Why it looks like this: a scaling run is thousands of paid requests, and a run can be killed at any
moment. The store is a directory of append-only JSON-lines shards (one per stage that writes), each line
one response keyed by the sha256 of the canonical request. Appends are fsync'd under an exclusive lock,
so a response that was received is never lost and two processes never interleave half lines. A torn last
line (a crash mid-write) is detected on open, reported, and cut off before the next append. Lookups read
every shard, so a response paid for by one stage is reused by every other stage.

Only this module knows the file format.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .redact import scrub

SCHEMA_VERSION = 1


class StoreError(RuntimeError):
    """The store cannot be used as it is; the message says which file and line, and what to do."""


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(request: dict[str, Any]) -> str:
    """The identity of a request: sha256 of its canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()


class ResponseStore:
    """Look up responses by request key across all shards of `root`; append new ones to `shard`."""

    def __init__(self, root: str | Path, shard: str, readonly: bool = False):
        self.root = Path(root)
        self.shard_path = self.root / f"{shard}.jsonl"
        self._lock_path = self.root / ".lock"
        self._records: dict[str, dict[str, Any]] = {}
        if not readonly:  # readonly: a preflight check must not create files
            self.root.mkdir(parents=True, exist_ok=True)
            self.shard_path.touch(exist_ok=True)  # a stage's shard exists even when it had nothing to ask
        for path in sorted(self.root.glob("*.jsonl")):
            for record in _read_shard(path):
                self._records.setdefault(record["key"], record)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> dict[str, Any] | None:
        return self._records.get(key)

    def append(self, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        """Persist one response durably (write + fsync under lock) and index it."""
        return self.append_many([(request, response)])[0]

    def append_many(self, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
        """Persist responses with one write and one fsync (group commit), then index them.

        Why batches: at high concurrency one fsync per response dominated the run (measured: 0.9 ms
        each under load). Callers still get a response back only after its batch is on disk.
        An API key echoed in a response is replaced by a placeholder, in `response` itself too.
        """
        records = [self._record(request, response) for request, response in pairs]
        data = b"".join((canonical_json(r) + "\n").encode("utf-8") for r in records)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _cut_torn_tail(self.shard_path)
                fd = os.open(self.shard_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        for record in records:
            self._records.setdefault(record["key"], record)
        return records

    @staticmethod
    def _record(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        scrubbed = scrub(canonical_json(response))  # a provider may echo the API key back
        if scrubbed != canonical_json(response):
            # In place, so the live run goes on with exactly what a replay will read (a forced-answer
            # request is built from this text: it must not carry the key either).
            response.clear()
            response.update(json.loads(scrubbed))
        return {"v": SCHEMA_VERSION, "key": request_key(request), "request": request, "response": response}


def count_records(root: str | Path) -> int:
    """Complete records in every shard of `root` (no parsing: a before/after count of what a run added)."""
    return sum(path.read_bytes().count(b"\n") for path in sorted(Path(root).glob("*.jsonl")))


def _read_shard(path: Path) -> Iterator[dict[str, Any]]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # after the last newline: empty unless the last write was torn
    if torn:
        warnings.warn(
            f"{path}: the last line is incomplete (a run was killed mid-write); it is ignored and will be "
            "cut off at the next append",
            stacklevel=3,
        )
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(
                f"{path}:{number}: not a JSON record; the store is damaged. Restore it "
                "(git checkout / dvc pull) or delete that line to re-request just that response"
            ) from None
        if not isinstance(record, dict) or record.get("v") != SCHEMA_VERSION or "key" not in record:
            found = record.get("v") if isinstance(record, dict) else None
            raise StoreError(
                f"{path}:{number}: unknown store schema v={found!r} (expected v={SCHEMA_VERSION}); "
                "this store was written by another version of the harness: use that version, or move the "
                "store aside to re-request"
            )
        if not isinstance(record.get("request"), dict) or not _is_response(record.get("response")):
            raise StoreError(
                f"{path}:{number}: the record has no valid request/response (a response needs text and "
                "finish_reason); delete that line to re-request just that response"
            )
        if request_key(record["request"]) != record["key"]:
            raise StoreError(
                f"{path}:{number}: the key does not match its request; the record was edited. "
                "Delete that line to re-request it"
            )
        yield record


def _is_response(response: Any) -> bool:
    """The shape every stage relies on: text + finish_reason, flat or as a list of `choices`."""
    if not isinstance(response, dict):
        return False
    choices = response.get("choices", [response])
    return isinstance(choices, list) and bool(choices) and all(
        isinstance(c, dict) and isinstance(c.get("text"), str)
        and isinstance(c.get("finish_reason", ""), (str, type(None)))
        for c in choices
    )


def _cut_torn_tail(path: Path) -> None:
    """If a crash left a partial last line, truncate it so the next record starts on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":  # the common case: one byte read, not the whole shard
            return
        fh.seek(0)
        data = fh.read()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
