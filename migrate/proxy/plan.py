"""Whether the source's RDB can pass through with only its header and checksum changed.

Parsing every record (the rewriter) costs about 20 us per key in Python; a target that loads
every record of the source's RDB needs none of it. The source says, cheaply, when that holds:

* a Redis source (RDB 12 at most: every record format is one Valkey 8/9 and Dragonfly read,
  docs/compatibility.md "RDB versions"), or the target's own flavor and version;
* no hash with field TTLs: ``INFO keyspace`` ``subexpiry`` is 0 in every database (Redis
  7.4+; older servers have none);
* no module value: ``MODULE LIST`` is empty, or every loaded module's key types are known
  (docs/compatibility.md "Modules and their key types") and ``SCAN ... TYPE <type>`` finds none.

It is checked when the link starts and again once the RDB is received; a key of those kinds
that lived only between the two checks would reach the target's loader, which refuses it
(the proxy then stops and says so). Otherwise the rewriter parses every record.
"""

from __future__ import annotations

from typing import Any

import redis

from migrate.apply.target import Target as ApplyTarget
from migrate.compat.rdb import rdb_version_written
from migrate.endpoint import Endpoint
from migrate.serverinfo import ServerIdentity

# MODULE LIST name -> key types its values report with TYPE (docs/compatibility.md, "Modules and
# their key types"); a module not listed here makes the rewriter parse every record.
MODULE_KEY_TYPES: dict[str, tuple[str, ...]] = {
    "vectorset": ("vectorset",),
    "ReJSON": ("ReJSON-RL",),
    "timeseries": ("TSDB-TYPE",),
    "bf": ("MBbloom--", "MBbloomCF", "CMSk-TYPE", "TopK-TYPE", "TDIS-TYPE"),
    "search": (),
    "redisgears_2": (),
}
SCAN_COUNT = 10_000


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def parse_reason(endpoint: Endpoint, source: ServerIdentity,
                 target: ApplyTarget) -> str | None:
    """None when the RDB can pass through; otherwise why every record must be parsed."""
    version = rdb_version_written(source)
    known = source.flavor == "redis" and version is not None and version <= 12 and \
        target.flavor != "redis"  # a Redis target reads only its own versions' records
    same = source.flavor == target.flavor and source.version <= target.identity.version
    if not (known or same):
        return f"{source} writes an RDB the pass-through does not cover"
    client = endpoint.client()
    keyspace = client.info("keyspace")
    dbs = []
    for name, fields in keyspace.items():
        if not str(name).startswith("db") or not isinstance(fields, dict):
            continue
        dbs.append(int(str(name)[2:]))
        if int(fields.get("subexpiry", 0) or 0):
            return f"{name} holds hashes with field TTLs"
    try:
        modules = client.execute_command("MODULE", "LIST") or []
    except redis.RedisError:
        return "MODULE LIST is not available on the source"
    for module in modules:
        info = module if isinstance(module, dict) else dict(zip(module[::2], module[1::2],
                                                                strict=False))
        name = _text(info.get(b"name", info.get("name", "?")))
        types = MODULE_KEY_TYPES.get(name)
        if types is None:
            return f"module {name} is loaded on the source"
        for db in dbs:
            for kind in types:
                if _has_type(endpoint.client(db=db), kind):
                    return f"db{db} holds {kind} values"
    return None


def _has_type(client: redis.Redis, kind: str) -> bool:
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, count=SCAN_COUNT, _type=kind)
        if keys:
            return True
        if int(cursor) == 0:
            return False
