"""Low-level RDB encodings: lengths, strings (integer-encoded and LZF), doubles, and the
packed containers (listpack, ziplist, intset, zipmap), each validated strictly.

Container decoders take the container's bytes and the offset where they start in the input
(for error messages) and return Python values: ``bytes`` for strings, ``int`` for integers.
"""

from __future__ import annotations

import itertools
import struct

from migrate.rdb import lzf
from migrate.rdb.errors import RdbFormatError
from migrate.rdb.source import RdbInput

_I16 = struct.Struct("<h")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_F32 = struct.Struct("<f")

ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF = 0, 1, 2, 3


def read_length(inp: RdbInput) -> int:
    b = inp.read_byte()
    kind = b >> 6
    if kind == 0:
        return b & 0x3F
    if kind == 1:
        return ((b & 0x3F) << 8) | inp.read_byte()
    if b == 0x80:
        return int.from_bytes(inp.read(4), "big")
    if b == 0x81:
        return int.from_bytes(inp.read(8), "big")
    raise inp.error(f"invalid length encoding 0x{b:02x}", inp.offset - 1)


def read_string(inp: RdbInput) -> bytes:
    fast = inp.try_plain_string()
    if fast is not None:
        return fast
    b = inp.read_byte()
    kind = b >> 6
    if kind == 0:
        return inp.read(b & 0x3F)
    if kind == 1:
        return inp.read(((b & 0x3F) << 8) | inp.read_byte())
    if b == 0x80:
        return inp.read(int.from_bytes(inp.read(4), "big"))
    if b == 0x81:
        return inp.read(int.from_bytes(inp.read(8), "big"))
    enc = b & 0x3F
    if enc == ENC_INT8:
        v = inp.read_byte()
        return b"%d" % (v - 256 if v > 127 else v)
    if enc == ENC_INT16:
        return b"%d" % _I16.unpack(inp.read(2))[0]
    if enc == ENC_INT32:
        return b"%d" % _I32.unpack(inp.read(4))[0]
    if enc == ENC_LZF:
        at = inp.offset - 1
        clen = read_length(inp)
        ulen = read_length(inp)
        data = lzf.decompress(inp.read(clen), ulen)
        if data is None:
            raise inp.error(f"LZF string does not decompress to its stated {ulen} bytes", at)
        return data
    raise inp.error(f"invalid string encoding 0x{b:02x}", inp.offset - 1)


def read_ms_time(inp: RdbInput) -> int:
    return _I64.unpack(inp.read(8))[0]


def read_u64_le(inp: RdbInput) -> int:
    return _U64.unpack(inp.read(8))[0]


def read_i64_le(inp: RdbInput) -> int:
    return _I64.unpack(inp.read(8))[0]


def read_binary_double(inp: RdbInput) -> float:
    return _F64.unpack(inp.read(8))[0]


def read_binary_float(inp: RdbInput) -> float:
    return _F32.unpack(inp.read(4))[0]


def read_old_double(inp: RdbInput) -> float:
    n = inp.read_byte()
    if n == 253:
        return float("nan")
    if n == 254:
        return float("inf")
    if n == 255:
        return float("-inf")
    text = inp.read(n)
    try:
        return float(text)
    except ValueError:
        raise inp.error(f"invalid double {text!r}", inp.offset - n - 1) from None


def to_bytes(v: bytes | int) -> bytes:
    return v if isinstance(v, bytes) else b"%d" % v


def to_float(v: bytes | int, at: int) -> float:
    if isinstance(v, int):
        return float(v)
    try:
        return float(v)
    except ValueError:
        raise RdbFormatError(at, f"invalid score {v[:40]!r}") from None


# --- listpack -----------------------------------------------------------------------------

def _backlen_size(n: int) -> int:
    if n <= 127:
        return 1
    if n < 16383:
        return 2
    if n < 2097151:
        return 3
    if n < 268435455:
        return 4
    return 5


