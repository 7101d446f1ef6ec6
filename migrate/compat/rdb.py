"""RDB versions: which version each server writes and which versions and types it loads.

Sources: docs/compatibility.md 'RDB versions', 'What each target can load', from
redis src/rdb.h, valkey src/rdb.h, dragonfly src/server/rdb_load.cc, and runs on this
project's lab servers (*seen here*). A new server release is a change to these tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate.serverinfo import ServerIdentity

# (flavor, minimum version) -> RDB version written; the last row whose minimum is <= the
# server's version applies. Source: docs/compatibility.md 'RDB versions'.
WRITES: dict[str, list[tuple[tuple[int, ...], int]]] = {
    "redis": [((2, 6), 6), ((3, 2), 8), ((5, 0), 9), ((7, 0), 10), ((7, 2), 11), ((7, 4), 12),
              ((8, 6), 13), ((8, 8), 14), ((8, 10), 15)],
    "valkey": [((7, 2), 11), ((9, 0), 80), ((9, 2), 81)],
    "dragonfly": [((0, 0), 9)],  # SAVE RDB; its own snapshot format is .dfs
}

# Highest RDB version each server loads in its default (strict) mode.
LOADS_MAX: dict[str, list[tuple[tuple[int, ...], int]]] = {
    "redis": [((2, 6), 6), ((3, 2), 8), ((5, 0), 9), ((7, 0), 10), ((7, 2), 11), ((7, 4), 12),
              ((8, 6), 13), ((8, 8), 14), ((8, 10), 15)],
    "valkey": [((7, 2), 11), ((9, 0), 80), ((9, 2), 81)],
    "dragonfly": [((0, 0), 12)],  # rdb_load.cc: versions 5-12
}

# Object type bytes each target can load (redis src/rdb.h numbering): RDB 10 (Redis 7.0)
# ends at 19 (stream listpacks 2); RDB 11 (Redis 7.2, Valkey) adds 20 (set listpack) and 21
# (stream listpacks 3); Redis 7.4 adds 24/25 (hashes with field TTLs).
_RDB10_TYPES = frozenset(range(0, 8)) | frozenset(range(9, 20))
_RDB11_TYPES = _RDB10_TYPES | {20, 21}
LOADS_TYPES: dict[str, list[tuple[tuple[int, ...], frozenset[int]]]] = {
    "redis": [((7, 0), _RDB10_TYPES), ((7, 2), _RDB11_TYPES), ((7, 4), _RDB11_TYPES | {24, 25})],
    "valkey": [((7, 2), _RDB11_TYPES)],  # Valkey 9's own field-TTL hash is its type 22
    "dragonfly": [((0, 0), _RDB11_TYPES)],  # types 22-25 fail: "Unrecognized rdb object type"
}

SOURCE = "docs/compatibility.md (redis/valkey src/rdb.h, dragonfly rdb_load.cc)"


def _lookup(table: list[tuple[tuple[int, ...], int]], version: tuple[int, ...]) -> int | None:
    found = None
    for minimum, value in table:
        if version >= minimum:
            found = value
    return found


def rdb_version_written(server: ServerIdentity) -> int | None:
    return _lookup(WRITES.get(server.flavor, []), server.version)


def max_rdb_loadable(server: ServerIdentity) -> int | None:
    return _lookup(LOADS_MAX.get(server.flavor, []), server.version)


@dataclass(frozen=True)
class NativeLoad:
    ok: bool
    reason: str


def can_load_rdb_of(target: ServerIdentity, source: ServerIdentity) -> NativeLoad:
    """Whether ``target`` can load an RDB written by ``source`` (the version check only)."""
    written = rdb_version_written(source)
    loadable = max_rdb_loadable(target)
    if written is None or loadable is None:
        return NativeLoad(False, f"unknown RDB version for {source} or {target}")
    # Valkey 9 numbers its own format 80+; it loads Redis RDB <= 11, not 12+ (strict mode;
    # 9.1.2 with rdb-version-check relaxed loads 12 unless a type is unknown, and *seen here*
    # Valkey 8.1.1 still refuses RDB 12 with relaxed).
    if target.flavor == "valkey" and written >= 12 and written < 80:
        return NativeLoad(False, f"{source} writes RDB {written}; {target} loads Redis RDB "
                                 "up to 11 (Can't handle RDB format version)")
    if written > loadable:
        return NativeLoad(False, f"{source} writes RDB {written}; {target} loads up to "
                                 f"{loadable}")
    return NativeLoad(True, f"{source} writes RDB {written}; {target} loads up to {loadable}")
