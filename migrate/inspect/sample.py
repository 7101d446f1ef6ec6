"""A bounded key sample: SCAN (never KEYS) per database, then pipelined TYPE, OBJECT
ENCODING, MEMORY USAGE and PTTL per key; lengths of the heavy keys; per-field TTLs of
hashes where the server has them.

At most ``limit`` keys are looked at in total, shared between databases in proportion to
their size, so time and load stay bounded on a large source.
"""

from __future__ import annotations

from typing import Any

from migrate.errors import KvmError
from migrate.inspect.facts import KeyRecord, KeySample, SourceFacts
from migrate.inspect.probe import Probe, text
from migrate.serverinfo import ServerIdentity

BATCH = 1000
HEAVY_BYTES = 256 * 1024  # keys at least this big get their length measured and are kept
KEEP_BIG = 50
FIELDS_PROBED = 16  # hash fields whose TTL is probed per hashtable-encoded hash
LENGTH = {"string": "STRLEN", "list": "LLEN", "set": "SCARD", "zset": "ZCARD",
          "hash": "HLEN", "stream": "XLEN"}


def supports_field_ttl(identity: ServerIdentity) -> bool:
    return (identity.flavor == "redis" and identity.at_least(7, 4)) or \
        (identity.flavor == "valkey" and identity.at_least(9, 0))


def budgets(keyspace: dict[int, dict[str, int]], limit: int) -> dict[int, int]:
    """Split ``limit`` between databases in proportion to their key counts (>= 1 each)."""
    total = sum(d.get("keys", 0) for d in keyspace.values())
    if limit <= 0:
        return {}
    if total <= limit:
        return {db: d.get("keys", 0) for db, d in keyspace.items() if d.get("keys", 0)}
    shares = {db: max(1, limit * d.get("keys", 0) // total) for db, d in keyspace.items()
              if d.get("keys", 0)}
    largest = sorted(shares, key=lambda db: keyspace[db].get("keys", 0), reverse=True)
    for i in range(max(0, limit - sum(shares.values()))):
        shares[largest[i % len(largest)]] += 1
    return shares


def sample_keys(probe: Probe, facts: SourceFacts, identity: ServerIdentity, *,
                limit: int) -> KeySample:
    result = KeySample(limit=limit)
    field_ttl = supports_field_ttl(identity)
    result.field_ttl_checked = field_ttl
    for db, budget in sorted(budgets(facts.keyspace, limit).items()):
        keys = _scan(probe, db, budget)
        subexpiry = facts.keyspace.get(db, {}).get("subexpiry")
        probe_fields = field_ttl and subexpiry != 0  # Redis 7.4+ counts them in INFO
        for start in range(0, len(keys), BATCH):
            _describe(probe, db, keys[start:start + BATCH], result, probe_fields)
    result.complete = result.sampled >= facts.total_keys
    result.big_keys.sort(key=lambda k: k.memory, reverse=True)
    del result.big_keys[KEEP_BIG:]
    return result


def _scan(probe: Probe, db: int, budget: int) -> list[bytes]:
    keys: list[bytes] = []
    seen: set[bytes] = set()
    cursor = b"0"
    while len(keys) < budget:
        reply = probe.batch([("SCAN", cursor, "COUNT", min(BATCH, max(budget, 10)))], db=db)[0]
        if not isinstance(reply, list | tuple) or len(reply) != 2:
            raise KvmError(f"{probe.endpoint.display()} refused SCAN on database {db}",
                           "preflight needs a user allowed to run SCAN (read-only)")
        cursor, batch = reply[0], reply[1]
        for key in batch:
            if key not in seen and len(keys) < budget:
                seen.add(key)
                keys.append(key)
        if text(cursor) == "0":
            break
    return keys


def _describe(probe: Probe, db: int, keys: list[bytes], result: KeySample,
              probe_fields: bool) -> None:
    commands: list[tuple[Any, ...]] = []
    for key in keys:
        commands += [("TYPE", key), ("OBJECT", "ENCODING", key), ("MEMORY", "USAGE", key),
                     ("PTTL", key)]
    replies = probe.batch(commands, db=db)
    heavy: list[KeyRecord] = []
    hashes: list[tuple[bytes, str]] = []
    for i, key in enumerate(keys):
        kind, encoding, memory, pttl = replies[4 * i:4 * i + 4]
        kind = text(kind)
        if not kind or kind == "none":  # expired or deleted since SCAN
            continue
        encoding = text(encoding)
        memory = int(memory or 0)
        result.sampled += 1
        result.types[kind] = result.types.get(kind, 0) + 1
        label = f"{kind}/{encoding}"
        result.encodings[label] = result.encodings.get(label, 0) + 1
        result.memory_sampled += memory
        if pttl is not None and int(pttl) >= 0:
            result.with_ttl += 1
        if memory >= HEAVY_BYTES:
            heavy.append(KeyRecord(text(key), db, kind, encoding, memory))
        if kind == "hash" and probe_fields:
            if encoding == "listpackex":  # a listpack hash with field TTLs (Redis 7.4+)
                result.field_ttl_keys.append(text(key))
            elif encoding == "hashtable":
                hashes.append((key, encoding))
    _lengths(probe, db, heavy)
    result.big_keys.extend(heavy)
    _field_ttls(probe, db, [k for k, _ in hashes], result)


def _lengths(probe: Probe, db: int, heavy: list[KeyRecord]) -> None:
    measurable = [r for r in heavy if r.type in LENGTH]
    replies = probe.batch([(LENGTH[r.type], r.key) for r in measurable], db=db)
    for record, length in zip(measurable, replies, strict=True):
        record.length = int(length or 0)


def _field_ttls(probe: Probe, db: int, keys: list[bytes], result: KeySample) -> None:
    """For hashtable-encoded hashes: do any of a few random fields have a TTL?"""
    if not keys:
        return
    fields = probe.batch([("HRANDFIELD", key, FIELDS_PROBED) for key in keys], db=db)
    asks = [(key, names) for key, names in zip(keys, fields, strict=True) if names]
    ttls = probe.batch([("HPTTL", key, "FIELDS", len(names), *names) for key, names in asks],
                       db=db)
    for (key, _), reply in zip(asks, ttls, strict=True):
        if reply and any(int(t) >= 0 for t in reply if t is not None):
            result.field_ttl_keys.append(text(key))
