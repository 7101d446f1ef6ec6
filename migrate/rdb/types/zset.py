"""Sorted sets: skiplist with text scores (3), skiplist with binary scores (5), ziplist (12),
listpack (17). Values are (member, score) pairs."""

from __future__ import annotations

from migrate.rdb.encodings import (
    parse_listpack,
    parse_ziplist,
    read_binary_double,
    read_length,
    read_old_double,
    read_string,
    to_float,
)
from migrate.rdb.types.base import Batch, Chunks, ValueContext, split


def read(ctx: ValueContext, type_code: int) -> Chunks:
    inp = ctx.inp
    if type_code in (12, 17):
        at = inp.offset
        data = read_string(inp)
        flat = parse_ziplist(data, at) if type_code == 12 else parse_listpack(data, at)
        if len(flat) % 2:
            raise inp.error("sorted set container has an odd number of entries", at)
        members = [v if isinstance(v, bytes) else b"%d" % v for v in flat[::2]]
        try:
            scores = [float(v) for v in flat[1::2]]
        except ValueError:  # name the bad score
            scores = [to_float(v, at) for v in flat[1::2]]
        pairs = list(zip(members, scores, strict=True))
        yield from split(pairs, ctx)
        return
    n = read_length(inp)
    batch = Batch(ctx)
    for _ in range(n):
        member = read_string(inp)
        score = read_binary_double(inp) if type_code == 5 else read_old_double(inp)
        if batch.add((member, score), len(member) + 8):
            chunk = batch.take()
            yield chunk, len(chunk)
    chunk = batch.take()
    yield chunk, len(chunk)
