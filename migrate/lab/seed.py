"""Deterministic, realistic data for lab servers: every type and encoding, TTLs, several
databases, big keys and, where the server has them, hashes with per-field TTLs.

The same ``--seed`` gives the same keys and values (expiry times are relative to now).
Commands are pipelined (see :mod:`migrate.protocol.pipeline`), so 1,000,000 keys take seconds.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import redis

from migrate.endpoint import Endpoint, has_command
from migrate.errors import UsageError
from migrate.protocol.pipeline import PipelineWriter, require_no_errors
from migrate.protocol.resp import Arg

PROFILES = ("mixed", "strings", "big")
DATABASES = (0, 1, 2)  # bulk keys: 90% in db 0, 7% in db 1, 3% in db 2
TTL_RANGE_S = (3600, 7 * 86400)  # long enough never to expire during a test or demo

Command = tuple[Arg, ...]


@dataclass
class SeedReport:
    keys: int = 0
    by_db: Counter[int] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    by_encoding: Counter[tuple[str, str]] = field(default_factory=Counter)
    with_ttl: int = 0
    field_ttl_hashes: int = 0
    commands: int = 0


def supports_field_ttl(client: redis.Redis) -> bool:
    """HPEXPIRE exists on Redis 7.4+ and Valkey 9+."""
    return has_command(client, "HPEXPIRE")


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(_VOCAB, k=n))


_VOCAB = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "redis", "valkey", "dragonfly",
    "migrate", "replica", "primary", "shard", "slot", "stream",
)


class _Plan:
    """Emits (db, key, kind, commands) for each key of a profile."""

    def __init__(self, rng: random.Random, field_ttl: bool):
        self.rng = rng
        self.field_ttl = field_ttl

    # --- showcase keys: one of every type and encoding, always present -----------------
    def showcase(self) -> Iterator[tuple[int, bytes, str, list[Command]]]:
        r = self.rng
        yield 0, b"seed:string:int", "string", [("SET", "seed:string:int", 1234567)]
        yield 0, b"seed:string:embstr", "string", [("SET", "seed:string:embstr", "short value")]
        yield 0, b"seed:string:raw", "string", [("SET", "seed:string:raw", _words(r, 40))]
        big_text = ("kvmigrate compressible text block " * 4000).encode()
        yield 0, b"seed:string:compressible", "string", [
            ("SET", "seed:string:compressible", big_text)]
        yield 0, b"seed:string:binary", "string", [
            ("SET", "seed:string:binary", bytes(range(256)) * 4)]
        yield 0, b"seed:list:small", "list", [
            ("RPUSH", "seed:list:small", *[f"item-{i}" for i in range(10)])]
        yield 0, b"seed:list:large", "list", [
            ("RPUSH", "seed:list:large", *[f"element-{i}-{_words(r, 3)}" for i in range(1000)])]
        yield 0, b"seed:set:intset", "set", [("SADD", "seed:set:intset", *range(1, 60, 3))]
        yield 0, b"seed:set:small", "set", [
            ("SADD", "seed:set:small", *[f"member-{i}" for i in range(12)])]
        yield 0, b"seed:set:large", "set", [
            ("SADD", "seed:set:large", *[f"member-{i}" for i in range(600)])]
        yield 0, b"seed:zset:small", "zset", [
            ("ZADD", "seed:zset:small", *_flat((i * 1.5, f"player-{i}") for i in range(10)))]
        yield 0, b"seed:zset:large", "zset", [
            ("ZADD", "seed:zset:large", *_flat((i * 0.25, f"player-{i}") for i in range(600)))]
        yield 0, b"seed:hash:small", "hash", [
            ("HSET", "seed:hash:small", *_flat((f"field-{i}", f"value-{i}") for i in range(8)))]
        yield 0, b"seed:hash:large", "hash", [
            ("HSET", "seed:hash:large", *_flat((f"field-{i}", _words(r, 2)) for i in range(600)))]
        yield 0, b"seed:stream", "stream", self._stream("seed:stream", 60)
        yield 0, b"seed:string:ttl", "string+ttl", [("SET", "seed:string:ttl", "expiring",
                                                 "EX", TTL_RANGE_S[1])]
        yield 1, b"seed:db1:hash", "hash", [("HSET", "seed:db1:hash", "a", 1, "b", 2)]
        yield 2, b"seed:db2:string", "string", [("SET", "seed:db2:string", "in database 2")]
        if self.field_ttl:
            cmds: list[Command] = [("HSET", "seed:hash:field-ttl",
                                    *_flat((f"f{i}", f"v{i}") for i in range(6)))]
            cmds.append(("HPEXPIRE", "seed:hash:field-ttl", TTL_RANGE_S[1] * 1000,
                         "FIELDS", 3, "f0", "f1", "f2"))
            yield 0, b"seed:hash:field-ttl", "hash+field-ttl", cmds

    def _stream(self, key: str, entries: int) -> list[Command]:
        cmds: list[Command] = [("XADD", key, f"{1700000000000 + i}-0", "sensor", f"s{i % 7}",
                                "reading", i * 3) for i in range(entries)]
        cmds += [("XGROUP", "CREATE", key, "billing", "0"),
                 ("XGROUP", "CREATE", key, "audit", "0"),
                 ("XREADGROUP", "GROUP", "billing", "worker-1", "COUNT", 5, "STREAMS", key, ">"),
                 ("XREADGROUP", "GROUP", "billing", "worker-2", "COUNT", 3, "STREAMS", key, ">"),
                 ("XACK", key, "billing", f"{1700000000000}-0"),
                 ("XREADGROUP", "GROUP", "audit", "auditor", "COUNT", 2, "STREAMS", key, ">")]
        return cmds

    def big(self, scale: int) -> Iterator[tuple[int, bytes, str, list[Command]]]:
        """A few big keys: multi-MB string, collections of tens of thousands of elements."""
        n = 20000 * scale
        yield 0, b"seed:big:string", "string", [
            ("SET", "seed:big:string", ("0123456789abcdef" * 65536 * scale).encode())]
        yield 0, b"seed:big:list", "list", [("RPUSH", "seed:big:list", *chunk)
                                            for chunk in _chunks(f"e{i}" for i in range(n))]
        yield 0, b"seed:big:hash", "hash", [
            ("HSET", "seed:big:hash", *_flat(chunk)) for chunk in
            _chunks((f"f{i}", f"value-{i}") for i in range(n))]
        yield 0, b"seed:big:zset", "zset", [
            ("ZADD", "seed:big:zset", *_flat(chunk)) for chunk in
            _chunks((i, f"m{i}") for i in range(n))]
        yield 0, b"seed:big:set", "set", [("SADD", "seed:big:set", *chunk)
                                          for chunk in _chunks(f"s{i}" for i in range(n))]

    # --- bulk keys ---------------------------------------------------------------------
    def bulk_mixed(self, i: int) -> tuple[int, bytes, str, list[Command]]:
        r = self.rng
        roll = r.random()
        db = 0 if roll < 0.90 else (1 if roll < 0.97 else 2)
        kind = r.choices(("string", "hash", "list", "set", "zset", "stream"),
                         weights=(50, 16, 12, 10, 10, 2))[0]
        large = r.random() < 0.005  # a few collections beyond the compact encodings' limits
        n = r.randint(520, 700) if large else r.randint(2, 12)
        key = f"{kind}:{i:08d}"
        cmds: list[Command]
        if kind == "string":
            style = r.random()
            if style < 0.3:
                value: Arg = r.randint(0, 10**12)
            elif style < 0.8:
                value = f"user-{i}-{_words(r, 2)}"
            else:
                value = _words(r, 12)
            cmds = [("SET", key, value)]
        elif kind == "hash":
            cmds = [("HSET", key, *_flat((f"f{j}", _words(r, 1)) for j in range(n)))]
        elif kind == "list":
            cmds = [("RPUSH", key, *[f"{_words(r, 1)}-{j}" for j in range(n)])]
        elif kind == "set":
            if r.random() < 0.4:
                cmds = [("SADD", key, *r.sample(range(10**6), n))]
            else:
                cmds = [("SADD", key, *[f"m{j}-{_words(r, 1)}" for j in range(n)])]
        elif kind == "zset":
            cmds = [("ZADD", key, *_flat((round(r.random() * 1000, 3), f"m{j}")
                                         for j in range(n)))]
        else:
            cmds = [("XADD", key, f"{1700000000000 + i}-{j}", "event", _words(r, 1), "n", j)
                    for j in range(3)]
            if r.random() < 0.5:
                cmds += [("XGROUP", "CREATE", key, "g", "0"),
                         ("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", key, ">")]
        if r.random() < 0.10:
            cmds.append(("EXPIRE", key, r.randint(*TTL_RANGE_S)))
            kind += "+ttl"
        return db, key.encode(), kind, cmds

    def bulk_string(self, i: int) -> tuple[int, bytes, str, list[Command]]:
        r = self.rng
        key = f"string:{i:08d}"
        style = r.random()
        value: Arg = r.randint(0, 10**12) if style < 0.3 else f"value-{i}-{_words(r, 3)}"
        cmds: list[Command] = [("SET", key, value)]
        kind = "string"
        if r.random() < 0.10:
            cmds = [("SET", key, value, "EX", r.randint(*TTL_RANGE_S))]
            kind = "string+ttl"
        return 0, key.encode(), kind, cmds


def _flat(pairs: Iterator[tuple[Arg, Arg]] | list[tuple[Arg, Arg]]) -> list[Arg]:
    out: list[Arg] = []
    for a, b in pairs:
        out.append(a)
        out.append(b)
    return out


def _chunks(items: Iterator, size: int = 1000) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed(endpoint: Endpoint, *, keys: int = 10000, profile: str = "mixed", seed_value: int = 1,
         progress: Callable[[int], None] | None = None) -> SeedReport:
    """Fill a server; ``keys`` counts every key written, in all databases."""
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    if keys < 0:
        raise UsageError("--keys must be 0 or more")
    client = endpoint.client()
    plan = _Plan(random.Random(seed_value), supports_field_ttl(client))
    report = SeedReport()
    writer = PipelineWriter(endpoint, db=0)
    current_db = 0
    try:
        def emit(db: int, kind: str, cmds: list[Command]) -> None:
            nonlocal current_db
            if db != current_db:
                writer.send("SELECT", db)
                current_db = db
            for cmd in cmds:
                writer.send(*cmd)
            report.keys += 1
            report.by_db[db] += 1
            report.commands += len(cmds)
            base = kind.split("+")[0]
            report.by_type[base] += 1
            if "+ttl" in kind:
                report.with_ttl += 1
            if "field-ttl" in kind:
                report.field_ttl_hashes += 1

        fixed: list[tuple[int, bytes, str, list[Command]]] = []
        if profile == "mixed" and keys > 0:
            fixed = list(plan.showcase())
            if keys >= 1000:
                fixed += list(plan.big(1))
        elif profile == "big":
            fixed = list(plan.big(4))
        for db, _key, kind, cmds in fixed[:keys]:
            emit(db, kind, cmds)
        bulk: Callable[[int], tuple[int, bytes, str, list[Command]]] = (
            plan.bulk_string if profile == "strings" else plan.bulk_mixed)
        if profile == "big":
            bulk = _big_bulk(plan)
        for i in range(keys - min(len(fixed), keys)):
            db, _key, kind, cmds = bulk(i)
            emit(db, kind, cmds)
            if progress and i % 10000 == 0:
                progress(report.keys)
        require_no_errors(writer.flush(), f"seeding {endpoint.display()}")
    finally:
        writer.close()
    if progress:
        progress(report.keys)
    return report


def _big_bulk(plan: _Plan) -> Callable[[int], tuple[int, bytes, str, list[Command]]]:
    def bulk(i: int) -> tuple[int, bytes, str, list[Command]]:
        r = plan.rng
        kind = r.choice(("hash", "list", "zset", "set"))
        key = f"big:{kind}:{i:06d}"
        n = r.randint(1000, 5000)
        if kind == "hash":
            cmds = [("HSET", key, *_flat((f"f{j}", f"v{j}") for j in range(n)))]
        elif kind == "list":
            cmds = [("RPUSH", key, *[f"e{j}" for j in range(n)])]
        elif kind == "zset":
            cmds = [("ZADD", key, *_flat((j, f"m{j}") for j in range(n)))]
        else:
            cmds = [("SADD", key, *[f"s{j}" for j in range(n)])]
        return 0, key.encode(), kind, cmds
    return bulk


CENSUS_SCRIPT = """
local res = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local out = {res[1]}
for _, k in ipairs(res[2]) do
  local t = redis.call('TYPE', k)['ok']
  local e = redis.call('OBJECT', 'ENCODING', k)
  out[#out + 1] = t .. ':' .. e
end
return out
"""


def census(endpoint: Endpoint, dbs: list[int] | None = None) -> Counter[tuple[str, str]]:
    """Count keys by (type, encoding) in each database, server side, in bounded batches."""
    counts: Counter[tuple[str, str]] = Counter()
    base = endpoint.client(decode_responses=True)
    if dbs is None:
        dbs = [int(name[2:]) for name in base.info("keyspace")]
    for db in dbs:
        client = endpoint.client(db=db, decode_responses=True)
        sha = client.script_load(CENSUS_SCRIPT)
        cursor = "0"
        while True:
            reply = client.evalsha(sha, 0, cursor, 2000)
            cursor = reply[0]
            for item in reply[1:]:
                t, _, e = item.partition(":")
                counts[(t, e)] += 1
            if cursor == "0":
                break
    return counts
