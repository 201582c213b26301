"""The store's key directory: where each response is (shard, byte offset, length), never its text.

Why it looks like this: a store of a GPU fleet's run holds hundreds of thousands of responses and tens of
gigabytes; parsing every record when the store opens made memory 3 to 4.5 times the store's bytes. Here a
shard is read for its keys only: each line starts with its key (records are canonical JSON, sorted keys,
so `{"key":"<64 hex>",` comes first), and the record itself is read when it is used. The keys of a shard
are saved in an index file beside it (Bitcask's hint file: `.index/<shard>.idx`, rebuildable, never an
output), so the next open reads 44 bytes a response instead of the shard. In memory a response costs
20 bytes (an 8-byte key prefix, a packed shard number and offset, a length); the full key is checked
against the line when the record is read.

An index is trusted only for the bytes it says it covers, and only if that part of the shard is the same
(a digest of its last 4 KB) and the index is whole (a crc32 of its entries): a shard longer than its
index is read past it, anything else is rebuilt from the shard.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENTRY = np.dtype([("key", "S32"), ("offset", "<u8"), ("length", "<u4")])  # 44 bytes on disk
_HEADER = struct.Struct("<8sQQQ32sI")  # magic, covered bytes, covered lines, entries, tail digest, crc32
_MAGIC = b"HSKEYS01"
_TAIL = 4096  # bytes before `covered` whose digest says the shard is still the one indexed
_CHUNK = 16 << 20  # bytes read at a time while scanning a shard: memory stays flat whatever its size
KEY_START = b'{"key":"'
HEAD = len(KEY_START) + 64 + 2  # `{"key":"<64 hex>",`: what identifies a line without parsing it
OFFSET_BITS = 40  # a shard up to 1 TiB; the shard's number sits above the offset in one uint64


@dataclass
class ShardKeys:
    """A shard's keys in file order, and how far they reach (whole lines only)."""

    entries: np.ndarray  # ENTRY
    covered: int  # bytes of whole lines read
    lines: int  # how many lines those bytes hold (for line numbers in messages)
    torn: bool = False  # bytes after the last newline: a write cut short (or one in progress)


def index_path(shard: Path) -> Path:
    return shard.parent / ".index" / f"{shard.name}.idx"


def _tail_digest(fh: object, covered: int) -> bytes:
    start = max(0, covered - _TAIL)
    fh.seek(start)  # type: ignore[attr-defined]
    return hashlib.sha256(fh.read(covered - start)).digest()  # type: ignore[attr-defined]


def load_index(shard: Path, size: int) -> tuple[ShardKeys | None, str | None]:
    """The shard's saved keys, or None and why not (None, None: there is no index, as in an old store)."""
    path = index_path(shard)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    if len(data) < _HEADER.size:
        return None, "damaged (shorter than its header)"
    magic, covered, lines, count, digest, crc = _HEADER.unpack_from(data)
    body = memoryview(data)[_HEADER.size:]
    if magic != _MAGIC or len(body) != count * ENTRY.itemsize or zlib.crc32(body) != crc:
        return None, "damaged (its entries do not match its header)"
    if covered > size:
        return None, f"stale (it covers {covered} bytes, the shard has {size})"
    with open(shard, "rb") as fh:
        if _tail_digest(fh, covered) != digest:
            return None, "stale (the shard's indexed bytes changed)"
    return ShardKeys(np.frombuffer(body, dtype=ENTRY), covered, lines), None


def write_index(shard: Path, keys: ShardKeys) -> None:
    """Save the shard's keys atomically (a reader sees the old index or the new one). An index is a cache:
    when it cannot be written (a full or read-only disk) the next open reads the shard instead."""
    path = index_path(shard)
    try:
        path.parent.mkdir(exist_ok=True)
        with open(shard, "rb") as fh:
            digest = _tail_digest(fh, keys.covered)
        body = keys.entries.tobytes()
        header = _HEADER.pack(_MAGIC, keys.covered, keys.lines, len(keys.entries), digest, zlib.crc32(body))
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # less the umask, as the shards
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(header + body)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def scan(shard: Path, start: int, first_line: int, slow_key: Callable[[int, bytes], bytes]) -> ShardKeys:
    """The keys of the whole lines from byte `start` on, read in chunks (memory: one chunk, not the shard).

    Every line goes to `slow_key(line number, line)`, which parses and checks it (JSON, schema, a key that
    is its request's) and returns its key or raises: lines no saved index vouches for are checked once, one
    at a time, so a damaged store stops the run before any request is paid for, and memory stays one chunk.
    """
    keys, offsets, lengths = bytearray(), array("Q"), array("I")
    carry, pos, number = b"", start, first_line
    with open(shard, "rb") as fh:
        fh.seek(start)
        while chunk := fh.read(_CHUNK):
            data, base = carry + chunk, pos - len(carry)
            i = 0
            while (j := data.find(b"\n", i)) >= 0:
                if data[i:j].strip():
                    keys += slow_key(number, data[i:j])
                    offsets.append(base + i)
                    lengths.append(j + 1 - i)
                number += 1
                i = j + 1
            carry, pos = data[i:], pos + len(chunk)
    return ShardKeys(entries(keys, offsets, lengths), pos - len(carry), number - 1, torn=bool(carry))


