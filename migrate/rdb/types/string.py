"""Strings (type 0): plain, integer-encoded or LZF; big plain strings come in pieces."""

from __future__ import annotations

from migrate.rdb.encodings import read_string
from migrate.rdb.types.base import Chunks, ValueContext


def read(ctx: ValueContext, type_code: int) -> Chunks:
    inp = ctx.inp
    b = inp.read_byte()
    kind = b >> 6
    if kind == 3:  # integer or LZF: small enough to decode whole
        inp.unread_byte()
        yield read_string(inp), 1
        return
    if kind == 0:
        n = b & 0x3F
    elif kind == 1:
        n = ((b & 0x3F) << 8) | inp.read_byte()
    elif b == 0x80:
        n = int.from_bytes(inp.read(4), "big")
    elif b == 0x81:
        n = int.from_bytes(inp.read(8), "big")
    else:
        raise inp.error(f"invalid string encoding 0x{b:02x}", inp.offset - 1)
    if n <= ctx.chunk_bytes:
        yield inp.read(n), 1
        return
    left = n
    while left:
        piece = min(left, ctx.chunk_bytes)
        yield inp.read(piece), 1
        left -= piece
