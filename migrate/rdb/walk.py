"""A fast structural walk of an RDB file: every record stepped over (lengths only, nothing
decoded but AUX fields and function names), the counts :class:`RdbSummary` holds, and a
call every megabyte saying up to where the file has been walked.

It serves the copy path in which the target loads the file itself
(:mod:`migrate.proxy.fileload`): that path sends the target only bytes already walked, so the
walk must be faster than the target's own load (about 1.5 us per key here; the full reader
takes about 8, its skim 4). It covers the records a Redis or Valkey server writes for the
core types; anything else (module values, hashes with field TTLs, Valkey 9's slot imports,
Redis 7.0 release candidates' functions, unknown opcodes) raises :class:`NotWalked`, and the
caller takes the full reader, which knows them all (and names a defect precisely).

Memory: the file is mapped, and the pages behind the walk are given back every few
megabytes, so the resident size stays flat whatever the file's size.
"""

from __future__ import annotations

import mmap
import struct
import time
from collections.abc import Callable
from pathlib import Path

from migrate.rdb.errors import RdbFormatError
from migrate.rdb.reader import REDIS_VERSIONS, VALKEY_VERSIONS
from migrate.rdb.records import TYPE_NAMES, Function, Producer
from migrate.rdb.steps import WALKED, NotWalked, length_at, string_at, string_end, value_end
from migrate.rdb.summary import Biggest, Expiries, KeyInfo, RdbSummary, count_keys

ADVANCE_BYTES = 1 << 20  # report progress (and release pages) about this often
RELEASE_BYTES = 16 << 20


def producer_of(head: bytes) -> Producer:
    if head.startswith(b"REDIS") and head[5:9].isdigit() and int(head[5:9]) in REDIS_VERSIONS:
        return Producer("REDIS", int(head[5:9]), "redis")
    if head.startswith(b"VALKEY") and head[6:9].isdigit() and \
            int(head[6:9]) in VALKEY_VERSIONS:
        return Producer("VALKEY", int(head[6:9]), "valkey")
    raise NotWalked(f"header {head[:9]!r}")


