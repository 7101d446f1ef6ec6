"""What a target server can take: which value encodings it restores from a DUMP payload,
which RDB version its payload footer must carry, and how it sets hash field TTLs.

Facts: docs/compatibility.md ("RDB versions", "What each target can load", "Hash
field TTLs") via :mod:`migrate.compat.rdb`; type numbers from redis/valkey src/rdb.h.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from migrate.compat.rdb import max_rdb_loadable
from migrate.compat.versions import SUPPORTED, default_version
from migrate.errors import UsageError
from migrate.serverinfo import ServerIdentity, parse_version

# The version assumed for ``--to FLAVOR`` without ``--target-version``: the oldest
# supported one, so that what is written loads on every supported version.
DEFAULT_VERSIONS = {flavor: default_version(flavor) for flavor in SUPPORTED}

# Dragonfly's longest TTL: 2^28-1 seconds (about 8.5 years) from now. Seen on v1.40.1:
# PEXPIREAT beyond it is refused ("expiry is out of range"), but RESTORE (with or without
# ABSTTL) and SET ... PXAT clamp it silently to that limit (dragonfly src/server/common.h).
DRAGONFLY_MAX_TTL_MS = ((1 << 28) - 1) * 1000
STREAM_TYPES = frozenset({15, 19, 21})

# RDB version that introduced each type byte (redis src/rdb.h history).
_TYPE_MIN_RDB = {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 8, 7: 8, 9: 1, 10: 1, 11: 1, 12: 1, 13: 1,
                 14: 7, 15: 9, 16: 10, 17: 10, 18: 10, 19: 10, 20: 11, 21: 11}


@dataclass(frozen=True)
class Target:
    identity: ServerIdentity

    @classmethod
    def named(cls, flavor: str, version: str | None = None) -> Target:
        if flavor not in DEFAULT_VERSIONS:
            raise UsageError(f"unknown target {flavor!r}; expected valkey, dragonfly or redis")
        text = version or DEFAULT_VERSIONS[flavor]
        try:
            parsed = parse_version(text)
        except Exception:
            raise UsageError(f"invalid --target-version {text!r}",
                             f"known {flavor} versions: {', '.join(SUPPORTED[flavor])}") \
                from None
        return cls(ServerIdentity(flavor, parsed, text))

    @property
    def flavor(self) -> str:
        return self.identity.flavor

    def __str__(self) -> str:
        return str(self.identity)

    @property
    def dump_version(self) -> int:
        """The RDB version to put in a DUMP payload footer for this target."""
        return _dump_version(self.identity)

    def restores(self, type_code: int, producer_magic: str) -> bool:
        """Whether this target's RESTORE understands a value of this type byte (as read from
        a file with this header magic)."""
        return _restores(self.identity, type_code, producer_magic)

    def _restores(self, type_code: int, producer_magic: str) -> bool:
        level = self.dump_version
        if producer_magic == "VALKEY" and type_code == 22:
            return self.flavor == "valkey" and level >= 80
        if type_code in (24, 25):
            return self.flavor == "redis" and level >= 12
        if type_code in (22, 23, 6):  # Redis 7.4 pre-GA field-TTL hashes; pre-GA modules
            return False
        need = _TYPE_MIN_RDB.get(type_code)
        if need is None:
            return False
        if self.flavor == "valkey" and level >= 80:
            level = 11  # Valkey 9 loads Redis encodings up to RDB 11 plus its own
        return level >= need

    @property
    def field_ttl_mode(self) -> str | None:
        """How to set hash field TTLs: "hpexpireat" (Redis 7.4+, Valkey 9+), "hexpire"
        (Dragonfly: seconds, rounded up) or None (the target cannot hold them)."""
        if self.flavor == "redis" and self.identity.at_least(7, 4):
            return "hpexpireat"
        if self.flavor == "valkey" and self.identity.at_least(9, 0):
            return "hpexpireat"
        if self.flavor == "dragonfly":
            return "hexpire"
        return None

    @property
    def loads_functions(self) -> bool:
        return self.flavor != "dragonfly"  # docs/compatibility.md: FUNCTION / FCALL unsupported

    @property
    def stream_metadata(self) -> bool:
        """XSETID ENTRIESADDED/MAXDELETEDID and XGROUP CREATE ENTRIESREAD (Redis 7.0+).
        Seen on Dragonfly 1.40.1: XSETID takes neither option (wrong number of arguments)
        and XGROUP CREATE accepts ENTRIESREAD but ignores it."""
        return self.flavor != "dragonfly"

    @property
    def sets_entries_read_after(self) -> bool:
        """Whether each consumer group's entries-read must be set again with ``XGROUP SETID
        ... ENTRIESREAD`` after the stream is written. Seen on Dragonfly 1.40.1: RESTORE
        drops the counter of every group that has not read to the end (XINFO shows nil),
        and XGROUP CREATE ignores ENTRIESREAD; XGROUP SETID ... ENTRIESREAD keeps it."""
        return self.flavor == "dragonfly"

    @property
    def max_ttl_ms(self) -> int | None:
        """The longest TTL the target keeps (None: no limit that matters)."""
        return DRAGONFLY_MAX_TTL_MS if self.flavor == "dragonfly" else None


def restores_type(identity: ServerIdentity, type_code: int, producer_magic: str) -> bool:
    """Whether a server's RESTORE reads a value of this RDB type byte (from a payload or
    file with this header magic)."""
    return _restores(identity, type_code, producer_magic)


@functools.lru_cache(maxsize=1024)
def _restores(identity: ServerIdentity, type_code: int, producer_magic: str) -> bool:
    return Target(identity)._restores(type_code, producer_magic)


@functools.lru_cache(maxsize=64)
def _dump_version(identity: ServerIdentity) -> int:
    return max_rdb_loadable(identity) or 9
