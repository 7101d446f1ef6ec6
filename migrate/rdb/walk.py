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

import io
import mmap
import struct
import time
from collections.abc import Callable
from pathlib import Path

from migrate.rdb.encodings import read_string
from migrate.rdb.errors import RdbFormatError
from migrate.rdb.reader import REDIS_VERSIONS, VALKEY_VERSIONS
from migrate.rdb.records import TYPE_NAMES, Function, Producer
from migrate.rdb.source import RdbInput
from migrate.rdb.summary import Biggest, Expiries, KeyInfo, RdbSummary, count_keys

ADVANCE_BYTES = 1 << 20  # report progress (and release pages) about this often
RELEASE_BYTES = 16 << 20
STEP = 1024  # elements of a big collection walked between two looks at what to release
BLOBS = frozenset({0, 9, 10, 11, 12, 13, 16, 17, 20})  # one string each
STREAMS = frozenset({15, 19, 21})
WALKED = BLOBS | STREAMS | {1, 2, 3, 4, 5, 14, 18}
LISTPACKS = frozenset({16, 17, 20})
ZIPLISTS = frozenset({10, 12, 13})
CONTAINERS = LISTPACKS | ZIPLISTS | {11}
_LP = struct.Struct("<IH").unpack_from
_ZL = struct.Struct("<IIH").unpack_from
_IS = struct.Struct("<II").unpack_from


