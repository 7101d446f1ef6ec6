"""Live sync: the engines that copy a running source to a target and keep it caught up.

Modes (see docs/sync.md): ``native`` (the target replicates with REPLICAOF), ``replica``
(kvmigrate's own PSYNC replica), ``scan`` (SCAN with DUMP/RESTORE or typed commands, plus
keyspace notifications); the proxy and cluster engines (:mod:`migrate.proxy`,
:mod:`migrate.cluster`) build on this package. The run script that picks a mode and drives an
engine through its phases is :mod:`migrate.orchestrate.sync_run`; sources and targets are
reached through :mod:`migrate.sync.sides`.
"""
