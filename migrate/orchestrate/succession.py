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

from migrate.errors import UsageError
from migrate.state.ledger import recorded_offsets, recorded_run, without_password
from migrate.state.paths import StatePaths
from migrate.sync.modes import NATIVE, REPLICA
from migrate.sync.sides import Side

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
                 note: Callable[[str], None]) -> tuple[str, ...]:
    """The keys of ``run`` a ``--resume`` may change: ``("source",)`` when the given source
    is the recorded one's successor, ``("shards",)`` for a cluster source, () when it is the
    recorded one (or the ledger refuses the change itself: another mode, or a mode that
    cannot); raises when it is another server."""
    recorded = recorded_run(root)
    if recorded is not None and recorded.get("cluster") and run.get("cluster"):
        return ("shards",)  # each shard's folder is matched by its slots (cluster/resume.py)
    if recorded is None or recorded.get("mode") != run["mode"] \
            or run["mode"] not in SUCCESSOR_MODES:
        return ()
    was, now = str(recorded.get("source", "")), str(run["source"])
    if without_password(was) == without_password(now):
        return ()
    ids = recorded_ids(root, run["mode"], target)
    has = history(source.info("replication"))
    if ids & has:
        note(f"resume: {now} continues the replication of the recorded source {was} (its "
             f"history holds replication id {sorted(ids & has)[0]}: a failover's "
             "successor); resuming from it")
        return ("source",)
    raise UsageError(
        f"--resume --source {now}: the run in {root} read from {was}, and {now} does not "
        f"continue its replication (its ids: {', '.join(sorted(has)) or 'none'}; the run "
        f"followed: {', '.join(sorted(ids)) or 'none recorded'})",
        f"resume with --source {was} (or its successor after a failover), or start a new "
        "run with another --state DIR and --flush-target")
