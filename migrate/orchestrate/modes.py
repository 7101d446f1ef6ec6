"""The sync modes, each in one entry: why it refuses a source/target pair, how its engine is
built, how a cut-over reaches a running sync of it, whether it resumes.

The run script picks a mode and builds its engine from here
(:mod:`migrate.orchestrate.sync_run`); the cluster sync builds one reader per source primary
from here; the cut-over picks its link from ``cutover`` (:func:`migrate.cutover.link.link_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from migrate.errors import UsageError
from migrate.proxy import engine as proxy
from migrate.state.ledger import Ledger
from migrate.sync import native, replica, scan
from migrate.sync.engine import Engine
from migrate.sync.modes import MODES, NATIVE, PROXY, REPLICA, SCAN
from migrate.sync.options import SyncOptions
from migrate.sync.sides import Source, Target
from migrate.sync.status import StatusPublisher

Refusal = Callable[[Source, Target, SyncOptions], str | None]
Build = Callable[[Source, Target, SyncOptions, Ledger, StatusPublisher], Engine]

# How a cut-over reaches a running sync (migrate.cutover.link):
TARGET_REPLICATES = "target-replicates"  # the target is a replica of the source: INFO offsets
APPLIED_FILE = "applied-file"  # the sync records the applied offset; a stop request ends it
TARGET_REPLICATES_KVMIGRATE = "target-replicates-kvmigrate"  # proxy: both of the above
BARRIER = "barrier"  # no offsets: a barrier through the notification connection


@dataclass(frozen=True)
class Mode:
    name: str
    refusal: Refusal  # why it cannot do this sync (None: it can)
    build: Build
    cutover: str  # how a cut-over reaches a running sync of it (above)
    resumes: bool  # ``--resume`` continues it
    replaces_target: bool  # the target's keys are replaced by what it loads (no flush needed)
    reads_a_shard: bool  # a cluster sync may read each source primary with it


# In the order a refusal lists them.
REGISTRY: dict[str, Mode] = {m.name: m for m in (
    Mode(NATIVE, native.refusal, native.NativeSync, TARGET_REPLICATES, resumes=True,
         replaces_target=True, reads_a_shard=False),
    Mode(REPLICA, replica.refusal, replica.ReplicaSync, APPLIED_FILE, resumes=True,
         replaces_target=False, reads_a_shard=True),
    Mode(SCAN, scan.refusal, scan.ScanSync, BARRIER, resumes=True, replaces_target=False,
         reads_a_shard=True),
    Mode(PROXY, proxy.refusal, proxy.ProxySync, TARGET_REPLICATES_KVMIGRATE, resumes=False,
         replaces_target=True, reads_a_shard=False),
)}


def lookup(name: str) -> Mode:
    """The entry of ``name``; an unknown name is a usage error."""
    if name not in REGISTRY:
        raise UsageError(f"unknown --mode {name!r}", f"modes: {', '.join(MODES)}")
    return REGISTRY[name]