class NotWalked(Exception):
    """The file holds something this walk does not cover (``reason``): read it fully."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _length(buf: mmap.mmap, i: int) -> tuple[int, int]:
    b = buf[i]
    t = b >> 6
    if t == 0:
        return b & 63, i + 1
    if t == 1:
        return ((b & 63) << 8) | buf[i + 1], i + 2
    if b == 0x80:
        return int.from_bytes(buf[i + 1:i + 5], "big"), i + 5
    if b == 0x81:
        return int.from_bytes(buf[i + 1:i + 9], "big"), i + 9
    raise RdbFormatError(i, f"invalid length encoding 0x{b:02x}")


def _skip(buf: mmap.mmap, i: int) -> int:
    """The offset after the string at ``i``."""
    b = buf[i]
    t = b >> 6
    if t == 0:
        return i + 1 + (b & 63)
    if t == 1:
        return i + 2 + (((b & 63) << 8) | buf[i + 1])
    if b == 0x80:
        return i + 5 + int.from_bytes(buf[i + 1:i + 5], "big")
    if b == 0x81:
        return i + 9 + int.from_bytes(buf[i + 1:i + 9], "big")
    enc = b & 63
    if enc < 3:
        return i + 2 + enc + (enc == 2)  # int8, int16, int32
    if enc == 3:  # LZF: compressed length, then the plain length
        clen, j = _length(buf, i + 1)
        _, j = _length(buf, j)
        return j + clen
    raise RdbFormatError(i, f"invalid string encoding 0x{b:02x}")


def _string(buf: mmap.mmap, i: int) -> tuple[bytes, int]:
    """The string at ``i`` decoded (for the few that are read), and the offset after it."""
    end = _skip(buf, i)
    if end > len(buf):
        raise RdbFormatError(i, "truncated: the file ends inside a string")
    return read_string(RdbInput(io.BytesIO(buf[i:end]), checksum=False)), end


def _container(buf: mmap.mmap, i: int, tc: int) -> None:
    """The header checks a server makes of a listpack, ziplist or intset as it loads it
    (without deep sanitization), on the ones not compressed; also an empty one (which
    servers skip): NotWalked, so that the full reader names the defect or the empty key."""
    b = buf[i]
    if b < 64:
        at, n = i + 1, b
    elif b < 128:
        at, n = i + 2, ((b & 63) << 8) | buf[i + 1]
    elif b == 0x80:
        at, n = i + 5, int.from_bytes(buf[i + 1:i + 5], "big")
    else:
        return  # compressed (or an integer): the checksum vouches for it
    if tc in LISTPACKS:  # total bytes, element count, ..., 0xFF
        size, count = _LP(buf, at) if n >= 7 else (0, 0)
        good = size == n and count != 0 and buf[at + n - 1] == 255
    elif tc in ZIPLISTS:  # total bytes, tail offset, element count, ..., 0xFF
        size, tail, count = _ZL(buf, at) if n >= 11 else (0, 0, 0)
        good = size == n and tail < n and count != 0 and buf[at + n - 1] == 255
    else:  # intset: bytes per element, element count
        size, count = _IS(buf, at) if n >= 8 else (0, 0)
        good = size in (2, 4, 8) and count > 0 and n == 8 + size * count
    if not good:
        raise NotWalked(f"a damaged or empty container at byte {i}")


def _value(buf: mmap.mmap, i: int, tc: int, release: Callable[[int], None]) -> int:
    """The offset after a value of type ``tc`` (in :data:`WALKED`) starting at ``i``;
    ``release(offset)`` is called between steps of a big collection."""
    if tc in BLOBS:
        if tc in CONTAINERS:
            _container(buf, i, tc)
        return _skip(buf, i)
    if tc in STREAMS:
        return _stream(buf, i, tc)
    n, i = _length(buf, i)
    if n == 0:
        raise NotWalked(f"an empty key at byte {i}")
    while n > STEP:
        i = _elements(buf, i, tc, STEP)
        n -= STEP
        release(i)
    return _elements(buf, i, tc, n)


def _elements(buf: mmap.mmap, i: int, tc: int, n: int) -> int:
    skip = _skip
    if tc == 1 or tc == 2:
        for _ in range(n):
            i = skip(buf, i)
    elif tc == 14:
        for _ in range(n):
            _container(buf, i, 10)
            i = skip(buf, i)
    elif tc == 4:
        for _ in range(n):
            i = skip(buf, skip(buf, i))
    elif tc == 5:
        for _ in range(n):
            i = skip(buf, i) + 8
    elif tc == 18:
        for _ in range(n):
            container, i = _length(buf, i)
            if container == 2:  # packed: a listpack (1: plain, one element)
                _container(buf, i, 16)
            i = skip(buf, i)
    else:  # 3: scores as strings, 253-255 standing for nan, +inf and -inf
        for _ in range(n):
            i = skip(buf, i)
            d = buf[i]
            i += 1 + (d if d < 253 else 0)
    return i


def _stream(buf: mmap.mmap, i: int, tc: int) -> int:
    n, i = _length(buf, i)
    valid = 0
    for _ in range(n):  # nodes: master id (a stream id, 16 bytes), listpack
        if buf[i] != 16:
            raise NotWalked(f"a stream node key that is not a stream id at byte {i}")
        i += 17
        listpack, end = _string(buf, i)
        valid += _stream_node(listpack, i)
        i = end
    length, i = _length(buf, i)
    if length != valid:  # Valkey 9 refuses such a stream, and exits
        raise NotWalked(f"a stream whose length ({length}) is not the sum of its nodes' "
                        f"entries ({valid}) at byte {i}")
    for _ in range(2 + (5 if tc >= 19 else 0)):  # ids, counters
        _, i = _length(buf, i)
    groups, i = _length(buf, i)
    for _ in range(groups):
        i = _skip(buf, i)
        for _ in range(3 if tc >= 19 else 2):  # last id, entries read
            _, i = _length(buf, i)
        pending, i = _length(buf, i)
        for _ in range(pending):  # id, delivery time, delivery count
            _, i = _length(buf, i + 24)
        consumers, i = _length(buf, i)
        for _ in range(consumers):
            i = _skip(buf, i) + (16 if tc >= 21 else 8)
            owned, i = _length(buf, i)
            i += 16 * owned
    return i


def _stream_node(lp: bytes, at: int) -> int:
    """The valid entries of a stream node: its listpack's first element (an integer), after
    the header checks a server makes."""
    n = len(lp)
    if n < 8 or _LP(lp, 0)[0] != n or lp[-1] != 255 or _LP(lp, 0)[1] == 0:
        raise NotWalked(f"a damaged or empty stream node at byte {at}")
    b = lp[6]
    if b < 128:
        return b
    if b >> 5 == 6:
        v = ((b & 31) << 8) | lp[7]
        return v - 8192 if v >= 4096 else v
    width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}.get(b)
    if width is None:
        raise NotWalked(f"a stream node without an entry count at byte {at}")
    return int.from_bytes(lp[7:7 + width], "little", signed=True)


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
    skip = _skip

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
                i = _value(buf, i, op, release)
            per_type[op] += 1
            if expire is not None and expiries.add(expire):
                expiries.first_beyond = (db, _string(buf, key)[0], expire)
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
            _, i = _length(buf, i)
        elif op == 249:  # freq
            start, i = (at if start < 0 else start), i + 1
        elif op == 254:
            db, i = _length(buf, i)
            per_type = counts.setdefault(db, [0] * 256)
        elif op == 251:
            _, i = _length(buf, i)
            _, i = _length(buf, i)
        elif op == 250:
            name, i = _string(buf, i)
            value, i = _string(buf, i)
            _aux(s, name, value)
        elif op == 245:
            code, i = _string(buf, i)
            s.functions.append(Function(code, at).name)
        elif op == 244:  # slot info: slot, its keys, its keys with a TTL
            for _ in range(3):
                _, i = _length(buf, i)
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
    s.biggest = [KeyInfo(d, _string(buf, k)[0], *TYPE_NAMES[tc], n, 0)
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
