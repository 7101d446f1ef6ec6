"""The names of the sync modes (what ``--mode`` takes and a ledger records). What each mode
does, refuses and resumes is :mod:`migrate.orchestrate.modes`."""

from __future__ import annotations

AUTO = "auto"  # the run picks one (migrate.orchestrate.sync_run.choose_mode)
NATIVE = "native"  # the target replicates from the source (REPLICAOF)
REPLICA = "replica"  # kvmigrate's own PSYNC replica replays the stream into the target
SCAN = "scan"  # SCAN + DUMP/typed reads, then keyspace notifications
PROXY = "proxy"  # the target replicates from kvmigrate, which rewrites the RDB

MODES = (AUTO, NATIVE, SCAN, REPLICA, PROXY)
