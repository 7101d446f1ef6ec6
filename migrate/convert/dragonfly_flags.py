"""Dragonfly's known server flags, each group with the reference it was taken from.

Dragonfly cannot run on these machines (no Debian, PyPI or npm package ships it), so this list
is data read from Dragonfly's documentation and source (read through the project's search
index on 2026-11-29), not from a running server. The converter emits only flags listed here
(tests/convert/test_dragonfly.py checks every emitted flag).
"""

from __future__ import annotations

DOCS_FLAGS = ("dragonflydb/documentation docs/managing-dragonfly/flags.md "
              "(commit 08cb9566e68a, 'Server Configuration Flags')")

KNOWN_FLAGS: dict[str, tuple[str, ...]] = {
    DOCS_FLAGS: (
        "port", "cache_mode", "cluster_mode", "maxmemory", "dbnum", "bind", "requirepass",
        "dbfilename", "snapshot_cron", "use_set2", "use_zset_tree", "admin_bind", "admin_port",
        "max_client_iobuf_len", "max_multi_bulk_len", "migrate_connections",
        "no_tls_on_admin_port", "subscriber_thread_limit", "pipeline_squash",
        "primary_port_http_enabled", "request_cache_limit", "tcp_nodelay",
        "conn_io_thread_start", "conn_io_threads", "conn_use_incoming_cpu", "tcp_keepalive",
        "tls", "tls_ca_cert_dir", "tls_ca_cert_file", "tls_cert_file", "tls_key_file",
        "rename_command", "restricted_commands", "lock_on_hashtags",
        "enable_heartbeat_eviction", "max_eviction_per_heartbeat", "max_segment_to_consider",
        "force_epoll", "pidfile", "unixsocket", "unixsocketperm", "version_check", "hz",
        "mem_defrag_page_utilization_threshold", "mem_defrag_threshold",
        "mem_defrag_waste_threshold", "shard_round_robin_prefix", "singlehop_blocking",
        "spill_file_prefix", "keys_output_limit", "backing_file_direct",
        "list_compress_depth", "list_max_listpack_size", "admin_nopass", "memcached_port",
        "multi_eval_squash_buffer", "multi_exec_mode", "multi_exec_squash", "num_shards",
        "oom_deny_ratio", "masterauth", "replicaof", "tls_replication", "compression_level",
        "compression_mode", "enable_multi_shard_sync", "master_connect_timeout_ms",
        "master_reconnect_timeout_ms", "replica_partial_sync", "replication_acks_interval",
        "default_lua_flags", "lua_auto_async", "df_snapshot_format", "dir",
        "epoll_file_threads", "maxclients", "s3_ec2_metadata", "s3_endpoint",
        "s3_sign_payload", "s3_use_https", "slowlog_log_slower_than", "slowlog_max_len",
        "interpreter_per_thread", "serialization_max_chunk_size", "enable_top_keys_tracking",
        "tiered_storage_max_pending_writes", "aclfile", "acllog_max_len",
        "cluster_announce_ip", "shard_repl_backlog_len", "proactor_affinity_mode",
        "proactor_threads", "proactor_register_fd", "flagfile", "alsologtostderr", "log_dir",
        "logtostderr", "logtostdout", "max_log_size", "minloglevel", "stderrthreshold",
        "command_alias",
    ),
    "dragonflydb/dragonfly src/server/replica.cc (ABSL_FLAG masteruser, masterauth, "
    "tls_replication, replica_announce_ip, replica_priority)": (
        "masteruser", "replica_announce_ip", "replica_priority",
    ),
    "dragonflydb/dragonfly src/server/server_state.cc (ABSL_FLAG timeout: 'Close the "
    "connection after it is idle for N seconds (0 to disable)')": (
        "timeout",
    ),
    "dragonflydb/dragonfly src/server/db_slice.cc (ABSL_FLAG notify_keyspace_events: "
    "'Only Ex is supported for now')": (
        "notify_keyspace_events",
    ),
    "dragonflydb/dragonfly src/server/dfly_main.cc (ABSL_FLAG tcp_backlog)": (
        "tcp_backlog",
    ),
}

ALL_FLAGS: frozenset[str] = frozenset(f for flags in KNOWN_FLAGS.values() for f in flags)


def source_of(flag: str) -> str:
    for source, flags in KNOWN_FLAGS.items():
        if flag in flags:
            return source
    raise KeyError(flag)
