"""Key-by-key comparison of a source and a real Dragonfly target, with Dragonfly's known,
named differences applied and nothing else tolerated:

* HyperLogLogs compare by their registers (Dragonfly re-encodes them: migrate/verify/hll.py);
* a stream consumer's seen/active time is when each server saw it (typed copies set them to
  now), so consumers compare by name and pending entries;
* a consumer group whose entries-read the source does not know (nil: Redis 7.0 after reads
  past deleted entries) may get Dragonfly's own estimate when it loads the stream;
* a key's millisecond deadline may be 1 ms earlier on Dragonfly (docs/compatibility.md
  'Dragonfly as a target');
* hash field TTLs are written with HEXPIRE in whole seconds and Dragonfly keeps a field's
  deadline in whole seconds (seen on 1.40.1: source ...435334 ms, target ...435000 ms; another
  run ...114689 and ...115000): each target field deadline must be less than 1 s from the
  source's (the rule kvmigrate names in its `rdb.field-ttl` finding).
"""

from __future__ import annotations

from typing import Any

from migrate.endpoint import Endpoint
from migrate.verify.hll import registers
from tests.rdb.snapshot import Snapshot, server_snapshot

FIELD_TTL_ROUNDING_MS = 1000


def _normalized(snapshot: Snapshot, unknown_entries_read: frozenset[tuple[Any, ...]] = frozenset()
                ) -> dict[tuple[int, bytes], tuple[Any, ...]]:
    out = {}
    for k, (kind, value, expire, fe) in snapshot.items():
        if kind == "string" and (regs := registers(value)) is not None:
            value = ("hyperloglog", regs)
        if kind == "stream":
            value = {**value, "groups": [
                (g[0], g[1], None if (*k, g[0]) in unknown_entries_read else g[2], g[3],
                 [(c[0], c[3]) for c in g[4]]) for g in value["groups"]]}
        out[k] = (kind, value, expire, fe)
    return out


def _field_ttls_match(source: dict[bytes, int] | None, target: dict[bytes, int] | None) -> bool:
    if source is None or target is None:
        return source == target
    return source.keys() == target.keys() and all(
        abs(target[f] - source[f]) < FIELD_TTL_ROUNDING_MS for f in source)


def _same(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> bool:
    if a is None or b is None:
        return a == b
    if a[:2] != b[:2] or not _field_ttls_match(a[3], b[3]):
        return False
    if a[2] is None or b[2] is None:
        return a[2] == b[2]
    return 0 <= a[2] - b[2] <= 1


def dragonfly_differences(source: Endpoint, target: Endpoint,
                          ignore: frozenset[tuple[int, bytes]] = frozenset()) -> list[str]:
    """Every key that differs beyond the named rules above, in words (empty: equal)."""
    snap = server_snapshot(source)
    unknown = frozenset((*k, g[0]) for k, (kind, value, _, _) in snap.items()
                        if kind == "stream" for g in value["groups"] if g[2] is None)
    a = _normalized(snap)
    b = _normalized(server_snapshot(target), unknown)
    return [f"{k}: source {a.get(k)!r:.300} target {b.get(k)!r:.300}"
            for k in sorted(set(a) | set(b)) if k not in ignore and not _same(a.get(k), b.get(k))]