def parse_listpack(lp: bytes, at: int) -> list[bytes | int]:
    """Decode a listpack; any inconsistency raises with the offset of the container."""
    size = len(lp)
    if size < 7:
        raise RdbFormatError(at, f"listpack of {size} bytes is too short")
    total = int.from_bytes(lp[0:4], "little")
    count = int.from_bytes(lp[4:6], "little")
    if total != size:
        raise RdbFormatError(at, f"listpack header says {total} bytes, the string has {size}")
    if lp[-1] != 0xFF:
        raise RdbFormatError(at, "listpack does not end with its terminator")
    out: list[bytes | int] = []
    append = out.append
    i = 6
    end = size - 1
    while i < end:
        start = i
        b = lp[i]
        # the two commonest entries, a 7-bit uint and a string under 64 bytes, each with
        # its one-byte back-length checked here (the same checks as below, done inline)
        if b < 0x80:
            if i + 1 >= end or lp[i + 1] != 1:
                raise RdbFormatError(at, f"listpack entry at +{start} has a wrong back-length")
            append(b)
            i += 2
            continue
        if b < 0xC0:
            n = b & 0x3F
            j = i + 1 + n
            if j >= end or lp[j] != n + 1:
                raise RdbFormatError(at, f"listpack entry at +{start} has a wrong back-length")
            append(lp[i + 1:j])
            i = j + 1
            continue
        if b < 0xE0:
            v = ((b & 0x1F) << 8) | lp[i + 1]
            append(v - 8192 if v >= 4096 else v)
            i += 2
        elif b < 0xF0:
            n = ((b & 0x0F) << 8) | lp[i + 1]
            append(lp[i + 2:i + 2 + n])
            i += 2 + n
        elif b == 0xF0:
            n = int.from_bytes(lp[i + 1:i + 5], "little")
            append(lp[i + 5:i + 5 + n])
            i += 5 + n
        elif b == 0xF1:
            append(int.from_bytes(lp[i + 1:i + 3], "little", signed=True))
            i += 3
        elif b == 0xF2:
            append(int.from_bytes(lp[i + 1:i + 4], "little", signed=True))
            i += 4
        elif b == 0xF3:
            append(int.from_bytes(lp[i + 1:i + 5], "little", signed=True))
            i += 5
        elif b == 0xF4:
            append(int.from_bytes(lp[i + 1:i + 9], "little", signed=True))
            i += 9
        else:
            raise RdbFormatError(at, f"listpack entry at +{start} has invalid encoding 0x{b:02x}")
        entry_len = i - start
        if entry_len <= 127:  # the common case: a one-byte back-length equal to the size
            if i >= end or lp[i] != entry_len:
                raise RdbFormatError(at, f"listpack entry at +{start} has a wrong back-length")
            i += 1
            continue
        bl = _backlen_size(entry_len)
        if i + bl > end:
            raise RdbFormatError(at, f"listpack entry at +{start} runs past the end")
        # backlen: groups of 7 bits, the lowest in the last byte
        back = 0
        for k in range(bl):
            back |= (lp[i + bl - 1 - k] & 0x7F) << (7 * k)
        if back != entry_len:
            raise RdbFormatError(at, f"listpack entry at +{start} has a wrong back-length")
        i += bl
    if i != end:
        raise RdbFormatError(at, "listpack entries overrun the container")
    if count != 65535 and count != len(out):
        raise RdbFormatError(at, f"listpack header says {count} entries, found {len(out)}")
    return out


# --- ziplist ------------------------------------------------------------------------------

