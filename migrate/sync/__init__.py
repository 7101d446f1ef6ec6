"""Live sync: copy a running source to a target and keep it caught up.

Modes (see docs/sync.md): ``native`` (the target replicates with REPLICAOF), ``scan`` (SCAN
with DUMP/RESTORE or typed commands, plus keyspace notifications) and ``auto``. The run is a
script of phases recorded in the ledger (:mod:`migrate.orchestrate.ledger`); sources and
targets are reached through :mod:`migrate.sync.sides`, which is where a cluster (one reader
per shard, a slot-routing writer) plugs in later.
"""
