"""What a sync run is asked to do, and how it reports progress (an observer, so only the CLI
touches the terminal)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from migrate.dbmap import DbMap
from migrate.endpoint import Endpoint
from migrate.errors import UsageError
from migrate.sync.modes import AUTO
from migrate.sync.retry import ReconnectDeadlines
from migrate.sync.rules import LOSS_CLASSES

TARGETS = ("valkey", "dragonfly", "redis")  # redis: a way back (rollback)


def parse_allow_loss(text: str | None) -> frozenset[str]:
    """``--allow-loss field-ttl,vector-set`` -> the set of classes (each must be known)."""
    names = frozenset(n.strip() for n in (text or "").split(",") if n.strip())
    unknown = sorted(names - set(LOSS_CLASSES))
    if unknown:
        raise UsageError(f"--allow-loss {','.join(unknown)}: unknown class",
                         f"known: {', '.join(LOSS_CLASSES)}")
    return names


class Observer(Protocol):
    def note(self, message: str) -> None: ...

    def status(self, status: dict[str, Any]) -> None: ...


class QuietObserver:
    def note(self, message: str) -> None:
        pass

    def status(self, status: dict[str, Any]) -> None:
        pass


@dataclass
class SyncOptions:
    source: Endpoint
    target: Endpoint
    to: str = "valkey"
    mode: str = AUTO
    follow: bool = False
    verify_sample: int = 1000
    state_dir: Path | None = None
    resume: bool = False
    status_json: Path | None = None
    flush_target: bool = False
    match: str | None = None
    db_map: DbMap = field(default_factory=DbMap)
    heartbeat: bool = True
    set_notify_keyspace_events: bool = False
    stall_timeout_s: float = 300.0
    # how long a dropped link is tried again before the run stops (resumable), per class of
    # link (migrate.sync.retry.LINK_CLASSES)
    reconnect: ReconnectDeadlines = field(default_factory=ReconnectDeadlines)
    listen: str | None = None  # proxy mode: HOST:PORT the target replicates from
    # native/proxy only: the target's keys are replaced by replication, so it need not be
    # empty (a rollback's old primary, fenced: kvmigrate could not flush it anyway)
    replace_target: bool = False
    jobs: int | None = None  # a cluster source: shards loading at once (None: the cores)
    source_cluster: bool = False  # insist that the source is a cluster (else auto-detected)
    target_cluster: bool = False
    # classes of loss the user accepted (migrate.sync.rules.LOSS_CLASSES); none by default
    allow_loss: frozenset[str] = frozenset()
    # keep the spool (a full copy of the data) when the run ends; removed otherwise
    keep_spool: bool = False
    max_ops_per_s: float | None = None  # scan mode: a ceiling on the reads from the source
    # why the caller picked ``mode`` (e.g. a rollback), shown instead of "asked for with
    # --mode", which the user did not do then
    mode_reason: str | None = None
    observer: Observer = field(default_factory=QuietObserver)
    stop: threading.Event = field(default_factory=threading.Event)
