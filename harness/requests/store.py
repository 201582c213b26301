"""The response store: every model response, persisted the moment it arrives.

Why it looks like this: a scaling run is thousands of paid requests, and a run can be killed at any
moment. The store is a directory of append-only JSON-lines shards (one per stage that writes), each line
one response keyed by the sha256 of the canonical request. Appends are fsync'd under an exclusive lock,
so a response that was received is never lost and two processes never interleave half lines. A torn last
line (a crash mid-write) is detected on open, reported, and cut off before the next append. Lookups see
every shard, so a response paid for by one stage is reused by every other stage.

Opening reads keys, not records (keydir.py: each shard's saved index, then the lines past it), so memory
follows the number of responses; a record is read from its shard, and checked, when it is used.

A write either reaches the disk whole or fails loudly: short writes are continued, and any error (disk
full, quota, read-only, I/O) raises `StoreWriteFailed` after cutting the shard back to its last whole
record, so the store stays readable and the caller knows exactly which responses were not stored.

Runs sharing a store claim a request before sending it (`Claims`: a symlink per request key under
`.claims/`, naming the claimer's host, pid and run); another run that needs the same request waits for
the response in the shards instead of paying for it again. A dead claimer's claims are taken over.
See docs/store.md.

Only this module knows the file format.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..files import canonical_json, process_alive
from ..redact import scrub
from . import keydir, sealed

SCHEMA_VERSION = 1


class StoreError(RuntimeError):
    """The store cannot be used as it is; the message says which file and line, and what to do."""


# errno -> (what happened, in the user's words; what to do about it)
_WRITE_ERRORS = {
    errno.ENOSPC: ("disk full", "free space on the filesystem holding the store, or move the store"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota"),
    errno.EROFS: ("read-only filesystem", "remount it read-write or put the store on a writable filesystem"),
    errno.EIO: ("I/O error", "check the disk (dmesg) before trusting it with paid responses"),
    errno.EFBIG: ("file too large", "move the store to a filesystem that allows larger files"),
    errno.EACCES: ("permission denied", "fix the permissions of the store directory"),
    errno.EPERM: ("permission denied", "fix the permissions of the store directory"),
}


class StoreWriteFailed(StoreError):
    """A write to the store did not reach the disk. `stored`: how many records of the failed batch did
    (they are whole and indexed); the rest were not written at all."""

    def __init__(self, path: Path, error: OSError, stored: int = 0, message: str | None = None):
        self.path = path
        self.errno = error.errno
        self.error = error
        self.stored = stored
        self.reason, self.advice = _WRITE_ERRORS.get(
            error.errno or 0, (error.strerror or str(error), "fix the filesystem holding the store")
        )
        name = errno.errorcode.get(error.errno or 0, "")
        self.what = f"{path}: {self.reason}" + (f" ({name})" if name else "")
        super().__init__(message or f"cannot write {self.what}; {self.advice}, then rerun")


HOST_ENV = "HARNESS_HOST"  # the name this process gives its host in claims and shard names


def host_name() -> str:
    """This machine's name as claims and writers' shards carry it: HARNESS_HOST when machines sharing a store
    have the same host name (containers), else the host name. Any character a file name cannot hold is
    replaced, and "@" (it separates the parts of a shard's name)."""
    name = os.environ.get(HOST_ENV) or socket.gethostname()
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "host"


def request_key(request: dict[str, Any]) -> str:
    """The identity of a request: sha256 of its canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()


class ResponseStore:
    """Look up responses by request key across all shards of `root`; append new ones to `shard`.

    Memory follows the number of responses, not their text: the store holds a key directory (keydir.py,
    20 bytes a response) and reads a record from its shard when `get` asks for it.
    """

    _RECENT_MAX = 65536  # keys appended or read since the table was built; merged into it beyond this

    def __init__(self, root: str | Path, shard: str, readonly: bool = False):
        self.root = Path(root)
        self.shard_path = self.root / f"{shard}.jsonl"
        self.stage = shard
        self.readonly = readonly
        self._lock_path = self.root / ".lock"
        self._index_lock = threading.Lock()  # appends run in a worker thread, refreshes on the event loop
        self._lease: Path | None = None
        if not readonly:  # readonly: a preflight check must not create files
            self.root.mkdir(parents=True, exist_ok=True)
            self.shard_path.touch(exist_ok=True)  # a stage's shard exists even when it had nothing to ask
            if not _closed(self.shard_path) and _take_lease(self.shard_path):
                self._lease = self.shard_path
            else:  # another writer has the stage's shard, or it is full (closed for good): a shard of our own
                self.shard_path = self._own_shard()
            _settle_dead_writers(self.root, self._lock_path)
        self._load()

    def _load(self) -> None:
        """Read every shard's keys (from its index where it has a good one) into one table.

        Each shard is opened here, and its descriptor kept: a shard another process seals (and removes)
        later stays readable through it, so a record this store located is always where it says."""
        for attempt in range(3):
            try:
                return self._load_once()
            except FileNotFoundError:  # a shard was sealed away between listing and opening it
                for fd in self._fds.values():
                    os.close(fd)
                if attempt == 2:
                    raise

    def _load_once(self) -> None:
        self._shards: list[Path] = []
        self._fds: dict[int, int] = {}
        self._read_to: list[tuple[int, int]] = []  # per shard: (bytes, lines) of whole lines indexed
        self._recent: dict[str, tuple[int, int, int]] = {}
        found = []
        for path in shard_files(self.root):
            self._fds[len(self._shards)] = os.open(path, os.O_RDONLY)
            keys = self._shard_keys(path, save=not self.readonly)
            self._shards.append(path)
            self._read_to.append((keys.covered, keys.lines))
            found.append(keys)
        self._table = keydir.Table.build(found)

    def _reload(self) -> None:
        """Read every shard's keys again (a shard was replaced or sealed away since the open)."""
        with self._index_lock:
            for fd in self._fds.values():
                os.close(fd)
            self._load()

    def _shard_keys(self, path: Path, save: bool) -> keydir.ShardKeys:
        """A shard's keys: its index, then the lines past it; a bad index is rebuilt, saying so."""
        size = path.stat().st_size
        saved, problem = keydir.load_index(path, size)
        if problem:
            warnings.warn(f"{keydir.index_path(path)}: {problem}; rebuilt from {path}", stacklevel=4)
        start, lines = (saved.covered, saved.lines) if saved else (0, 0)
        tail = _scan(path, start, lines + 1)
        if tail.torn:
            warnings.warn(
                f"{path}: the last line is incomplete (a run was killed mid-write); it is ignored and will be "
                "cut off at the next append",
                stacklevel=4,
            )
        keys = tail if saved is None else keydir.ShardKeys(
            np.concatenate([saved.entries, tail.entries]), tail.covered, tail.lines)
        if save and keys.covered and (saved is None or keys.covered > saved.covered):
            keydir.write_index(path, keys)
        return keys

    def refresh(self) -> int:
        """Index the whole lines other processes appended since the last look; how many were new.

        Cheap when nothing changed (one stat per shard): a run waiting for another run's response calls
        it every poll. A partial last line is another writer mid-append: it is read next time.
        """
        if not all(p.exists() for p in self._shards):  # sealed away by their writers: read the keys again
            before = len(self)
            self._reload()
            return max(0, len(self) - before)
        added = 0
        for path in shard_files(self.root):
            try:
                size = path.stat().st_size
                number = self._number(path)
            except FileNotFoundError:
                continue
            offset, lines = self._read_to[number]
            if size < offset:  # replaced (a checkout): read the whole store again
                before = len(self)
                self._reload()
                return max(0, len(self) - before)
            if size > offset:
                added += self._index_tail(path, number, offset, lines)
        return added

    def _number(self, path: Path) -> int:
        """The shard's number in this store, opening it the first time (FileNotFoundError if it is gone)."""
        if path not in self._shards:
            fd = os.open(path, os.O_RDONLY)
            with self._index_lock:
                self._fds[len(self._shards)] = fd
                self._shards.append(path)
                self._read_to.append((0, 0))
        return self._shards.index(path)

    def _index_tail(self, path: Path, number: int, offset: int, lines: int) -> int:
        # a shard sealed since the open is whole and has its index: read that, not every record
        new_seal = offset == 0 and sealed.is_sealed(path)
        tail = self._shard_keys(path, save=False) if new_seal else _scan(path, offset, lines + 1)
        added = 0
        keys = tail.entries["key"].tobytes()  # 32 bytes each (an element of the array drops trailing NULs)
        with self._index_lock:
            for i, entry in enumerate(tail.entries):
                key = keys[32 * i:32 * i + 32].hex()
                if key not in self:
                    self._recent[key] = (number, int(entry["offset"]), int(entry["length"]))
                    added += 1
            if self._read_to[number][0] == offset:
                self._read_to[number] = (tail.covered, tail.lines)
            self._merge_recent()
        return added

    def _merge_recent(self, force: bool = False) -> None:
        """Fold the recent keys into the sorted table once there are many (a dict costs ~15x an entry)."""
        if len(self._recent) < (1 if force else self._RECENT_MAX):
            return
        keys = list(self._recent)
        spots = [self._recent[k] for k in keys]
        raw = np.frombuffer(bytes.fromhex("".join(keys)), dtype="S32")
        where = np.array([(n << keydir.OFFSET_BITS) | off for n, off, _ in spots], dtype="<u8")
        length = np.array([size for *_, size in spots], dtype="<u4")
        self._table = self._table.merged(keydir.prefixes(raw), where, length)
        self._recent = {}

    def __len__(self) -> int:
        return len(self._table) + len(self._recent)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in self._recent:
            return True
        return any(self._head(spot) == key for spot in self._table.candidates(keydir.key_prefix(key)))

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record for `key`, read from its shard now (checked: its line's key and its request's)."""
        spots = [self._recent[key]] if key in self._recent else []
        for spot in spots or self._table.candidates(keydir.key_prefix(key)):
            record = self._read(spot, key)
            if record is not None:
                return record
        return None

    def _fd(self, number: int) -> int:
        """The shard's descriptor, opened with its keys (_load, _number); again after `close`."""
        fd = self._fds.get(number)
        if fd is None:
            fd = self._fds[number] = os.open(self._shards[number], os.O_RDONLY)
        return fd

    def _head(self, spot: tuple[int, int, int]) -> str | None:
        """The key a line starts with (the canonical start), without reading the rest of the line."""
        number, offset, _length = spot
        if sealed.is_sealed(self._shards[number]):
            found = sealed.head(os.pread(self._fd(number), sealed.HEADER, offset))
            return found[0].hex() if found else self._read(spot, None)["key"]  # type: ignore[index]
        head = os.pread(self._fd(number), keydir.HEAD, offset)
        if head.startswith(keydir.KEY_START):
            return head[len(keydir.KEY_START):keydir.HEAD - 2].decode("ascii", "replace")
        return self._read(spot, None)["key"]  # type: ignore[index]  # a non-canonical line: parse it

    def _read(self, spot: tuple[int, int, int], key: str | None) -> dict[str, Any] | None:
        """The record at `spot` if its key is `key` (None: any); a damaged record stops with file and line."""
        number, offset, length = spot
        path = self._shards[number]
        raw = os.pread(self._fd(number), length, offset)
        try:
            record = _check_record(sealed.inflate(raw), rehash=False) if sealed.is_sealed(path) else _check_record(raw)
        except (_Bad, ValueError) as bad:
            raise StoreError(f"{_where(path, offset)}: {bad}") from None
        if key is not None and record["key"] != key:
            if key in self._recent or keydir.key_prefix(record["key"]) != keydir.key_prefix(key):
                raise StoreError(
                    f"{_where(path, offset)}: this record's key is not the one its index names "
                    f"({key[:12]}...); the shard changed under its index: delete {keydir.index_path(path)} "
                    "and rerun")
            return None  # another key sharing the prefix: the next candidate is the one
        return record

    def close(self) -> None:
        """Save the index of the shard this store wrote (the next open reads it instead of the shard); a
        shard of this writer's own (named for its host and process) is never appended to again: seal it.
        A store used after `close` opens its shards again as it reads them."""
        if not self.readonly and self.shard_path.exists():
            try:
                self._shard_keys(self.shard_path, save=True)
            except (OSError, StoreError):
                pass  # an index is a cache: the next open reads the shard (and reports what is wrong there)
            if self._lease is None:
                self._seal_own(self.shard_path)
                self.shard_path = self._own_shard()  # a later append starts a new file, never the sealed one's
        with self._index_lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds = {}
        if self._lease is not None:
            _give_lease(self._lease)
            self._lease = None

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
        lines = [_line(r) for r in records]
        start, path, closed = 0, self.shard_path, None
        try:
            with _locked(self._lock_path):
                _cut_torn_tail(self.shard_path)
                start = self.shard_path.stat().st_size if self.shard_path.exists() else 0  # a writer's own
                if start and start + sum(map(len, lines)) > shard_limit():
                    closed = self._rotate()
                    start = 0
                path = self.shard_path
                _append_whole(path, lines)
        except StoreWriteFailed as exc:
            self._index(path, records[: exc.stored], lines, start)
            raise
        except OSError as exc:  # the lock or the torn-tail cut could not be written: nothing was
            raise StoreWriteFailed(self.shard_path, exc) from None
        self._index(path, records, lines, start)
        if closed is not None:  # after the lock: other writers append while this one compresses
            self._seal_own(closed)
        return records

    def _seal_own(self, path: Path) -> None:
        """Seal a shard this writer closed, then read the keys again: they point at the sealed file, and the
        descriptor holding the removed JSON-lines shard (its disk space) is let go."""
        if _seal_quietly(path):
            self._reload()

    def _own_shard(self) -> Path:
        return self.root / f"{self.stage}@{host_name()}@{os.getpid()}@{secrets.token_hex(3)}.jsonl"

    def _rotate(self) -> Path | None:
        """Close the full shard for good (its index saved, never appended to again) and start a new one:
        Bitcask's rotation, so a big store is many files of at most `shard_limit()` bytes, and a DVC push
        after more samples uploads only the new files. Returns the closed shard when it is to be sealed: a
        writer's own (the stage's shard is a DVC output in the pipeline and keeps its name)."""
        closed = self.shard_path if self._lease is None else None
        try:
            self._shard_keys(self.shard_path, save=True)
            _closed_mark(self.shard_path).touch()
        except (OSError, StoreError):
            pass  # an index is a cache; without the mark a later writer may fill the shard to its limit
        if self._lease is not None:
            _give_lease(self._lease)
            self._lease = None
        self.shard_path = self._own_shard()
        return closed

    def _index(self, path: Path, records: list[dict[str, Any]], lines: list[bytes], start: int) -> None:
        """Where the records just written are: their shard, offsets from `start`, lengths."""
        number = self._number(path)
        offset = start
        with self._index_lock:
            for record, line in zip(records, lines):
                if record["key"] not in self:
                    self._recent[record["key"]] = (number, offset, len(line))
                offset += len(line)
            covered, lines_read = self._read_to[number]
            if covered == start:  # nobody else wrote in between: these lines need no rescan
                self._read_to[number] = (offset, lines_read + len(records))
            self._merge_recent()

    @classmethod
    def _line_for(cls, request: dict[str, Any], response: dict[str, Any]) -> bytes:
        """The exact bytes a record is stored as (tests write shards by hand with it)."""
        return _line(cls._record(request, response))

    @staticmethod
    def _record(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
        scrubbed = scrub(canonical_json(response))  # a provider may echo the API key back
        if scrubbed != canonical_json(response):
            # In place, so the live run goes on with exactly what a replay will read (a forced-answer
            # request is built from this text: it must not carry the key either).
            response.clear()
            response.update(json.loads(scrubbed))
        return {"v": SCHEMA_VERSION, "key": request_key(request), "request": request, "response": response}


# The stage shard each process writes: path -> (descriptor holding its flock, stores of this process using it)
_LEASES: dict[Path, tuple[int, int]] = {}
_LEASES_LOCK = threading.Lock()


def _take_lease(shard: Path) -> bool:
    """Become the one writer of a stage's shard (`store/<stage>.jsonl`, the DVC output), or learn that another
    process is. Why: every writer appends only to a file no other live writer appends to (runs on two hosts
    sharing a store directory never interleave in one file); a second run at once writes a shard of its own,
    `<stage>@<host>@<pid>@<token>.jsonl`, which no one appends to once it is closed. The flock goes with the
    process: a killed writer's lease is free at once."""
    shard = shard.resolve()  # one file, whatever directory a store was opened from
    with _LEASES_LOCK:
        if shard in _LEASES:  # this process writes it already (two stores of one process share a lease)
            fd, users = _LEASES[shard]
            _LEASES[shard] = (fd, users + 1)
            return True
        fd = os.open(shard, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        _LEASES[shard] = (fd, 1)
        return True


def _give_lease(shard: Path) -> None:
    shard = shard.resolve()
    with _LEASES_LOCK:
        fd, users = _LEASES.pop(shard, (-1, 0))
        if users > 1:
            _LEASES[shard] = (fd, users - 1)
        elif fd >= 0:
            os.close(fd)  # closing the descriptor releases the flock


def _settle_dead_writers(root: Path, lock_path: Path) -> None:
    """Cut the torn tail of shards whose own writer is dead (on this host): nobody else ever appends to them,
    so without this their partial last line would be reported at every open."""
    host = host_name()
    for path in root.glob("*@*@*@*.jsonl"):
        _, owner, pid, _ = path.stem.rsplit("@", 3)
        if owner == host and pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            try:
                with _locked(lock_path):
                    _cut_torn_tail(path)
            except OSError:
                pass  # read as it is: the partial line is ignored (and reported)


SHARD_MB_ENV = "HARNESS_SHARD_MB"  # a writer starts a new shard file past this many megabytes
DEFAULT_SHARD_MB = 256.0


def _positive_setting(name: str, default: float, unit: str) -> float:
    """A positive number from the environment variable `name`, or `default` where it is unset or empty."""
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise StoreError(f"{name}={raw!r}: must be a number of {unit}") from None
    if value <= 0:
        raise StoreError(f"{name}={raw!r}: must be a positive number of {unit}")
    return value


def shard_limit() -> int:
    """The size in bytes past which a shard is closed for good and its writer starts a new one."""
    return int(_positive_setting(SHARD_MB_ENV, DEFAULT_SHARD_MB, "megabytes") * 1_000_000)


def _closed_mark(shard: Path) -> Path:
    return keydir.index_path(shard).with_suffix(".closed")


def _closed(shard: Path) -> bool:
    """A shard its writer rotated away from (or one at the limit) is never appended to again."""
    return _closed_mark(shard).exists() or shard.stat().st_size >= shard_limit()


def _line(record: dict[str, Any]) -> bytes:
    return (canonical_json(record) + "\n").encode("utf-8")


def shard_files(root: str | Path) -> list[Path]:
    """Every shard of the store: JSON lines (`*.jsonl`) and sealed (`*.jsonl.gz`), in one order every
    reader shares (a key stored twice is read from the first)."""
    root = Path(root)
    return sorted([*root.glob("*.jsonl"), *root.glob("*.jsonl" + sealed.SUFFIX)])


def store_summary(root: str | Path) -> dict[str, Any]:
    """What a report says of the store: its shards and its bytes as JSON lines (a sealed shard under the
    JSON-lines name it had, its records' bytes before compression), so sealing changes no output."""
    shards = shard_files(root)
    return {"bytes": sum(sealed.lines_bytes(p) if sealed.is_sealed(p) else p.stat().st_size for p in shards),
            "shards": sorted({sealed.lines_name(p) if sealed.is_sealed(p) else p.name for p in shards})}


def count_records(root: str | Path) -> int:
    """Complete records in every shard of `root` (no parsing: a before/after count of what a run added).
    Read a chunk (or a record header) at a time: a store of many gigabytes is counted in flat memory."""
    total = 0
    for path in shard_files(root):
        if sealed.is_sealed(path):
            total += sum(1 for _ in sealed.spans(path))  # the members' headers, not the records
            continue
        with open(path, "rb") as fh:
            while chunk := fh.read(16 << 20):
                total += chunk.count(b"\n")
    return total


SEAL_ENV = "HARNESS_SEAL"  # "0": closed shards stay JSON lines (to grep them, or to time the plain format)


def _seal_quietly(path: Path) -> bool:
    """Seal a writer's closed shard unless HARNESS_SEAL=0; a seal that fails (a full disk) leaves the
    shard as it is, readable, for `harness store seal` to finish later. Whether it was sealed."""
    if os.environ.get(SEAL_ENV, "1") == "0":
        return False
    try:
        return seal_shard(path) != path
    except (OSError, StoreError) as exc:
        warnings.warn(f"{path}: not sealed ({exc}); it stays readable as JSON lines: `harness store seal` "
                      "seals it later", stacklevel=3)
        return False


def seal_shard(path: Path) -> Path:
    """Seal a JSON-lines shard nobody appends to any more (sealed.py): every whole line is checked, then
    written compressed beside it under a name no sealed shard has yet; the shard goes once that is on disk.
    Returns the sealed shard's path (the shard itself when it has no records: nothing to seal)."""
    if not path.exists() or path.stat().st_size == 0:
        return path
    target = sealed.sealed_path(path)
    n = 0
    while target.exists():  # never write over a sealed shard: a stage's shard may be sealed more than once
        n += 1
        target = path.with_name(f"{path.stem}+{n}.jsonl{sealed.SUFFIX}")
    sealed.seal(_checked_lines(path), target)
    for old in (path, keydir.index_path(path), _closed_mark(path)):  # only now: the sealed twin is on disk
        old.unlink(missing_ok=True)
    return target


def seal_store(root: str | Path, every: bool = False) -> list[tuple[Path, Path]]:
    """`harness store seal`: seal the shards of writers that have ended (their own shards, named
    `<stage>@<host>@<pid>@<token>.jsonl`, whose process is gone from this host or that were closed for
    good). `every`: the stages' shards too, and other hosts' writers' shards: only when no run is
    writing to the store (the stages' shards are DVC outputs in the pipeline: track the store as a
    whole instead, docs/store.md)."""
    done = []
    for path in sorted(Path(root).glob("*.jsonl")):
        if every or _writer_ended(path):
            target = seal_shard(path)
            if target != path:
                done.append((path, target))
    return done


def _writer_ended(path: Path) -> bool:
    if path.stem.count("@") != 3:
        return False  # a stage's shard: the next run of the stage appends to it
    _, owner, pid, _ = path.stem.rsplit("@", 3)
    if _closed_mark(path).exists():
        return True
    return owner == host_name() and pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid))


def _checked_lines(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """(key, line) for every whole line of a JSON-lines shard, each checked in full first (a damaged line
    stops the seal with its file and line, and the shard stays as it is). A torn last line is no record."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.endswith(b"\n"):
                return
            if line.strip():
                yield _slow_key(path, number, line), line


def _scan(path: Path, start: int, first: int) -> keydir.ShardKeys:
    """A shard's keys from byte `start` on, every record checked (JSON lines or sealed)."""
    if not sealed.is_sealed(path):
        return keydir.scan(path, start, first, lambda n, raw: _slow_key(path, n, raw))
    try:
        return sealed.scan(path, start, first, lambda n, raw: _slow_key(path, n, raw, "record "))
    except sealed.Damaged as bad:
        raise StoreError(f"{path}: record {bad.number}: {bad}") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created empty if missing: an inode, no data block)."""
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _append_whole(path: Path, lines: list[bytes]) -> None:
    """Append `lines` and fsync, or raise StoreWriteFailed with the shard cut back to whole records.

    Why the loop: `os.write` on a nearly full disk writes part of the buffer and returns the count, no
    exception; only the next write raises ENOSPC. Ignoring the count once lost 383 of 420 responses.
    Call under the store lock (nobody else appends meanwhile).
    """
    data = memoryview(b"".join(lines))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # less the umask
    try:
        start = os.fstat(fd).st_size
        written = 0
        try:
            while written < len(data):
                n = os.write(fd, data[written:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                written += n
            os.fsync(fd)
        except OSError as exc:
            raise StoreWriteFailed(path, exc, stored=_keep_whole(fd, start, lines, written)) from None
    finally:
        os.close(fd)


def _keep_whole(fd: int, start: int, lines: list[bytes], written: int) -> int:
    """After a failed append: cut the shard back to the last whole record written; how many there are.

    A failed fsync (EIO) leaves nothing trustworthy, so then the whole batch is cut.
    """
    kept, end = 0, start
    if written < sum(map(len, lines)):  # the write failed; everything written so far reached the file
        for line in lines:
            if end + len(line) - start > written:
                break
            end += len(line)
            kept += 1
    try:
        os.ftruncate(fd, end)
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass  # the torn tail is cut by the next open + append, as after a kill
        return 0
    return kept


LEASE_ENV = "HARNESS_CLAIM_LEASE_S"  # seconds a claim lives without a heartbeat (default below)
DEFAULT_LEASE_S = 60.0


def lease_seconds() -> float:
    return _positive_setting(LEASE_ENV, DEFAULT_LEASE_S, "seconds")


class Claims:
    """Which run is asking for which request right now, so that runs sharing a store never pay twice.

    A claim is a symlink `<store>/.claims/<key>` whose target names the claimer, `host:pid:run` (the
    lock-file shape Mercurial uses: created atomically with its content, no data block, so it can still
    be made on a full disk). The claimer keeps it fresh (`heartbeat`, touching its mtime) while the
    request is in flight, stores the response, then releases it. A claim is stale, and taken over, when
    its process is gone (same host), when it belongs to an earlier run of this very process, or when its
    heartbeat is older than the lease (another host, or a hung process). Taking, taking over and
    releasing happen under one lock, so a fresh claim is never mistaken for the stale one it replaced.
    """

    def __init__(self, root: str | Path, lease_s: float | None = None):
        self.dir = Path(root) / ".claims"
        self.lease_s = lease_s if lease_s is not None else lease_seconds()
        self.host = host_name()
        self.me = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.held: set[str] = set()

    def take(self, key: str) -> str | None:
        """Claim `key` for this run: None when it is ours now, else who holds it (`host:pid`)."""
        path = self.dir / key
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with _locked(self.dir / ".lock"):
                try:
                    owner = os.readlink(path)
                except FileNotFoundError:
                    owner = None
                if owner is not None and owner != self.me:
                    if not self._stale(path, owner):
                        return owner.rsplit(":", 1)[0]
                    os.unlink(path)
                if owner != self.me:
                    os.symlink(self.me, path)
        except OSError as exc:
            raise StoreWriteFailed(path, exc) from None
        self.held.add(key)
        return None

    def release(self, key: str) -> None:
        """Give up a claim (after its response is stored, or after the request failed)."""
        if key not in self.held:
            return
        self.held.discard(key)
        path = self.dir / key
        try:
            with _locked(self.dir / ".lock"):
                if os.readlink(path) == self.me:
                    os.unlink(path)
        except OSError:
            pass  # already taken over, or unremovable: it goes stale and is taken over

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)

    def heartbeat(self) -> None:
        """Tell other runs that our claims are alive (their lease restarts)."""
        for key in list(self.held):
            try:
                os.utime(self.dir / key, follow_symlinks=False)
            except OSError:
                pass  # a claim that ages out is taken over: at worst one request is paid twice

    def _stale(self, path: Path, owner: str) -> bool:
        host, _, rest = owner.partition(":")
        pid_text, _, _run = rest.partition(":")
        if host == self.host and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                return True  # an earlier run in this process (its claims outlived it): not a live one
            if not process_alive(pid):
                return True
        try:
            age = time.time() - os.lstat(path).st_mtime
        except FileNotFoundError:
            return True
        return age > self.lease_s


class _Bad(Exception):
    """What is wrong with one record (the caller adds the file and line)."""


def _check_record(raw: bytes, rehash: bool = True) -> dict[str, Any]:
    """One line as a record, checked: JSON, this schema, a request and a response, a key that is its
    request's. Run when the record is read, so a damaged line stops the run at the line that is used.

    `rehash=False` for a sealed record read back: every record was checked in full when it was sealed, and
    the member's crc32 (checked by zlib) says these are still those bytes, so hashing its request again
    (its prompt repeats the whole thinking) proves nothing more."""
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Bad("not a JSON record; the store is damaged. Restore it (git checkout / dvc pull) or delete "
                   "that line to re-request just that response") from None
    if not isinstance(record, dict) or record.get("v") != SCHEMA_VERSION or "key" not in record:
        found = record.get("v") if isinstance(record, dict) else None
        raise _Bad(f"unknown store schema v={found!r} (expected v={SCHEMA_VERSION}); this store was written by "
                   "another version of the harness: use that version, or move the store aside to re-request")
    if not isinstance(record.get("request"), dict) or not _is_response(record.get("response")):
        raise _Bad("the record has no valid request/response (a response needs text and finish_reason); "
                   "delete that line to re-request just that response")
    if rehash and request_key(record["request"]) != record["key"]:
        raise _Bad("the key does not match its request; the record was edited. Delete that line to re-request it")
    return record


def _slow_key(path: Path, number: int, raw: bytes, unit: str = "") -> bytes:
    """The key of a line no index vouches for, after checking the whole record."""
    place = f"{path}: {unit}{number}" if unit else f"{path}:{number}"
    try:
        record = _check_record(raw)
    except _Bad as bad:
        raise StoreError(f"{place}: {bad}") from None
    try:
        return bytes.fromhex(record["key"])
    except (TypeError, ValueError):
        raise StoreError(f"{place}: the key is not a sha256 in hex; delete that line to re-request "
                         "it") from None


def _where(path: Path, offset: int) -> str:
    """`file:line` of the record at byte `offset` (a sealed shard's: `file: record N`)."""
    if sealed.is_sealed(path):
        return f"{path}: record {sealed.record_number(path, offset)}"
    return f"{path}:{_line_number(path, offset)}"


def _line_number(path: Path, offset: int) -> int:
    """Which line starts at byte `offset` (counted only when a message needs it)."""
    count = 0
    with open(path, "rb") as fh:
        while offset > 0 and (chunk := fh.read(min(16 << 20, offset))):
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count + 1


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
