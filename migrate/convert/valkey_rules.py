"""Data for redis.conf -> valkey.conf: Valkey's names for renamed directives, what each
Valkey version knows, and the migration settings worth suggesting.

Every rename below is an alias Valkey still accepts, rewritten so the file uses Valkey's own
names (docs/compatibility.md 'Config directives'). *Seen here*: ``CONFIG SET <old>`` then
``CONFIG GET <new>`` answer the value set on Valkey 8.0.1, 8.1.1 and 9.1.2 (8.1.1 and 9.1.2
only for ``commandlog-*``, which 8.0.1 lacks); tests/convert/test_valkey_roundtrip.py re-checks
it on the lab servers.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate.compat.versions import default_version
from migrate.convert.known import FILE_ONLY, VALKEY_DIRECTIVES, VALKEY_UNLISTED
from migrate.errors import UsageError
from migrate.serverinfo import parse_version


@dataclass(frozen=True)
class Rename:
    old: str
    new: str
    since: tuple[int, int]  # first Valkey version that has the new name
    source: str


_ALIAS_SRC = ("docs/compatibility.md 'Config directives'; seen here: an alias on Valkey 8.0.1, "
              "8.1.1, 9.1.2")
_LISTPACK_SRC = "seen here: *-ziplist-* are aliases of *-listpack-* on Valkey 8.0.1, 8.1.1, 9.1.2"
_COMMANDLOG_SRC = ("seen here: slowlog-* are aliases of commandlog-* on Valkey 8.1.1 and "
                   "9.1.2 (8.0.1 has no commandlog-*)")

RENAMES: dict[str, Rename] = {r.old: r for r in [
    Rename("masterauth", "primaryauth", (8, 0), _ALIAS_SRC),
    Rename("masteruser", "primaryuser", (8, 0), _ALIAS_SRC),
    Rename("slaveof", "replicaof", (8, 0), _ALIAS_SRC),
    Rename("slave-serve-stale-data", "replica-serve-stale-data", (8, 0), _ALIAS_SRC),
    Rename("slave-read-only", "replica-read-only", (8, 0), _ALIAS_SRC),
    Rename("slave-announce-ip", "replica-announce-ip", (8, 0), _ALIAS_SRC),
    Rename("slave-announce-port", "replica-announce-port", (8, 0), _ALIAS_SRC),
    Rename("slave-priority", "replica-priority", (8, 0), _ALIAS_SRC),
    Rename("slave-lazy-flush", "replica-lazy-flush", (8, 0), _ALIAS_SRC),
    Rename("slave-ignore-maxmemory", "replica-ignore-maxmemory", (8, 0), _ALIAS_SRC),
    Rename("repl-ping-slave-period", "repl-ping-replica-period", (8, 0), _ALIAS_SRC),
    Rename("min-slaves-to-write", "min-replicas-to-write", (8, 0), _ALIAS_SRC),
    Rename("min-slaves-max-lag", "min-replicas-max-lag", (8, 0), _ALIAS_SRC),
    Rename("cluster-slave-validity-factor", "cluster-replica-validity-factor", (8, 0),
           _ALIAS_SRC),
    Rename("cluster-slave-no-failover", "cluster-replica-no-failover", (8, 0), _ALIAS_SRC),
    Rename("hash-max-ziplist-entries", "hash-max-listpack-entries", (8, 0), _LISTPACK_SRC),
    Rename("hash-max-ziplist-value", "hash-max-listpack-value", (8, 0), _LISTPACK_SRC),
    Rename("zset-max-ziplist-entries", "zset-max-listpack-entries", (8, 0), _LISTPACK_SRC),
    Rename("zset-max-ziplist-value", "zset-max-listpack-value", (8, 0), _LISTPACK_SRC),
    Rename("list-max-ziplist-size", "list-max-listpack-size", (8, 0), _LISTPACK_SRC),
    Rename("slowlog-log-slower-than", "commandlog-execution-slower-than", (8, 1),
           _COMMANDLOG_SRC),
    Rename("slowlog-max-len", "commandlog-slow-execution-max-len", (8, 1), _COMMANDLOG_SRC),
]}


@dataclass(frozen=True)
class Suggestion:
    directive: str
    value: str
    since: tuple[int, int]
    why: str
    source: str


SUGGESTIONS: list[Suggestion] = [
    Suggestion("rdb-version-check", "relaxed", (8, 1),
               "lets this Valkey load an RDB written by Redis 7.4+ (version 12+) unless a key "
               "type is unknown; keep strict once the migration is over",
               "docs/compatibility.md 'What each target can load'; listed by CONFIG GET * on "
               "Valkey 8.1.1 and 9.1.2, not 8.0.1"),
    Suggestion("import-mode", "yes", (8, 1),
               "while importing: no expiry and no eviction, so the copy is complete; set it "
               "back to no before cut-over",
               "docs/compatibility.md 'Config directives'; listed by CONFIG GET * on Valkey "
               "8.1.1 and 9.1.2, not 8.0.1"),
]

VERSIONS: list[str] = sorted(VALKEY_DIRECTIVES, key=lambda v: parse_version(v))


def dataset_version(requested: str | None) -> str:
    """The newest data set at or below the requested Valkey version (default: the oldest
    supported version, whose output every supported version accepts)."""
    if not requested:
        requested = default_version("valkey")
    try:
        wanted = parse_version(requested)
    except Exception:
        raise UsageError(f"--target-version {requested!r} is not a version",
                         "e.g. --target-version 8.1") from None
    fitting = [v for v in VERSIONS if parse_version(v)[:2] <= wanted[:2]]
    if not fitting:
        raise UsageError(f"Valkey {requested} is older than the versions kvmigrate knows",
                         f"known: {', '.join(VERSIONS)}")
    return fitting[-1]


def knows(version: str, name: str) -> str | None:
    """How Valkey ``version`` takes a directive: "listed", "hidden", "ignored" or None."""
    if name in VALKEY_DIRECTIVES[version] or (name in FILE_ONLY and name != "sentinel"):
        return "listed"
    return VALKEY_UNLISTED[version].get(name)
