"""Typed copy: read a key with ordinary commands and write it back with ordinary commands.

Used when the target cannot RESTORE the source's DUMP payloads (RDB version gap, e.g. Redis 8
to Valkey), and for hash field TTLs. Collections are read and written in chunks of ``CHUNK``
elements (strings in windows of ``STRING_WINDOW`` bytes), so a big key never sits whole in
memory. What cannot be expressed on the target is
counted in :class:`TypedStats` and reported (field TTLs on a target without HPEXPIRE, module
types).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from migrate.protocol.rawconn import RawConn, Reply, is_error, pairs
from migrate.protocol.resp import Arg

CHUNK = 1000
STRING_WINDOW = 1 << 20  # bytes of a string read and written per command
Command = tuple[Arg, ...]


@dataclass
class TypedStats:
    field_ttls_dropped: int = 0
    # streams whose entries-added / max-deleted-id the target cannot set (Dragonfly)
    stream_counters_dropped: int = 0
    skipped_types: dict[str, int] = field(default_factory=dict)
    skipped_keys: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class TypedCaps:
    source_expiretime: bool  # PEXPIRETIME on the source
    source_field_ttl: bool  # HPEXPIRETIME on the source
    target_field_ttl: bool  # HPEXPIREAT on the target
    # XSETID ENTRIESADDED/MAXDELETEDID, XGROUP CREATE ENTRIESREAD (not Dragonfly 1.40.1,
    # which needs XGROUP SETID ... ENTRIESREAD instead: migrate/apply/target.py)
    stream_metadata: bool = True
    # HEXPIRE in seconds where the target has no HPEXPIREAT (Dragonfly 1.40.1)
    target_field_ttl_seconds: bool = False


PEL_EXACT = 1000  # pending entries per group copied with their exact delivery time
# the commands that copy one key of one type
Writer = Callable[[RawConn, bytes, TypedCaps, TypedStats], Iterator[Command]]


def key_commands(src: RawConn, key: bytes, caps: TypedCaps, stats: TypedStats,
                 now_ms: int) -> Iterator[Command]:
    """The commands that recreate ``key`` (already selected db) on the target; a key gone
    from the source yields a DEL."""
    kind, ttl = src.call_many([("TYPE", key), ("PEXPIRETIME" if caps.source_expiretime
                                                else "PTTL", key)])
    kind = kind if isinstance(kind, bytes) else b"none"
    if kind == b"none":
        yield ("DEL", key)
        return
    writer = _WRITERS.get(kind)
    if writer is None:
        stats.skipped_types[kind.decode()] = stats.skipped_types.get(kind.decode(), 0) + 1
        if len(stats.skipped_keys) < 100:
            stats.skipped_keys.append(key)
        return
    yield ("DEL", key)
    yield from writer(src, key, caps, stats)
    if isinstance(ttl, int) and ttl >= 0:
        yield ("PEXPIREAT", key, ttl if caps.source_expiretime else now_ms + ttl)


def _string(src: RawConn, key: bytes, caps: TypedCaps, stats: TypedStats) -> Iterator[Command]:
    """SET of the first :data:`STRING_WINDOW` bytes, then APPEND of each further window: a
    big string never sits whole in memory."""
    start = 0
    while True:
        value = src.call("GETRANGE", key, start, start + STRING_WINDOW - 1)
        if not isinstance(value, bytes):
            return
        if start == 0 or value:
            yield ("SET" if start == 0 else "APPEND", key, value)
        if len(value) < STRING_WINDOW:
            return
        start += STRING_WINDOW


def _ranged(command: str, write: str, scores: bool) -> Writer:
    def copy(src: RawConn, key: bytes, caps: TypedCaps, stats: TypedStats) \
            -> Iterator[Command]:
        start = 0
        while True:
            extra = ("WITHSCORES",) if scores else ()
            items = src.call(command, key, start, start + CHUNK - 1, *extra)
            if not items or is_error(items):
                return
            if scores:  # member, score -> score, member
                flat: list[Arg] = []
                for i in range(0, len(items), 2):
                    flat += [items[i + 1], items[i]]
                yield (write, key, *flat)
            else:
                yield (write, key, *items)
            if len(items) < CHUNK * (2 if scores else 1):
                return
            start += CHUNK
    return copy


def _set(src: RawConn, key: bytes, caps: TypedCaps, stats: TypedStats) -> Iterator[Command]:
    cursor: Reply = b"0"
    while True:
        cursor, members = src.call("SSCAN", key, cursor, "COUNT", CHUNK)
        if members:
            yield ("SADD", key, *members)
        if cursor == b"0":
            return


def _hash(src: RawConn, key: bytes, caps: TypedCaps, stats: TypedStats) -> Iterator[Command]:
    cursor: Reply = b"0"
    while True:
        cursor, flat = src.call("HSCAN", key, cursor, "COUNT", CHUNK)
        if flat:
            yield ("HSET", key, *flat)
            if caps.source_field_ttl:
                yield from _field_ttls(src, key, flat[0::2], caps, stats)
        if cursor == b"0":
            return


def _field_ttls(src: RawConn, key: bytes, fields: list[bytes], caps: TypedCaps,
                stats: TypedStats) -> Iterator[Command]:
    times = src.call("HPEXPIRETIME", key, "FIELDS", len(fields), *fields)
    if is_error(times):
        return
    by_time: dict[int, list[bytes]] = {}
    for name, at in zip(fields, times, strict=True):
        if isinstance(at, int) and at > 0:
            by_time.setdefault(at, []).append(name)
    if not by_time:
        return
    if caps.target_field_ttl:
        for at, names in by_time.items():
            yield ("HPEXPIREAT", key, at, "FIELDS", len(names), *names)
    elif caps.target_field_ttl_seconds:  # whole seconds from now, rounded up
        now_ms = time.time() * 1000
        for at, names in by_time.items():
            yield ("HEXPIRE", key, max(1, math.ceil((at - now_ms) / 1000)), "FIELDS",
                   len(names), *names)
    else:
        stats.field_ttls_dropped += sum(len(v) for v in by_time.values())


def _stream(src: RawConn, key: bytes, caps: TypedCaps, stats: TypedStats) \
        -> Iterator[Command]:
    info = pairs(src.call("XINFO", "STREAM", key))
    start: bytes = b"-"
    copied = 0
    while True:
        entries = src.call("XRANGE", key, start, "+", "COUNT", CHUNK)
        for entry_id, fields in entries:
            yield ("XADD", key, entry_id, *fields)
        copied += len(entries)
        if len(entries) < CHUNK:
            break
        start = b"(" + entries[-1][0]
    last_id = info.get(b"last-generated-id", b"0-1")
    if copied == 0:  # an empty stream still has its last ID: create it trimmed to nothing
        yield ("XADD", key, "MAXLEN", 0, last_id, "x", "y")
    setid: list[Arg] = ["XSETID", key, last_id]
    if b"entries-added" in info and caps.stream_metadata:
        setid += ["ENTRIESADDED", info[b"entries-added"], "MAXDELETEDID",
                  info.get(b"max-deleted-entry-id", b"0-0")]
    elif b"entries-added" in info and (
            int(info[b"entries-added"]) != int(info.get(b"length", 0))
            or info.get(b"max-deleted-entry-id", b"0-0") != b"0-0"):
        stats.stream_counters_dropped += 1  # entries were deleted: the counters differ
    yield tuple(setid)
    delivered = _delivery_times(src, key)
    for group in (pairs(g) for g in src.call("XINFO", "GROUPS", key)):
        name = group[b"name"]
        create: list[Arg] = ["XGROUP", "CREATE", key, name, group[b"last-delivered-id"]]
        read = group.get(b"entries-read")
        if read is not None and caps.stream_metadata:
            create += ["ENTRIESREAD", read]
        yield tuple(create)
        if read is not None and not caps.stream_metadata:
            yield ("XGROUP", "SETID", key, name, group[b"last-delivered-id"], "ENTRIESREAD", read)
        for consumer in (pairs(c) for c in src.call("XINFO", "CONSUMERS", key, name)):
            yield ("XGROUP", "CREATECONSUMER", key, name, consumer[b"name"])
        pstart: bytes = b"-"
        while True:
            pending = src.call("XPENDING", key, name, pstart, "+", CHUNK)
            for entry_id, consumer, idle, deliveries in pending:
                # the delivery time as the source has it where XINFO FULL listed it; else
                # from the idle time (off by the time between the two reads)
                at = delivered.get((name, entry_id))
                when: tuple[Arg, ...] = ("TIME", at) if at is not None else ("IDLE", idle)
                yield ("XCLAIM", key, name, consumer, 0, entry_id, *when, "RETRYCOUNT",
                       deliveries, "FORCE", "JUSTID")
            if len(pending) < CHUNK:
                break
            pstart = b"(" + pending[-1][0]


def _delivery_times(src: RawConn, key: bytes) -> dict[tuple[bytes, bytes], int]:
    """{(group, entry id): delivery time in ms} of the first PEL_EXACT pending entries of
    each group, from ``XINFO STREAM key FULL``."""
    full = src.call("XINFO", "STREAM", key, "FULL", "COUNT", PEL_EXACT)
    if is_error(full):
        return {}
    out: dict[tuple[bytes, bytes], int] = {}
    for group in (pairs(g) for g in pairs(full).get(b"groups") or []):
        for entry_id, _consumer, at, _count in group.get(b"pending") or []:
            out[(group[b"name"], entry_id)] = int(at)
    return out


_WRITERS: dict[bytes, Writer] = {
    b"string": _string,
    b"list": _ranged("LRANGE", "RPUSH", scores=False),
    b"zset": _ranged("ZRANGE", "ZADD", scores=True),
    b"set": _set,
    b"hash": _hash,
    b"stream": _stream,
}
