"""What a resumed cluster sync keeps of its shards after the source failed over or was
resharded.

Each shard folder (``DIR/shard-N``) records the slots its reader followed (its ledger's
``offsets.slots``) and its primary (``run.source``). On ``--resume`` the topology is read
again and each primary of it is matched to a folder by its slot set:

- the same slots: the folder is kept (moved to the shard's new position when the order
  changed), and its ``applied.json`` resumes it by partial resync; after a failover the new
  primary continues the old one's replication (``master_replid2``), so nothing is loaded
  again (where it answers FULLRESYNC, the shard's keys are deleted and loaded again);
- other slots (resharding), or no folder: the shard loads again into a fresh folder, after
  the keys of its new slots were deleted on the target (the other shards' keys stay).

A folder no primary matches is removed: its slots are loaded again by the shards that now own
them. Folders are moved aside first (``.shard-N.resume``) and into place after; a run killed
in between finds no folder for those shards, which then load again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.endpoint import Endpoint
from migrate.protocol.cluster.topology import SlotRange
from migrate.state.ledger import without_password
from migrate.state.paths import LEDGER_FILE, StatePaths

Slots = tuple[SlotRange, ...] | None

REUSE, LOAD = "reuse", "load"


@dataclass(frozen=True)
class ShardPlan:
    index: int  # the shard's position in the topology, and its folder DIR/shard-<index>
    how: str  # REUSE (continue from its folder) or LOAD (delete its slots' keys, load again)
    folder: int | None  # the index of the folder it continues from (None: a new folder)
    was: str | None  # the primary the reused folder followed (None: a new folder)
    why: str  # what a note says of it


def slots_record(slots: Slots) -> list[list[int]] | None:
    return None if slots is None else [[r.start, r.end] for r in slots]


def _recorded(root: Path) -> dict[int, dict[str, Any]]:
    """The shard folders of ``root``: index -> {"source", "slots"} of their ledgers."""
    found: dict[int, dict[str, Any]] = {}
    for ledger in root.glob(f"shard-*/{LEDGER_FILE}"):
        suffix = ledger.parent.name.removeprefix("shard-")
        if not suffix.isdigit():
            continue
        try:
            data = json.loads(ledger.read_text())
        except (OSError, ValueError):
            continue
        found[int(suffix)] = {"source": data.get("run", {}).get("source"),
                              "slots": data.get("offsets", {}).get("slots")}
    return found


def plan(root: Path, shards: list[Endpoint], slots: list[Slots]) -> list[ShardPlan]:
    """How each shard of the topology read now resumes (see the module's text)."""
    recorded = _recorded(root)
    taken: set[int] = set()
    plans = []
    for i, (endpoint, mine) in enumerate(zip(shards, slots, strict=True)):
        now = endpoint.display()
        match = next((k for k, r in sorted(recorded.items())
                      if k not in taken and r["slots"] == slots_record(mine)
                      and r["slots"] is not None), None)
        if match is None and i in recorded and i not in taken and \
                recorded[i]["slots"] is None and _same(recorded[i]["source"], now):
            match = i  # a folder of a run that did not record its slots: same primary
        if match is None:
            why = "no folder of it" if not recorded else \
                "its slots changed (a resharding)" if any(
                    r["slots"] is not None for r in recorded.values()) else \
                "its primary changed and its folder recorded no slots (an older run)"
            plans.append(ShardPlan(i, LOAD, None, None, why))
            continue
        taken.add(match)
        was = str(recorded[match]["source"])
        why = "unchanged" if _same(was, now) else \
            f"its slots are unchanged, its primary is now {now} (was {was}: a failover)"
        if match != i:
            why += f"; its folder was shard-{match}"
        plans.append(ShardPlan(i, REUSE, match, was, why))
    return plans


def arrange(root: Path, plans: list[ShardPlan]) -> None:
    """Move each reused folder to ``DIR/shard-<index>`` of its shard, and remove the folders
    no shard reuses (their slots load again)."""
    paths = StatePaths(root)
    for stale in root.glob(".shard-*.resume"):  # a run killed while arranging: load again
        shutil.rmtree(stale, ignore_errors=True)
    sources = {p.index: p.folder for p in plans if p.folder not in (None, p.index)}
    kept = {p.index for p in plans if p.folder == p.index}
    aside: dict[int, Path] = {}
    for folder in sorted(root.glob("shard-*")):
        suffix = folder.name.removeprefix("shard-")
        if suffix.isdigit() and int(suffix) not in kept:
            aside[int(suffix)] = folder.rename(root / f".shard-{suffix}.resume")
    for index, was in sources.items():
        if was is not None and was in aside:
            aside.pop(was).rename(paths.shard(index))
    for folder in aside.values():
        shutil.rmtree(folder, ignore_errors=True)


def _same(a: object, b: str) -> bool:
    return isinstance(a, str) and without_password(a) == without_password(b)
