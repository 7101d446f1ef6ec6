"""Read the live settings of a running Redis (``CONFIG GET *``) as a config document.

Only the settings that differ from that Redis version's defaults become directives (a
converted file that restated every default would, for instance, pin Dragonfly's ``hz`` to
Redis's 10). Aliases (``slave-*``, ``*-ziplist-*``, ``masterauth`` ...) are folded into their
canonical names. Line numbers are positions in the sorted ``CONFIG GET *`` reply.
"""

from __future__ import annotations

from typing import cast

from migrate.convert.document import ConfigDocument, Directive, Line
from migrate.convert.known import REDIS_DEFAULTS, REDIS_FORCED_DEFAULTS
from migrate.convert.redis_rules import MULTI_ARG
from migrate.endpoint import Endpoint
from migrate.errors import UsageError
from migrate.serverinfo import identify

# CONFIG GET * lists both names of an alias pair; keep the canonical one (redis src/config.c).
ALIASES: dict[str, str] = {
    "slaveof": "replicaof", "slave-serve-stale-data": "replica-serve-stale-data",
    "slave-read-only": "replica-read-only", "slave-announce-ip": "replica-announce-ip",
    "slave-announce-port": "replica-announce-port", "slave-priority": "replica-priority",
    "slave-lazy-flush": "replica-lazy-flush", "slave-ignore-maxmemory": "replica-ignore-maxmemory",
    "repl-ping-slave-period": "repl-ping-replica-period",
    "min-slaves-to-write": "min-replicas-to-write", "min-slaves-max-lag": "min-replicas-max-lag",
    "cluster-slave-validity-factor": "cluster-replica-validity-factor",
    "cluster-slave-no-failover": "cluster-replica-no-failover",
    "hash-max-ziplist-entries": "hash-max-listpack-entries",
    "hash-max-ziplist-value": "hash-max-listpack-value",
    "zset-max-ziplist-entries": "zset-max-listpack-entries",
    "zset-max-ziplist-value": "zset-max-listpack-value",
    "list-max-ziplist-size": "list-max-listpack-size",
    "aof_rewrite_cpulist": "aof-rewrite-cpulist", "bgsave_cpulist": "bgsave-cpulist",
    "bio_cpulist": "bio-cpulist", "server_cpulist": "server-cpulist",
}

# Settings that describe where this process runs, not how the deployment is tuned.
RUNTIME_ONLY = frozenset({"dir", "logfile", "pidfile", "daemonize", "enable-debug-command"})


def read_server(url: str) -> ConfigDocument:
    endpoint = Endpoint.parse(url)
    client = endpoint.client(decode_responses=True)
    ident = identify(client.info("server"))
    if ident.flavor != "redis":
        raise UsageError(f"{endpoint.display()} is {ident}, not Redis",
                         "--from-server reads a Redis source")
    config = cast(dict[str, str], client.config_get("*"))  # decode_responses: str to str
    return document_from_config(config, origin=endpoint.display(),
                                version=ident.version_text)


def defaults_for(version: str) -> dict[str, str]:
    """Defaults seen on Redis 8.0.6 for 8.x and later, on Redis 7.0.15 for anything older
    (7.2 and 7.4 differ from 7.0 in a few new directives only)."""
    major_minor = "8.0" if tuple(int(x) for x in version.split(".")[:1]) >= (8,) else "7.0"
    return {**REDIS_DEFAULTS[major_minor], **REDIS_FORCED_DEFAULTS[major_minor]}


def document_from_config(config: dict[str, str], origin: str, version: str) -> ConfigDocument:
    defaults = defaults_for(version)
    doc = ConfigDocument(origin=origin, from_server=True, server_version=version)
    names = sorted(n for n in config if n not in ALIASES and n not in RUNTIME_ONLY)
    for number, name in enumerate(names, start=1):
        value = config[name]
        if defaults.get(name) == value:
            continue
        args = value.split() if name in MULTI_ARG else [value]
        if name == "save" and not args:
            args = [""]
        if name == "replicaof" and not value:
            continue
        directive = Directive(name, args, origin, number, live=True)
        doc.lines.append(Line("directive", "", origin, number, directive))
    return doc
