"""Hashes: hashtable (4), zipmap (9), ziplist (13), listpack (16), and the hashes with field
TTLs: Redis 7.4+ metadata (24) and listpack-ex (25), their pre-GA forms (22, 23 under the
REDIS magic), and Valkey 9's own (22 under the VALKEY magic). Chunks are
``(pairs, field_expires)`` with field_expires {field: unix ms} or None."""

from __future__ import annotations

from migrate.rdb.encodings import (
    parse_listpack,
    parse_ziplist,
    parse_zipmap,
    read_i64_le,
    read_length,
    read_ms_time,
    read_string,
    to_bytes,
)
from migrate.rdb.types.base import Batch, Chunks, ValueContext

EXPIRE_TIME_MAX = 0x0000FFFFFFFFFFFF  # redis ebuckets.h: 48-bit unix ms


def _pairs(flat: list[bytes | int], at: int, ctx: ValueContext) -> list[tuple[bytes, bytes]]:
    if len(flat) % 2:
        raise ctx.inp.error("hash container has an odd number of entries", at)
    items = [v if isinstance(v, bytes) else b"%d" % v for v in flat]
    return list(zip(items[::2], items[1::2], strict=True))


def _emit(pairs: list[tuple[bytes, bytes]], expires: dict[bytes, int] | None,
          ctx: ValueContext) -> Chunks:
    step = ctx.chunk_elements
    if len(pairs) <= step:
        yield (pairs, expires or None), len(pairs)
        return
    for i in range(0, len(pairs), step):
        part = pairs[i:i + step]
        fe = {f: expires[f] for f, _ in part if f in expires} if expires else None
        yield (part, fe or None), len(part)


def read(ctx: ValueContext, type_code: int) -> Chunks:
    inp = ctx.inp
    valkey = ctx.producer.magic == "VALKEY"
    if type_code in (9, 13, 16):
        at = inp.offset
        data = read_string(inp)
        if type_code == 9:
            pairs = parse_zipmap(data, at)
        else:
            flat = parse_ziplist(data, at) if type_code == 13 else parse_listpack(data, at)
            pairs = _pairs(flat, at, ctx)
        _check_dups(pairs, at, ctx)
        yield from _emit(pairs, None, ctx)
        return
    if type_code in (23, 25) and not valkey:  # listpack of (field, value, ttl) triplets
        if type_code == 25:
            read_ms_time(inp)  # the hash's next expiry, a hint
        at = inp.offset
        flat = parse_listpack(read_string(inp), at)
        if len(flat) % 3:
            raise inp.error("listpack-ex hash is not made of (field, value, ttl) triplets", at)
        pairs = []
        expires: dict[bytes, int] = {}
        for i in range(0, len(flat), 3):
            f = to_bytes(flat[i])
            pairs.append((f, to_bytes(flat[i + 1])))
            ttl = flat[i + 2]
            if not isinstance(ttl, int) or ttl < 0 or ttl > EXPIRE_TIME_MAX:
                raise inp.error(f"listpack-ex hash field has an invalid TTL {ttl!r}", at)
            if ttl:
                expires[f] = ttl
        _check_dups(pairs, at, ctx)
        yield from _emit(pairs, expires, ctx)
        return
    batch = Batch(ctx)
    fe: dict[bytes, int] = {}
    if type_code == 4:
        n = read_length(inp)
        for _ in range(n):
            f = read_string(inp)
            v = read_string(inp)
            if batch.add((f, v), len(f) + len(v)):
                chunk = batch.take()
                yield (chunk, None), len(chunk)
    elif type_code == 22 and valkey:  # Valkey 9: (field, value, int64 unix ms or -1)
        n = read_length(inp)
        for _ in range(n):
            f = read_string(inp)
            v = read_string(inp)
            at = inp.offset
            t = read_i64_le(inp)
            if t != -1:
                if t < 0:
                    raise inp.error(f"hash field TTL {t} is invalid", at)
                fe[f] = t
            if batch.add((f, v), len(f) + len(v)):
                chunk = batch.take()
                yield (chunk, fe or None), len(chunk)
                fe = {}
    elif type_code in (22, 24) and not valkey:  # Redis metadata hash: (ttl, field, value)
        min_expire = read_ms_time(inp) if type_code == 24 else 0
        n = read_length(inp)
        for _ in range(n):
            at = inp.offset
            ttl = read_length(inp)
            expire_at = (ttl + min_expire - 1 if ttl else 0) if type_code == 24 else ttl
            if expire_at > EXPIRE_TIME_MAX or expire_at < 0:
                raise inp.error(f"hash field expiry {expire_at} is invalid", at)
            f = read_string(inp)
            v = read_string(inp)
            if expire_at:
                fe[f] = expire_at
            if batch.add((f, v), len(f) + len(v)):
                chunk = batch.take()
                yield (chunk, fe or None), len(chunk)
                fe = {}
    else:
        raise inp.error(f"type {type_code} is not a hash type for {ctx.producer.describe()}")
    chunk = batch.take()
    yield (chunk, fe or None), len(chunk)


def _check_dups(pairs: list[tuple[bytes, bytes]], at: int, ctx: ValueContext) -> None:
    if len({f for f, _ in pairs}) != len(pairs):
        raise ctx.inp.error("hash has duplicate fields", at)
