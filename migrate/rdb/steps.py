"""Stepping over RDB values in a buffer (a mapped file, or one value's bytes): lengths and
the header checks a server makes as it loads a value (listpack, ziplist and intset headers,
empty keys, stream nodes' entry counts against the stream's length), nothing decoded.

Shared by the fast walk of a whole file (:mod:`migrate.rdb.walk`) and the reader's skimmed
values (:class:`migrate.rdb.reader.RdbReader`, ``check_skimmed``): anything these steps do not
cover, or a value that fails a check, raises :class:`NotWalked`, and the caller reads the
value fully (the full reader names a defect precisely, and counts the empty keys a server
skips).
"""

from __future__ import annotations

import io
import mmap
import struct
from collections.abc import Callable

from migrate.rdb.encodings import read_string
from migrate.rdb.errors import NotWalked, RdbFormatError
from migrate.rdb.source import RdbInput

__all__ = ["NotWalked", "check_container", "key_value_end", "length_at", "string_at",
           "string_end", "value_end"]

Buffer = bytes | mmap.mmap
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


def length_at(buf: Buffer, i: int) -> tuple[int, int]:
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


def string_end(buf: Buffer, i: int) -> int:
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
        clen, j = length_at(buf, i + 1)
        _, j = length_at(buf, j)
        return j + clen
    raise RdbFormatError(i, f"invalid string encoding 0x{b:02x}")


def string_at(buf: Buffer, i: int) -> tuple[bytes, int]:
    """The string at ``i`` decoded (for the few that are read), and the offset after it."""
    end = string_end(buf, i)
    if end > len(buf):
        raise RdbFormatError(i, "truncated: the file ends inside a string")
    return read_string(RdbInput(io.BytesIO(buf[i:end]), checksum=False)), end


def check_container(buf: Buffer, i: int, tc: int) -> None:
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


def value_end(buf: Buffer, i: int, tc: int, release: Callable[[int], None]) -> int:
    """The offset after a value of type ``tc`` (in :data:`WALKED`) starting at ``i``;
    ``release(offset)`` is called between steps of a big collection."""
    if tc in BLOBS:
        if tc in CONTAINERS:
            check_container(buf, i, tc)
        return string_end(buf, i)
    if tc in STREAMS:
        return _stream(buf, i, tc)
    n, i = length_at(buf, i)
    if n == 0:
        raise NotWalked(f"an empty key at byte {i}")
    while n > STEP:
        i = _elements(buf, i, tc, STEP)
        n -= STEP
        release(i)
    return _elements(buf, i, tc, n)


def _elements(buf: Buffer, i: int, tc: int, n: int) -> int:
    skip = string_end
    if tc == 1 or tc == 2:
        for _ in range(n):
            i = skip(buf, i)
    elif tc == 14:
        for _ in range(n):
            check_container(buf, i, 10)
            i = skip(buf, i)
    elif tc == 4:
        for _ in range(n):
            i = skip(buf, skip(buf, i))
    elif tc == 5:
        for _ in range(n):
            i = skip(buf, i) + 8
    elif tc == 18:
        for _ in range(n):
            container, i = length_at(buf, i)
            if container == 2:  # packed: a listpack (1: plain, one element)
                check_container(buf, i, 16)
            i = skip(buf, i)
    else:  # 3: scores as strings, 253-255 standing for nan, +inf and -inf
        for _ in range(n):
            i = skip(buf, i)
            d = buf[i]
            i += 1 + (d if d < 253 else 0)
    return i


def _stream(buf: Buffer, i: int, tc: int) -> int:
    n, i = length_at(buf, i)
    valid = 0
    for _ in range(n):  # nodes: master id (a stream id, 16 bytes), listpack
        if buf[i] != 16:
            raise NotWalked(f"a stream node key that is not a stream id at byte {i}")
        i += 17
        listpack, end = string_at(buf, i)
        valid += _stream_node(listpack, i)
        i = end
    length, i = length_at(buf, i)
    if length != valid:  # Valkey 9 refuses such a stream, and exits
        raise NotWalked(f"a stream whose length ({length}) is not the sum of its nodes' "
                        f"entries ({valid}) at byte {i}")
    for _ in range(2 + (5 if tc >= 19 else 0)):  # ids, counters
        _, i = length_at(buf, i)
    groups, i = length_at(buf, i)
    for _ in range(groups):
        i = string_end(buf, i)
        for _ in range(3 if tc >= 19 else 2):  # last id, entries read
            _, i = length_at(buf, i)
        pending, i = length_at(buf, i)
        for _ in range(pending):  # id, delivery time, delivery count
            _, i = length_at(buf, i + 24)
        consumers, i = length_at(buf, i)
        for _ in range(consumers):
            i = string_end(buf, i) + (16 if tc >= 21 else 8)
            owned, i = length_at(buf, i)
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


def key_value_end(buf: Buffer, i: int, tc: int) -> int:
    """The offset after a key record's key (at ``i``, after its type byte ``tc``) and value,
    the value checked as :func:`value_end` checks it."""
    return value_end(buf, string_end(buf, i), tc, _nothing)


def _nothing(offset: int) -> None:
    pass
