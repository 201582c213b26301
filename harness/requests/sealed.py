"""Sealed shards: a shard nobody will append to again, compressed record by record, readable by any gzip tool.

Why: a forced sample stores a thinking response and an answer request that repeats the whole thinking,
and with log-probabilities on every token the JSON is mostly numbers. On the committed 1.5B store the
log-probabilities are 66% of the bytes and the repeated thinking 8.6%, so taking the repeats out alone
would save under a tenth; deflating each record saves 62% (benchmarks/README.md, "The repeated
thinking"). A shard is sealed only once it is closed for good (its writer rotated away from it or ended),
so appends keep their plain JSON-lines path: fsync'd group commits, torn-tail repair, a clean stop on a
full disk. Sealing writes a new file and removes the old one only once the new one is on disk, so a kill
at any moment leaves the JSON-lines shard, the sealed one, or both (the same records twice: read once).

The format, `<shard>.jsonl.gz`: one gzip member (RFC 1952) per record, members back to back, which is
itself a gzip file: `zcat store/*.jsonl.gz` prints the JSON lines, Python's `gzip.open` reads them. Each
member's header carries an extra field `HS` holding the record's key (32 bytes) and the member's length
(4 bytes), the trick of BGZF (bioinformatics' block gzip): a key is read without inflating anything, and
where a member ends is known without inflating it. mtime is 0, so the same records seal to the same bytes.
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

from ..files import atomic_writer
from . import keydir

SUFFIX = ".gz"  # `sample@host@pid@token.jsonl` seals to `sample@host@pid@token.jsonl.gz`
LEVEL = 6  # zlib's default: 0.377x of the 1.5B store's bytes; level 9 0.376x in 30% more time, level 1 0.407x
_START = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff"  # gzip, deflate, FEXTRA set; mtime 0; XFL 0; OS unknown
_EXTRA = struct.pack("<H", 40) + b"HS" + struct.pack("<H", 36)  # XLEN; the subfield's id and length
HEADER = len(_START) + len(_EXTRA) + 32 + 4  # 52 bytes before the deflated record
_TRAILER = struct.Struct("<II")  # crc32 and length of the record, as every gzip member ends


def is_sealed(path: Path) -> bool:
    return path.name.endswith(".jsonl" + SUFFIX)


def sealed_path(shard: Path) -> Path:
    return shard.with_name(shard.name + SUFFIX)


def member(line: bytes, key: bytes) -> bytes:
    """One record (its JSON line, newline included) as a gzip member whose header names its key."""
    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    body = deflate.compress(line) + deflate.flush()
    size = HEADER + len(body) + _TRAILER.size
    return (_START + _EXTRA + key + struct.pack("<I", size) + body
            + _TRAILER.pack(zlib.crc32(line), len(line) & 0xFFFFFFFF))


def head(raw: bytes) -> tuple[bytes, int] | None:
    """(key, member length) from a member's first HEADER bytes; None if they are not a sealed record's."""
    if len(raw) < HEADER or raw[:len(_START)] != _START or raw[len(_START):len(_START) + 6] != _EXTRA:
        return None
    return raw[16:48], struct.unpack_from("<I", raw, 48)[0]


def inflate(raw: bytes) -> bytes:
    """A member's record (its JSON line); ValueError if the member is damaged (zlib checks its crc32)."""
    try:
        return zlib.decompress(raw, 31)
    except zlib.error as exc:
        raise ValueError(f"a damaged compressed record ({exc})") from None


