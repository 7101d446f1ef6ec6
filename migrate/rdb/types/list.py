"""Lists: linked list (1), ziplist (10), quicklist of ziplists (14), quicklist 2 of
listpacks or plain nodes (18)."""

from __future__ import annotations

from migrate.rdb.encodings import parse_listpack, parse_ziplist, read_length, read_string, to_bytes
from migrate.rdb.types.base import Batch, Chunks, ValueContext, split

PLAIN, PACKED = 1, 2


def read(ctx: ValueContext, type_code: int) -> Chunks:
    inp = ctx.inp
    if type_code == 10:
        at = inp.offset
        items = [to_bytes(v) for v in parse_ziplist(read_string(inp), at)]
        yield from split(items, ctx)
        return
    n = read_length(inp)
    batch = Batch(ctx)
    for _ in range(n):
        if type_code == 1:
            item = read_string(inp)
            if batch.add(item, len(item)):
                chunk = batch.take()
                yield chunk, len(chunk)
            continue
        container = PACKED
        if type_code == 18:
            at = inp.offset
            container = read_length(inp)
            if container not in (PLAIN, PACKED):
                raise inp.error(f"quicklist node has invalid container {container}", at)
        at = inp.offset
        data = read_string(inp)
        if container == PLAIN:
            values: list[bytes | int] = [data]
        elif type_code == 18:
            values = parse_listpack(data, at)
        elif type_code == 14:
            values = parse_ziplist(data, at)
        else:
            raise inp.error(f"not a list type: {type_code}")
        items = [v if isinstance(v, bytes) else b"%d" % v for v in values]
        if batch.extend(items):
            continue
        for item in items:
            if batch.add(item, len(item)):
                chunk = batch.take()
                yield chunk, len(chunk)
    chunk = batch.take()
    yield chunk, len(chunk)
