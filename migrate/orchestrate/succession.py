"""``--resume`` from another source: the recorded source's successor after a failover.

A replica promoted to primary keeps the replication id it followed as ``master_replid2``
(PSYNC2), and its offsets go on from there. So the replication id the run recorded (replica
mode: ``applied.json``; native mode: the target's own, as a replica) is in the history of
the old source's successor, ``master_replid`` or ``master_replid2``: the resumed run asks it
for a partial resync at the recorded offset and loads nothing again (where it refuses, the
resumed run flushes its target and loads again, as any full resync). A source whose history
holds none of the recorded ids is another server: the resume is refused in one line naming
the recorded source. Modes that keep no replication id (scan, proxy) resume from the
recorded source only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from migrate.endpoint import Endpoint
from migrate.errors import UsageError
from migrate.state.ledger import recorded_offsets, recorded_run, without_password
from migrate.state.paths import StatePaths
from migrate.sync.modes import NATIVE, REPLICA
from migrate.sync.sides import Side, Source

NO_ID = "0" * 40  # INFO's master_replid2 of a server that never changed its id

SUCCESSOR_MODES = (REPLICA, NATIVE)


def history(info: dict[str, Any]) -> set[str]:
    """The replication ids ``INFO replication`` says a server's offsets continue."""
    ids = (info.get("master_replid"), info.get("master_replid2"))
    return {str(i) for i in ids if i and str(i) != NO_ID}


def recorded_ids(root: Path, mode: str, target: Side) -> set[str]:
    """The replication ids the run in ``root`` followed: replica mode's ``applied.json``
    and ledger; native mode's target (a replica of the source, with the source's id)."""
    if mode == NATIVE:
        try:
            return history(target.info("replication"))
        except redis.RedisError:
            return set()
    ids = {recorded_offsets(root).get("replid")}
    applied = StatePaths(root).applied
    with contextlib.suppress(OSError, ValueError, AttributeError):
        ids.add(json.loads(applied.read_text()).get("replid"))
    return {str(i) for i in ids if i}


def moved_source(root: Path, run: dict[str, Any], source: Side, target: Side,
                 note: Callable[[str], None],
                 primaries: list[Endpoint] | None = None) -> tuple[str, ...]:
    """The keys of ``run`` a ``--resume`` may change: ``"source"`` when the given source is
    the recorded one's successor (a cluster: when a primary of ``primaries`` continues a
    recorded shard's replication), ``"shards"`` for a cluster source (each shard folder is
    matched by its slots: migrate/cluster/resume.py); () when it is the recorded one, or the
    ledger refuses the change itself (another mode, or a mode that cannot). Raises when it
    is another server."""
    recorded = recorded_run(root)
    cluster = bool(run.get("cluster"))
    if recorded is None or recorded.get("mode") != run["mode"] \
            or bool(recorded.get("cluster")) != cluster \
            or not (cluster or run["mode"] in SUCCESSOR_MODES):
        return ()
    keys: tuple[str, ...] = ("shards",) if cluster else ()
    was, now = str(recorded.get("source", "")), str(run["source"])
    if without_password(was) == without_password(now):
        return keys
    if cluster:
        ids = {i for folder in sorted(root.glob("shard-*"))
               for i in recorded_ids(folder, REPLICA, target)}
        has = {i for ep in primaries or [] for i in history(Source.connect(ep).info(
            "replication"))}
        what = "is a node of the recorded cluster of"
    else:
        ids = recorded_ids(root, run["mode"], target)
        has = history(source.info("replication"))
        what = "continues the replication of the recorded source"
    if ids & has:
        note(f"resume: {now} {what} {was} (replication id {sorted(ids & has)[0]} goes on "
             "there: a failover's successor); resuming from it")
        return (*keys, "source")
    raise UsageError(
        f"--resume --source {now}: the run in {root} read from {was}, and {now} does not "
        f"continue its replication (its ids: {', '.join(sorted(has)) or 'none'}; the run "
        f"followed: {', '.join(sorted(ids)) or 'none recorded'})",
        f"resume with --source {was} (or its successor after a failover), or start a new "
        "run with another --state DIR and --flush-target")