def members(path: Path, start: int = 0) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, raw member, whether it is whole) for each member from `start`, one at a time; the last one
    is not whole when the file ends inside it or holds bytes that start no member."""
    with open(path, "rb") as fh:
        fh.seek(start)
        offset = start
        while raw := fh.read(HEADER):
            found = head(raw)
            if found is None:
                yield offset, raw, False
                return
            rest = fh.read(found[1] - HEADER)
            whole = len(rest) == found[1] - HEADER
            yield offset, raw + rest, whole
            if not whole:
                return
            offset += found[1]


def spans(path: Path) -> Iterator[tuple[int, int]]:
    """(offset, length) of each whole member, from the headers alone (a pread of 52 bytes each): what
    counting a sealed shard's records or their bytes needs, without reading the records."""
    with open(path, "rb") as fh:
        offset, size = 0, os.fstat(fh.fileno()).st_size
        while (found := head(os.pread(fh.fileno(), HEADER, offset))) is not None and offset + found[1] <= size:
            yield offset, found[1]
            offset += found[1]


class Damaged(ValueError):
    """A sealed shard's record that cannot be read: its number, and what is wrong (the caller adds the file)."""

    def __init__(self, number: int, why: str):
        super().__init__(why)
        self.number = number


RESTORE = "restore the shard (git checkout / dvc pull) or move it aside to re-request its responses"


def scan(path: Path, start: int, first: int, slow_key: Callable[[int, bytes], bytes]) -> keydir.ShardKeys:
    """The keys of a sealed shard's members from byte `start` (record number `first`), each record
    inflated and checked by `slow_key(record number, line)`, as an unindexed JSON line is. A sealed shard
    is written whole and renamed into place, so anything but whole members is damage (a copy cut short)."""
    keys, offsets, lengths = bytearray(), array("Q"), array("I")
    covered, number = start, first
    for offset, raw, whole in members(path, start):
        if not whole:
            raise Damaged(number, f"byte {offset} starts no whole compressed record; the file is damaged or "
                                  f"cut short: {RESTORE}")
        try:
            line = inflate(raw)
        except ValueError as exc:
            raise Damaged(number, f"{exc}: {RESTORE}") from None
        key = slow_key(number, line)
        if key != raw[16:48]:
            raise Damaged(number, f"its header names another key than its record's: {RESTORE}")
        keys += key
        offsets.append(offset)
        lengths.append(len(raw))
        covered, number = offset + len(raw), number + 1
    return keydir.ShardKeys(keydir.entries(keys, offsets, lengths), covered, number - 1)


def lines_name(path: Path) -> str:
    """The name of the JSON-lines shard a sealed shard was (`sample.jsonl` for `sample+1.jsonl.gz`)."""
    stem = path.name.removesuffix(".jsonl" + SUFFIX)
    base, plus, n = stem.rpartition("+")
    return f"{base if plus and n.isdigit() else stem}.jsonl"


def lines_bytes(path: Path) -> int:
    """How many bytes a sealed shard's records take as JSON lines (each member's trailer says its own),
    read from the members' headers and trailers only."""
    with open(path, "rb") as fh:
        return sum(struct.unpack("<I", os.pread(fh.fileno(), 4, offset + length - 4))[0]
                   for offset, length in spans(path))


def record_number(path: Path, offset: int) -> int:
    """Which record starts at byte `offset` (counted only when a message needs it)."""
    for number, (at, _raw, _whole) in enumerate(members(path), start=1):
        if at >= offset:
            return number
    return 0


def seal(lines: Iterator[tuple[bytes, bytes]], target: Path) -> keydir.ShardKeys:
    """Write `lines` ((key, JSON line) in shard order) to `target` as every output is written (a temp file
    beside it, fsync, rename, fsync of the directory: a killed seal leaves its temp file, which the next
    seal of `target` removes), then its index. The caller removes the JSON-lines shard only after this."""
    offsets, lengths, keys = array("Q"), array("I"), bytearray()
    with atomic_writer(target) as out:
        for key, line in lines:
            data = member(line, key)
            offsets.append(out.tell())
            lengths.append(len(data))
            keys += key
            out.write(data)
    sealed = keydir.ShardKeys(keydir.entries(keys, offsets, lengths), target.stat().st_size, len(offsets))
    keydir.write_index(target, sealed)
    return sealed