def entries(keys: bytearray, offsets: array, lengths: array) -> np.ndarray:
    """A shard's ENTRY table from its keys (32 bytes each, back to back), offsets and lengths."""
    table = np.empty(len(offsets), dtype=ENTRY)
    table["key"] = np.frombuffer(bytes(keys), dtype="S32") if offsets else table["key"]
    table["offset"], table["length"] = offsets, lengths
    return table


def prefixes(keys: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each 32-byte key as a number: what the in-memory table is sorted by."""
    raw = np.ascontiguousarray(keys).view(">u8")
    return raw[::4].astype("<u8") if len(raw) else np.empty(0, dtype="<u8")


def key_prefix(key: str) -> int:
    return int(key[:16], 16)


class Table:
    """Every key of the store, sorted by prefix: 20 bytes a response (prefix, shard<<40|offset, length)."""

    def __init__(self, prefix: np.ndarray, where: np.ndarray, length: np.ndarray):
        self.prefix, self.where, self.length = prefix, where, length

    @classmethod
    def build(cls, shards: list[ShardKeys]) -> Table:
        """One table from every shard's keys; a key stored twice (two runs raced, or two shards) keeps its
        first place in shard order, as the store always did."""
        keys = np.concatenate([s.entries["key"] for s in shards]) if shards else np.empty(0, "S32")
        where = np.concatenate([(np.uint64(n) << np.uint64(OFFSET_BITS)) | s.entries["offset"].astype("<u8")
                                for n, s in enumerate(shards)]) if shards else np.empty(0, "<u8")
        length = np.concatenate([s.entries["length"] for s in shards]) if shards else np.empty(0, "<u4")
        prefix = prefixes(keys)
        order = np.argsort(prefix)  # not a stable sort (5x slower at a million); runs of equal prefixes are
        sorted_prefix = prefix[order]  # put back in store order by _repeats, which finds them anyway
        keep = order[~_repeats(sorted_prefix, order, keys)]
        return cls(prefix[keep], where[keep], length[keep])

    def merged(self, prefix: np.ndarray, where: np.ndarray, length: np.ndarray) -> Table:
        """This table plus keys it does not have (the caller checked), sorted again."""
        p, w, n = (np.concatenate(pair) for pair in ((self.prefix, prefix), (self.where, where),
                                                     (self.length, length)))
        order = np.argsort(p, kind="stable")
        return Table(p[order], w[order], n[order])

    def candidates(self, prefix: int) -> list[tuple[int, int, int]]:
        """(shard number, offset, length) of every entry with this prefix: one, except for a key stored under
        a prefix another key shares (about 1 in 2^64 per pair); the caller checks the full key."""
        p = np.uint64(prefix)
        lo = int(np.searchsorted(self.prefix, p, side="left"))
        found = []
        while lo < len(self.prefix) and self.prefix[lo] == p:
            w = int(self.where[lo])
            found.append((w >> OFFSET_BITS, w & ((1 << OFFSET_BITS) - 1), int(self.length[lo])))
            lo += 1
        return found

    def __len__(self) -> int:
        return len(self.prefix)


def _repeats(prefix: np.ndarray, order: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """True where a sorted entry's full key already appeared earlier (in store order) in its run of equal
    prefixes; each such run (rare: a key stored twice, or two keys sharing 64 bits) is first put back in
    store order, in place in `order`."""
    drop = np.zeros(len(prefix), dtype=bool)
    starts = np.flatnonzero(np.diff(np.concatenate(([False], prefix[1:] == prefix[:-1], [False])).astype(np.int8)))
    for lo, hi in zip(starts[::2], starts[1::2] + 1):  # each run of equal prefixes: order[lo:hi]
        order[lo:hi] = np.sort(order[lo:hi])
        seen: set[bytes] = set()
        for i in range(lo, hi):
            key = bytes(keys[order[i]])
            drop[i] = key in seen
            seen.add(key)
    return drop
