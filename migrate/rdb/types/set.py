"""Sets: hashtable (2), intset (11), listpack (20)."""

from __future__ import annotations

from migrate.rdb.encodings import parse_intset, parse_listpack, read_length, read_string
from migrate.rdb.types.base import Batch, Chunks, ValueContext, split


def read(ctx: ValueContext, type_code: int) -> Chunks:
    inp = ctx.inp
    if type_code == 11:
        at = inp.offset
        yield from split([b"%d" % v for v in parse_intset(read_string(inp), at)], ctx)
        return
    if type_code == 20:
        at = inp.offset
        items = [v if isinstance(v, bytes) else b"%d" % v
                 for v in parse_listpack(read_string(inp), at)]
        if len(set(items)) != len(items):
            raise inp.error("set listpack has duplicate members", at)
        yield from split(items, ctx)
        return
    n = read_length(inp)
    batch = Batch(ctx)
    for _ in range(n):
        item = read_string(inp)
        if batch.add(item, len(item)):
            chunk = batch.take()
            yield chunk, len(chunk)
    chunk = batch.take()
    yield chunk, len(chunk)