def walk(path: Path, *, advance: Callable[[int], None] | None = None,
         accept: Callable[[int], bool] | None = None, now_ms: int | None = None,
         expiry_limit_ms: int | None = None) -> RdbSummary:
    """Walk ``path``; ``advance(offset)``: every record before ``offset`` was walked (called
    about every megabyte, and at the end with the file's size). ``accept(type_code)``: False
    stops the walk with :class:`NotWalked`. The summary's checksum is "unchecked": the
    caller checks it (in C) before anything of the file is used."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return _walk(buf, advance or (lambda offset: None), accept or (lambda tc: True),
                         int(time.time() * 1000) if now_ms is None else now_ms,
                         expiry_limit_ms)
        except (IndexError, ValueError, struct.error) as exc:
            raise RdbFormatError(len(buf), f"truncated or malformed ({exc})") from None


def _walk(buf: mmap.mmap, advance: Callable[[int], None], accept: Callable[[int], bool],
          now: int, expiry_limit_ms: int | None) -> RdbSummary:
    size = len(buf)
    s = RdbSummary(producer_of(buf[:9]), file_bytes=size, checksum="unchecked")
    producer = s.producer
    expiries = Expiries(now, expiry_limit_ms)
    counts: dict[int, list[int]] = {}  # db -> keys per type byte
    per_type = counts.setdefault(0, [0] * 256)
    ok = [tc in WALKED and accept(tc) for tc in range(256)]
    biggest = Biggest()  # of (size, key offset, db, type byte)
    floor = -1
    db = 0
    expire: int | None = None
    start = -1  # where the current key's record began (its expire / idle / freq prefix)
    i = 9
    mark = ADVANCE_BYTES
    released = [0]
    skip = string_end

    def release(upto: int) -> None:  # the pages behind ``upto``: never read again
        if upto - released[0] >= RELEASE_BYTES and upto <= size:
            cut = (upto - RELEASE_BYTES // 2) & ~(mmap.PAGESIZE - 1)
            buf.madvise(mmap.MADV_DONTNEED, released[0], cut - released[0])
            released[0] = cut

    while True:
        if i >= mark:
            if i > size:
                raise RdbFormatError(size, "truncated: the file ends inside a record")
            advance(i)
            mark = i + ADVANCE_BYTES
            release(i)
        at = i
        op = buf[i]
        i += 1
        if op < 64:
            if not ok[op]:
                if op in TYPE_NAMES or op < 32:
                    raise NotWalked(f"a key of type {op} at byte {at}")
                raise RdbFormatError(at, f"unknown type or opcode {op}")
            if start < 0:
                start = at
            key = i
            b = buf[i]
            i = i + 1 + b if b < 64 else skip(buf, i)  # the key: nearly always short
            if op == 0:  # a string: the commonest value, inline
                b = buf[i]
                i = i + 1 + b if b < 64 else skip(buf, i)
            else:
                i = value_end(buf, i, op, release)
            per_type[op] += 1
            if expire is not None and expiries.add(expire):
                expiries.first_beyond = (db, string_at(buf, key)[0], expire)
            expire = None
            n = i - start
            if n >= floor:
                floor = biggest.offer(n, (n, key, db, op))
            start = -1
            continue
        if op == 252:  # expire, ms
            expire = int.from_bytes(buf[i:i + 8], "little", signed=True)
            start, i = at, i + 8
        elif op == 253:  # expire, s
            expire = int.from_bytes(buf[i:i + 4], "little", signed=True) * 1000
            s.seconds_expiry = True
            start, i = at, i + 4
        elif op == 248:  # idle
            start = at if start < 0 else start
            _, i = length_at(buf, i)
        elif op == 249:  # freq
            start, i = (at if start < 0 else start), i + 1
        elif op == 254:
            db, i = length_at(buf, i)
            per_type = counts.setdefault(db, [0] * 256)
        elif op == 251:
            _, i = length_at(buf, i)
            _, i = length_at(buf, i)
        elif op == 250:
            name, i = string_at(buf, i)
            value, i = string_at(buf, i)
            _aux(s, name, value)
        elif op == 245:
            code, i = string_at(buf, i)
            s.functions.append(Function(code, at).name)
        elif op == 244:  # slot info: slot, its keys, its keys with a TTL
            for _ in range(3):
                _, i = length_at(buf, i)
            s.slot_info += 1
        elif op == 255:
            end = i + (8 if producer.rdb_version >= 5 else 0)
            if end != size:
                raise RdbFormatError(i, f"the RDB ends at byte {end} but the file holds "
                                        f"{size} bytes")
            advance(size)
            break
        elif op in (243, 246, 247):
            raise NotWalked(f"opcode {op} at byte {at}")
        else:
            raise RdbFormatError(at, f"unknown opcode {op}")
        if expire is None and op not in (248, 249):
            start = -1
    for d, per in counts.items():
        for tc, n in enumerate(per):
            if n:
                count_keys(s, d, tc, *TYPE_NAMES[tc], n)
    expiries.into(s)
    s.biggest = [KeyInfo(d, string_at(buf, k)[0], *TYPE_NAMES[tc], n, 0)
                 for n, k, d, tc in biggest.items()]
    return s


def _aux(s: RdbSummary, name: bytes, value: bytes) -> None:
    text = value.decode(errors="backslashreplace")
    key = name.decode(errors="backslashreplace")
    s.aux[key] = text if len(text) <= 80 else text[:77] + "..."
    p = s.producer
    if name == b"valkey-ver":
        p.flavor, p.server_version = "valkey", text
    elif name == b"redis-ver" and p.server_version is None:
        p.server_version = text
    elif name in (b"df-ver", b"dragonfly-ver"):
        p.flavor, p.server_version = "dragonfly", text
    if name == b"slot-info":
        s.slot_info += 1