def parse_ziplist(zl: bytes, at: int) -> list[bytes | int]:
    size = len(zl)
    if size < 11:
        raise RdbFormatError(at, f"ziplist of {size} bytes is too short")
    total = int.from_bytes(zl[0:4], "little")
    tail = int.from_bytes(zl[4:8], "little")
    count = int.from_bytes(zl[8:10], "little")
    if total != size:
        raise RdbFormatError(at, f"ziplist header says {total} bytes, the string has {size}")
    if zl[-1] != 0xFF:
        raise RdbFormatError(at, "ziplist does not end with its terminator")
    out: list[bytes | int] = []
    i = 10
    end = size - 1
    prev_len = 0
    last_start = 10
    while i < end:
        start = i
        p = zl[i]
        if p < 254:
            prevlen = p
            i += 1
        elif p == 254:
            prevlen = int.from_bytes(zl[i + 1:i + 5], "little")
            i += 5
        else:
            raise RdbFormatError(at, f"ziplist entry at +{start} has an invalid prevlen")
        if prevlen != prev_len:
            raise RdbFormatError(at, f"ziplist entry at +{start}: prevlen {prevlen} does not "
                                     f"match the previous entry's {prev_len} bytes")
        if i >= end:
            raise RdbFormatError(at, f"ziplist entry at +{start} runs past the end")
        b = zl[i]
        kind = b >> 6
        if kind == 0:
            n = b & 0x3F
            val: bytes | int = zl[i + 1:i + 1 + n]
            i += 1 + n
        elif kind == 1:
            n = ((b & 0x3F) << 8) | zl[i + 1]
            val = zl[i + 2:i + 2 + n]
            i += 2 + n
        elif kind == 2:
            if b != 0x80:
                raise RdbFormatError(at, f"ziplist entry at +{start} has invalid encoding "
                                         f"0x{b:02x}")
            n = int.from_bytes(zl[i + 1:i + 5], "big")
            val = zl[i + 5:i + 5 + n]
            i += 5 + n
        elif b == 0xC0:
            val = int.from_bytes(zl[i + 1:i + 3], "little", signed=True)
            i += 3
        elif b == 0xD0:
            val = int.from_bytes(zl[i + 1:i + 5], "little", signed=True)
            i += 5
        elif b == 0xE0:
            val = int.from_bytes(zl[i + 1:i + 9], "little", signed=True)
            i += 9
        elif b == 0xF0:
            val = int.from_bytes(zl[i + 1:i + 4], "little", signed=True)
            i += 4
        elif b == 0xFE:
            val = int.from_bytes(zl[i + 1:i + 2], "little", signed=True)
            i += 2
        elif 0xF1 <= b <= 0xFD:
            val = (b & 0x0F) - 1
            i += 1
        else:
            raise RdbFormatError(at, f"ziplist entry at +{start} has invalid encoding 0x{b:02x}")
        if i > end:
            raise RdbFormatError(at, f"ziplist entry at +{start} runs past the end")
        out.append(val)
        prev_len = i - start
        last_start = start
    if out and tail != last_start:
        raise RdbFormatError(at, f"ziplist tail offset {tail} does not point at the last entry")
    if count != 65535 and count != len(out):
        raise RdbFormatError(at, f"ziplist header says {count} entries, found {len(out)}")
    return out


# --- intset -------------------------------------------------------------------------------

def parse_intset(data: bytes, at: int) -> list[int]:
    if len(data) < 8:
        raise RdbFormatError(at, "intset is too short")
    width = int.from_bytes(data[0:4], "little")
    n = int.from_bytes(data[4:8], "little")
    if width not in (2, 4, 8):
        raise RdbFormatError(at, f"intset has invalid encoding width {width}")
    if len(data) != 8 + width * n:
        raise RdbFormatError(at, f"intset of {n} x {width} bytes has {len(data) - 8} bytes")
    fmt = {2: "h", 4: "i", 8: "q"}[width]
    values = list(struct.unpack(f"<{n}{fmt}", data[8:]))
    for a, b in itertools.pairwise(values):
        if a >= b:
            raise RdbFormatError(at, "intset is not sorted or has duplicates")
    return values


# --- zipmap (Redis < 2.6 hashes) ----------------------------------------------------------

def parse_zipmap(zm: bytes, at: int) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    size = len(zm)
    if size < 2:
        raise RdbFormatError(at, "zipmap is too short")
    i = 1

    def length(i: int) -> tuple[int, int]:
        if i >= size:
            raise RdbFormatError(at, "zipmap runs past its end")
        b = zm[i]
        if b < 254:
            return b, i + 1
        if b == 254:
            return int.from_bytes(zm[i + 1:i + 5], "little"), i + 5
        raise RdbFormatError(at, f"zipmap length byte 0x{b:02x} where an entry should be")

    while True:
        if i >= size:
            raise RdbFormatError(at, "zipmap has no terminator")
        if zm[i] == 0xFF:
            break
        klen, i = length(i)
        key = zm[i:i + klen]
        i += klen
        vlen, i = length(i)
        free = zm[i] if i < size else 0
        i += 1
        value = zm[i:i + vlen]
        i += vlen + free
        if i > size:
            raise RdbFormatError(at, "zipmap entry runs past its end")
        out.append((key, value))
    if i != size - 1:
        raise RdbFormatError(at, "zipmap has bytes after its terminator")
    return out
