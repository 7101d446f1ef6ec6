"""Key-by-key snapshots for tests: what a live server holds, and what the RDB reader read,
in one comparable shape: {(db, key): (kind, value, expire_ms, field_expires)}.

Values: string bytes; list list; set frozenset; zset {member: score}; hash {field: value};
stream a dict of its entries, ids, groups, pending entries and consumers.
"""

from __future__ import annotations

from typing import Any

from migrate.endpoint import Endpoint, has_command, raw_command
from migrate.rdb import Entry, StreamValue, read_file

FIELDS_PER_CALL = 10_000

Snapshot = dict[tuple[int, bytes], tuple[str, Any, int | None, dict[bytes, int] | None]]


def _pairs(flat: list | dict) -> dict:
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _sid(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq)


def _stream_from_server(client: Any, key: bytes) -> dict:
    entries = [(_sid(eid), [tuple(fields[i:i + 2]) for i in range(0, len(fields), 2)])
               for eid, fields in raw_command(client, "XRANGE", key, "-", "+")]
    info = _pairs(raw_command(client, "XINFO", "STREAM", key, "FULL", "COUNT", 0))
    groups = []
    for g in info.get(b"groups") or []:
        gd = _pairs(g)
        pel = sorted((_sid(p[0]), p[1], p[2], p[3]) for p in gd[b"pending"])
        consumers = sorted((c[b"name"], c[b"seen-time"], c.get(b"active-time"),
                            tuple(sorted(_sid(p[0]) for p in c[b"pending"])))
                           for c in (_pairs(c) for c in gd[b"consumers"]))
        groups.append((gd[b"name"], _sid(gd[b"last-delivered-id"]), gd.get(b"entries-read"),
                       pel, consumers))
    return {
        "entries": entries,
        "length": info[b"length"],
        "last_id": _sid(info[b"last-generated-id"]),
        "entries_added": info.get(b"entries-added"),
        "max_deleted_id": (_sid(info[b"max-deleted-entry-id"])
                           if b"max-deleted-entry-id" in info else None),
        "groups": sorted(groups),
    }


def _stream_from_reader(v: StreamValue, entries: list, active_time: bool) -> dict:
    groups = []
    for g in v.groups:
        owner = {pid: c.name for c in g.consumers for pid in c.pending}
        pel = sorted((p.id, owner.get(p.id), p.delivery_time_ms, p.delivery_count)
                     for p in g.pending)
        consumers = sorted((c.name, c.seen_time_ms, c.active_time_ms if active_time else None,
                            tuple(sorted(c.pending))) for c in g.consumers)
        groups.append((g.name, g.last_id, g.entries_read, pel, consumers))
    return {
        "entries": [(eid, list(fields)) for eid, fields in entries],
        "length": v.length,
        "last_id": v.last_id,
        "entries_added": v.entries_added,
        "max_deleted_id": v.max_deleted_id,
        "groups": sorted(groups),
    }


def _pel_owner_fix(snapshot_stream: dict) -> dict:
    """XINFO FULL pel rows are (id, consumer, delivery time, count): already in our shape."""
    return snapshot_stream


def server_snapshot(endpoint: Endpoint) -> Snapshot:
    base = endpoint.client()
    out: Snapshot = {}
    keyspace = base.info("keyspace")
    field_ttl = has_command(base, "HPEXPIRETIME")
    for name in keyspace:
        db = int(name[2:])
        c = endpoint.client(db=db)
        for key in c.scan_iter(count=1000):
            kind = c.type(key).decode()
            fe = None
            if kind == "string":
                value: Any = c.get(key)
            elif kind == "list":
                value = c.lrange(key, 0, -1)
            elif kind == "set":
                value = frozenset(c.smembers(key))
            elif kind == "zset":
                value = dict(c.zrange(key, 0, -1, withscores=True))
            elif kind == "hash":
                value = c.hgetall(key)
                if field_ttl:
                    fields = list(value)
                    times = []
                    for at in range(0, len(fields), FIELDS_PER_CALL):  # Dragonfly: <64k args
                        part = fields[at:at + FIELDS_PER_CALL]
                        times += raw_command(c, "HPEXPIRETIME", key, "FIELDS", len(part), *part)
                    fe = {f: t for f, t in zip(fields, times, strict=True) if t > 0} or None
            elif kind == "stream":
                value = _stream_from_server(c, key)
            else:
                value = kind
            pexp = c.pexpiretime(key)
            out[(db, key)] = (kind, value, pexp if pexp > 0 else None, fe)
    return out


def rdb_snapshot(path: str, *, active_time: bool = True, **options: Any) -> Snapshot:
    """Read a file with the reader, joining the chunks of big keys."""
    out: Snapshot = {}
    acc: dict[tuple[int, bytes], list] = {}
    for rec in read_file(path, **options):
        if not isinstance(rec, Entry):
            continue
        k = (rec.db, rec.key)
        acc.setdefault(k, []).append(rec)
        if not rec.final:
            continue
        parts = acc.pop(k)
        fe: dict[bytes, int] = {}
        for p in parts:
            fe.update(p.field_expires or {})
        if rec.kind == "string":
            value: Any = b"".join(p.value for p in parts)
        elif rec.kind == "list":
            value = [x for p in parts for x in p.value]
        elif rec.kind == "set":
            value = frozenset(x for p in parts for x in p.value)
        elif rec.kind in ("zset", "hash"):
            value = {a: b for p in parts for a, b in p.value}
        elif rec.kind == "stream":
            entries = [e for p in parts for e in p.value.entries]
            value = _stream_from_reader(rec.value, entries, active_time)
        else:
            value = rec.value.name
        if rec.empty:
            continue
        out[k] = (rec.kind, value, rec.expire_ms, fe or None)
    return out


def differences(a: Snapshot, b: Snapshot, limit: int = 10) -> list[str]:
    """Human-readable differences (empty when equal)."""
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            out.append(f"{k}: only in {'first' if k in a else 'second'}")
        elif a[k] != b[k]:
            out.append(f"{k}: {str(a[k])[:300]} != {str(b[k])[:300]}")
        if len(out) >= limit:
            break
    return out


def without_consumer_times(snap: Snapshot) -> Snapshot:
    """Streams rebuilt with commands cannot keep a consumer's seen/active time (XCLAIM and
    XGROUP CREATECONSUMER set them to now): compare everything else."""
    out: Snapshot = {}
    for k, (kind, value, exp, fe) in snap.items():
        if kind == "stream":
            value = dict(value)
            value["groups"] = [(n, last, read, pel, [(c[0], c[3]) for c in consumers])
                               for n, last, read, pel, consumers in value["groups"]]
        out[k] = (kind, value, exp, fe)
    return out


def without_active_time(snap: Snapshot) -> Snapshot:
    """Redis 7.0 streams have no consumer active time (RDB stream type 19)."""
    out: Snapshot = {}
    for k, (kind, value, exp, fe) in snap.items():
        if kind == "stream":
            value = dict(value)
            value["groups"] = [(n, last, read, pel, [(c[0], c[1], c[3]) for c in consumers])
                               for n, last, read, pel, consumers in value["groups"]]
        out[k] = (kind, value, exp, fe)
    return out
