"""Streams: listpacks v1 (15), v2 (19, Redis 7.0: first id, max deleted id, entries added,
entries read), v3 (21, Redis 7.2: consumer active time). Entries come in bounded chunks;
the metadata, groups, pending entries and consumers on the final chunk."""

from __future__ import annotations

from migrate.rdb.encodings import parse_listpack, read_length, read_ms_time, read_string, to_bytes
from migrate.rdb.records import StreamConsumer, StreamGroup, StreamId, StreamPending, StreamValue
from migrate.rdb.types.base import Chunks, ValueContext

FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2


def _raw_id(data: bytes) -> StreamId:
    return int.from_bytes(data[0:8], "big"), int.from_bytes(data[8:16], "big")


def _int(v: bytes | int, at: int, ctx: ValueContext) -> int:
    if isinstance(v, int):
        return v
    try:
        return int(v)
    except ValueError:
        raise ctx.inp.error(f"stream listpack holds {v[:20]!r} where a number belongs",
                            at) from None


def _id(ctx: ValueContext) -> StreamId:
    return read_length(ctx.inp), read_length(ctx.inp)


def _node_entries(master: StreamId, flat: list[bytes | int], at: int, ctx: ValueContext
                  ) -> list[tuple[StreamId, list[tuple[bytes, bytes]]]]:
    """Decode one listpack node (master entry, then entries) per redis t_stream.c."""
    try:
        count = _int(flat[0], at, ctx)
        deleted = _int(flat[1], at, ctx)
        nmaster = _int(flat[2], at, ctx)
        master_fields = [to_bytes(f) for f in flat[3:3 + nmaster]]
        i = 3 + nmaster
        if _int(flat[i], at, ctx) != 0:
            raise ctx.inp.error("stream node's master entry is not terminated", at)
        i += 1
        out = []
        live = dead = 0
        while i < len(flat):
            start = i
            flags = _int(flat[i], at, ctx)
            eid = (master[0] + _int(flat[i + 1], at, ctx), master[1] + _int(flat[i + 2], at, ctx))
            i += 3
            if flags & FLAG_SAMEFIELDS:
                values = [to_bytes(v) for v in flat[i:i + nmaster]]
                fields = list(zip(master_fields, values, strict=True))
                i += nmaster
            else:
                nf = _int(flat[i], at, ctx)
                i += 1
                fields = [(to_bytes(flat[i + 2 * k]), to_bytes(flat[i + 2 * k + 1]))
                          for k in range(nf)]
                i += 2 * nf
            lp_count = _int(flat[i], at, ctx)
            i += 1
            if lp_count != i - start - 1:
                raise ctx.inp.error("stream entry's element count does not match", at)
            if flags & FLAG_DELETED:
                dead += 1
            else:
                live += 1
                out.append((eid, fields))
    except (IndexError, ValueError):
        raise ctx.inp.error("stream listpack node is malformed", at) from None
    if live != count or dead != deleted:
        raise ctx.inp.error(f"stream node says {count} live / {deleted} deleted entries, "
                            f"holds {live} / {dead}", at)
    return out


def read(ctx: ValueContext, type_code: int) -> Chunks:
    inp = ctx.inp
    nodes = read_length(inp)
    pending: list[tuple[StreamId, list[tuple[bytes, bytes]]]] = []
    pending_bytes = 0
    for _ in range(nodes):
        at = inp.offset
        nodekey = read_string(inp)
        if len(nodekey) != 16:
            raise inp.error(f"stream node key has {len(nodekey)} bytes, not 16", at)
        at = inp.offset
        lp = read_string(inp)
        flat = parse_listpack(lp, at)
        if not flat:
            raise inp.error("empty listpack in a stream", at)
        entries = _node_entries(_raw_id(nodekey), flat, at, ctx)
        pending.extend(entries)
        pending_bytes += len(lp)
        if len(pending) >= ctx.chunk_elements or pending_bytes >= ctx.chunk_bytes:
            yield StreamValue(entries=pending), len(pending)
            pending, pending_bytes = [], 0
    value = StreamValue(entries=pending, complete=True)
    value.length = read_length(inp)
    value.last_id = _id(ctx)
    if type_code >= 19:
        value.first_id = _id(ctx)
        value.max_deleted_id = _id(ctx)
        value.entries_added = read_length(inp)
    ngroups = read_length(inp)
    for _ in range(ngroups):
        name = read_string(inp)
        last = _id(ctx)
        entries_read = read_length(inp) if type_code >= 19 else None
        pel = []
        for _ in range(read_length(inp)):
            rid = _raw_id(inp.read(16))
            pel.append(StreamPending(rid, read_ms_time(inp), read_length(inp)))
        consumers = []
        for _ in range(read_length(inp)):
            cname = read_string(inp)
            seen = read_ms_time(inp)
            active = read_ms_time(inp) if type_code >= 21 else None
            cpel = [_raw_id(inp.read(16)) for _ in range(read_length(inp))]
            consumers.append(StreamConsumer(cname, seen, active, cpel))
        value.groups.append(StreamGroup(name, last, entries_read, pel, consumers))
    yield value, len(pending)
