"""redis.conf directive -> Dragonfly flag: the mapping as data, each rule with its source.

``kind``: ``same`` (value passed as it is), ``bool`` (yes/no -> true/false), ``size`` (units
converted to bytes), ``custom`` (converted by a function in :mod:`.to_dragonfly`, described by
``how``), ``none`` (no equivalent: not written; ``severity`` decides whether that is dropped
quietly (info) or unsupported (warning / blocker) and ``how`` says the remedy).
A directive with no rule here has no Dragonfly equivalent: dropped with an info finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate.convert.dragonfly_flags import DOCS_FLAGS
from migrate.model import Severity

FACTS = "docs/compatibility.md 'Config directives'"
SERVER_FAMILY = "dragonflydb/dragonfly src/server/server_family.cc"
MAIN_SERVICE = "dragonflydb/dragonfly src/server/main_service.cc"
AOF_DOC = ("dragonflydb/documentation docs/managing-dragonfly/aof.md: 'Currently, Dragonfly "
           "does not support AOF'")


@dataclass(frozen=True)
class Rule:
    redis: str
    kind: str  # same | bool | size | custom | none
    flag: str = ""
    how: str = ""
    severity: Severity = Severity.INFO  # for kind "none"
    source: str = DOCS_FLAGS


def _same(redis: str, flag: str, how: str = "", source: str = DOCS_FLAGS) -> Rule:
    return Rule(redis, "same", flag, how or "same value", source=source)


def _none(redis: str, how: str, severity: Severity = Severity.INFO,
          source: str = FACTS) -> Rule:
    return Rule(redis, "none", "", how, severity, source)


_AOF = "AOF setting: Dragonfly has no AOF, so it has no effect"
_TUNING = "tuning of Redis's own data structures; Dragonfly's differ"
_EVICTION = "Dragonfly has a single eviction policy (cache_mode); nothing to tune"
_CLUSTER = "Redis Cluster setting; Dragonfly has no cluster bus"

RULES: dict[str, Rule] = {r.redis: r for r in [
    _same("port", "port"),
    _same("requirepass", "requirepass"),
    _same("masterauth", "masterauth"),
    _same("masteruser", "masteruser", source="dragonflydb/dragonfly src/server/replica.cc"),
    _same("timeout", "timeout", source="dragonflydb/dragonfly src/server/server_state.cc"),
    _same("tcp-keepalive", "tcp_keepalive"),
    _same("tcp-backlog", "tcp_backlog", source="dragonflydb/dragonfly src/server/dfly_main.cc"),
    _same("maxclients", "maxclients"),
    _same("dir", "dir"),
    _same("pidfile", "pidfile"),
    _same("unixsocket", "unixsocket"),
    _same("unixsocketperm", "unixsocketperm"),
    _same("databases", "dbnum"),
    _same("slowlog-log-slower-than", "slowlog_log_slower_than"),
    _same("slowlog-max-len", "slowlog_max_len"),
    _same("list-compress-depth", "list_compress_depth"),
    _same("list-max-listpack-size", "list_max_listpack_size"),
    _same("list-max-ziplist-size", "list_max_listpack_size"),
    _same("aclfile", "aclfile", "same value; Dragonfly's ACL file uses Redis's syntax"),
    _same("acllog-max-len", "acllog_max_len",
          "same value, but Dragonfly keeps that many entries per thread"),
    _same("replica-priority", "replica_priority",
          source="dragonflydb/dragonfly src/server/replica.cc"),
    _same("slave-priority", "replica_priority",
          source="dragonflydb/dragonfly src/server/replica.cc"),
    _same("replica-announce-ip", "replica_announce_ip",
          source="dragonflydb/dragonfly src/server/replica.cc"),
    _same("slave-announce-ip", "replica_announce_ip",
          source="dragonflydb/dragonfly src/server/replica.cc"),
    _same("cluster-announce-ip", "cluster_announce_ip"),
    _same("tls-cert-file", "tls_cert_file"),
    _same("tls-key-file", "tls_key_file"),
    _same("tls-ca-cert-file", "tls_ca_cert_file"),
    _same("tls-ca-cert-dir", "tls_ca_cert_dir"),
    Rule("tls-replication", "bool", "tls_replication", "yes/no -> true/false"),
    Rule("maxmemory", "size", "maxmemory",
         "converted to bytes; 0 means 'unlimited' in Redis but 'use the machine's memory' in "
         "Dragonfly, which also needs at least 256 MB per thread", source=MAIN_SERVICE),
    Rule("maxmemory-policy", "custom", "cache_mode",
         "allkeys-* -> cache_mode=true (Dragonfly's one eviction policy); noeviction -> "
         "cache_mode=false; volatile-* -> cache_mode=false with a warning (Dragonfly cannot "
         "evict only keys with a TTL)", source=f"{DOCS_FLAGS}; {FACTS}"),
    Rule("save", "custom", "snapshot_cron",
         "save points -> a cron schedule at the shortest save interval; Dragonfly snapshots "
         "on the clock, whether or not keys changed; save \"\" -> no schedule",
         source=f"{SERVER_FAMILY} (CronExprFlag: 5-field cron); {FACTS}"),
    Rule("dbfilename", "custom", "dbfilename",
         "the name without its .rdb extension (Dragonfly adds its own)",
         source=f"{DOCS_FLAGS}; docs/managing-dragonfly/backups.md"),
    Rule("notify-keyspace-events", "custom", "notify_keyspace_events",
         "only 'Ex' (expired-key events) is supported; other classes are lost",
         source="dragonflydb/dragonfly src/server/db_slice.cc"),
    Rule("bind", "custom", "bind",
         "Dragonfly binds one address: the first one is kept", source=DOCS_FLAGS),
    Rule("rename-command", "custom", "restricted_commands",
         "a command renamed to \"\" (disabled) goes to restricted_commands (only the admin "
         "port may run it); a rename to another name is a blocker: Dragonfly 1.40.1 refuses "
         "--rename_command", source=f"{DOCS_FLAGS}; seen on Dragonfly 1.40.1"),
    Rule("replicaof", "custom", "replicaof", "host port -> host:port", source=SERVER_FAMILY),
    Rule("slaveof", "custom", "replicaof", "host port -> host:port", source=SERVER_FAMILY),
    Rule("loglevel", "custom", "minloglevel",
         "debug/verbose/notice -> 0 (INFO), warning -> 1 (WARNING); glog levels"),
    Rule("logfile", "custom", "log_dir",
         "Dragonfly writes glog files into a directory: the file's directory; \"\" (stdout) "
         "-> logtostdout=true"),
    Rule("tls-port", "custom", "tls",
         "Dragonfly serves TLS on its main port: tls=true and port=<tls-port>; a Redis that "
         "serves both a plain and a TLS port cannot be matched"),
    _none("appendonly", "Dragonfly has no AOF, only snapshots: set snapshot_cron to the loss "
          "window you can accept, and keep replicas for durability", Severity.BLOCKER,
          AOF_DOC),
    _none("appendfsync", _AOF, source=AOF_DOC),
    _none("appendfilename", _AOF, source=AOF_DOC),
    _none("appenddirname", _AOF, source=AOF_DOC),
    _none("no-appendfsync-on-rewrite", _AOF, source=AOF_DOC),
    _none("auto-aof-rewrite-percentage", _AOF, source=AOF_DOC),
    _none("auto-aof-rewrite-min-size", _AOF, source=AOF_DOC),
    _none("aof-load-truncated", _AOF, source=AOF_DOC),
    _none("aof-use-rdb-preamble", _AOF, source=AOF_DOC),
    _none("aof-timestamp-enabled", _AOF, source=AOF_DOC),
    _none("aof-rewrite-incremental-fsync", _AOF, source=AOF_DOC),
    _none("loadmodule", "modules cannot be loaded into Dragonfly; it has JSON, search, "
          "Bloom/cuckoo, CMS and TopK built in (partially), no TimeSeries, t-digest or vector "
          "sets", Severity.BLOCKER,
          "docs/compatibility.md 'Modules and their key types'"),
    _none("user", "ACL users in the config file: put them in an ACL file (same syntax, "
          "'user ...' lines) and pass --aclfile", Severity.BLOCKER, DOCS_FLAGS),
    _none("cluster-enabled", "'cluster-enabled yes' is a blocker: Dragonfly has no cluster "
          "bus; use cluster_mode=emulated (one node answering CLUSTER commands) or "
          "cluster_mode=yes with an external control plane", Severity.BLOCKER,
          "docs/compatibility.md 'Cluster'"),
    _none("min-replicas-to-write", "Dragonfly cannot refuse writes when replicas lag: the "
          "write-safety guarantee is lost", Severity.WARNING),
    _none("min-slaves-to-write", "Dragonfly cannot refuse writes when replicas lag: the "
          "write-safety guarantee is lost", Severity.WARNING),
    _none("io-threads", "not carried over: Dragonfly uses every core by default "
          "(proactor_threads=0); io-threads=N would cap it to N threads"),
    _none("hz", "not carried over: Dragonfly's hz defaults to 100 and its docs advise "
          "against lowering it"),
    _none("daemonize", "Dragonfly runs in the foreground: run it under systemd or a "
          "supervisor"),
    _none("supervised", "Dragonfly has no supervision protocol setting"),
    _none("protected-mode", "Dragonfly has no protected mode: set bind and requirepass"),
    _none("maxmemory-samples", _EVICTION),
    _none("maxmemory-eviction-tenacity", _EVICTION),
    _none("lfu-log-factor", _EVICTION),
    _none("lfu-decay-time", _EVICTION),
    _none("hash-max-listpack-entries", _TUNING),
    _none("hash-max-listpack-value", _TUNING),
    _none("hash-max-ziplist-entries", _TUNING),
    _none("hash-max-ziplist-value", _TUNING),
    _none("zset-max-listpack-entries", _TUNING),
    _none("zset-max-listpack-value", _TUNING),
    _none("zset-max-ziplist-entries", _TUNING),
    _none("zset-max-ziplist-value", _TUNING),
    _none("set-max-intset-entries", _TUNING),
    _none("set-max-listpack-entries", _TUNING),
    _none("set-max-listpack-value", _TUNING),
    _none("client-output-buffer-limit", "Dragonfly has no per-class output buffer limits "
          "(see subscriber_thread_limit, max_client_iobuf_len)"),
    _none("cluster-config-file", _CLUSTER),
    _none("cluster-node-timeout", _CLUSTER),
    _none("sentinel", "Sentinel configuration, not a server setting"),
]}

DEFAULT_HOW = "no Dragonfly equivalent: not written"
