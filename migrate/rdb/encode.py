"""Serialization, the inverse of :mod:`migrate.rdb.encodings`: lengths, strings, listpacks,
and the values of every type in the forms that every server version loads (used to write
down-versioned RDB files)."""

from __future__ import annotations

import struct

from migrate.rdb.records import StreamId, StreamValue

_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")


def length(n: int) -> bytes:
    if n < 64:
        return bytes((n,))
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def string(s: bytes) -> bytes:
    return length(len(s)) + s


def ms_time(ms: int) -> bytes:
    return _I64.pack(ms)


def binary_double(v: float) -> bytes:
    return _F64.pack(v)


def _backlen(n: int) -> bytes:
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128,
                      (n & 127) | 128))
    return bytes((n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128,
                  ((n >> 7) & 127) | 128, (n & 127) | 128))


def _lp_entry(item: bytes | int) -> bytes:
    if isinstance(item, int):
        v = item
        if 0 <= v <= 127:
            enc = bytes((v,))
        elif -4096 <= v <= 4095:
            u = v & 0x1FFF
            enc = bytes((0xC0 | (u >> 8), u & 0xFF))
        elif -(1 << 15) <= v < (1 << 15):
            enc = b"\xf1" + v.to_bytes(2, "little", signed=True)
        elif -(1 << 23) <= v < (1 << 23):
            enc = b"\xf2" + v.to_bytes(3, "little", signed=True)
        elif -(1 << 31) <= v < (1 << 31):
            enc = b"\xf3" + v.to_bytes(4, "little", signed=True)
        else:
            enc = b"\xf4" + v.to_bytes(8, "little", signed=True)
    else:
        n = len(item)
        if n < 64:
            enc = bytes((0x80 | n,)) + item
        elif n < 4096:
            enc = bytes((0xE0 | (n >> 8), n & 0xFF)) + item
        else:
            enc = b"\xf0" + n.to_bytes(4, "little") + item
    return enc + _backlen(len(enc))


def listpack(items: list[bytes | int]) -> bytes:
    body = b"".join(_lp_entry(i) for i in items)
    total = 6 + len(body) + 1
    return total.to_bytes(4, "little") + min(len(items), 65535).to_bytes(2, "little") + \
        body + b"\xff"


def _raw_id(i: StreamId) -> bytes:
    return i[0].to_bytes(8, "big") + i[1].to_bytes(8, "big")


def stream_nodes(entries: list[tuple[StreamId, list[tuple[bytes, bytes]]]],
                 per_node: int = 100) -> list[bytes]:
    """Serialized (node key, listpack) pairs for stream entries in ID order."""
    out = []
    for start in range(0, len(entries), per_node):
        node = entries[start:start + per_node]
        master_id = node[0][0]
        master_fields = [f for f, _ in node[0][1]]
        items: list[bytes | int] = [len(node), 0, len(master_fields), *master_fields, 0]
        for eid, fields in node:
            ms_diff, seq_diff = eid[0] - master_id[0], eid[1] - master_id[1]
            if [f for f, _ in fields] == master_fields:
                items += [2, ms_diff, seq_diff, *[v for _, v in fields], 3 + len(fields)]
            else:
                flat: list[bytes | int] = [x for pair in fields for x in pair]
                items += [0, ms_diff, seq_diff, len(fields), *flat, 4 + len(flat)]
        out.append(string(_raw_id(master_id)) + string(listpack(items)))
    return out


def stream_tail(v: StreamValue, type_code: int, first_entry: StreamId | None) -> bytes:
    """Everything after the nodes: length, ids, groups, pending entries, consumers."""
    parts = [length(v.length), length(v.last_id[0]), length(v.last_id[1])]
    if type_code >= 19:
        first = v.first_id or first_entry or (0, 0)
        deleted = v.max_deleted_id or (0, 0)
        added = v.entries_added if v.entries_added is not None else v.length
        parts += [length(first[0]), length(first[1]), length(deleted[0]), length(deleted[1]),
                  length(added)]
    parts.append(length(len(v.groups)))
    for g in v.groups:
        parts += [string(g.name), length(g.last_id[0]), length(g.last_id[1])]
        if type_code >= 19:
            parts.append(length(g.entries_read if g.entries_read is not None
                                else (1 << 64) - 1))
        parts.append(length(len(g.pending)))
        for p in g.pending:
            parts += [_raw_id(p.id), ms_time(p.delivery_time_ms), length(p.delivery_count)]
        parts.append(length(len(g.consumers)))
        for c in g.consumers:
            parts += [string(c.name), ms_time(c.seen_time_ms)]
            if type_code >= 21:
                parts.append(ms_time(c.active_time_ms if c.active_time_ms is not None
                                     else c.seen_time_ms))
            parts.append(length(len(c.pending)))
            parts += [_raw_id(i) for i in c.pending]
    return b"".join(parts)
