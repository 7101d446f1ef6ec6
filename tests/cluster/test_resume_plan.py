"""Which shard folders a resumed cluster sync keeps (migrate/cluster/resume.py): matched by
slot set, moved to their shard's new position, the others removed. Folder bookkeeping only
(no server is involved: the resumes themselves run on real clusters in
tests/faults/test_resharding.py)."""

from __future__ import annotations

import json
from pathlib import Path

from migrate.cluster.resume import LOAD, REUSE, arrange, plan, slots_record
from migrate.endpoint import Endpoint
from migrate.protocol.cluster.topology import SlotRange


def _ep(port: int) -> Endpoint:
    return Endpoint.parse(f"redis://127.0.0.1:{port}")


def _folder(root: Path, index: int, port: int, slots: tuple[SlotRange, ...] | None) -> None:
    folder = root / f"shard-{index}"
    folder.mkdir(parents=True)
    offsets = {} if slots is None else {"slots": slots_record(slots)}
    (folder / "ledger.json").write_text(json.dumps(
        {"run": {"source": _ep(port).display(), "shard": index}, "offsets": offsets}))
    (folder / "applied.json").write_text(json.dumps({"port": port}))


def _applied_port(root: Path, index: int) -> int:
    return int(json.loads((root / f"shard-{index}" / "applied.json").read_text())["port"])


A, B, C = (SlotRange(0, 5460),), (SlotRange(5461, 10922),), (SlotRange(10923, 16383),)


def test_a_failover_keeps_every_folder_in_place(tmp_path: Path) -> None:
    for i, (port, slots) in enumerate([(7000, A), (7001, B), (7002, C)]):
        _folder(tmp_path, i, port, slots)
    plans = plan(tmp_path, [_ep(7100), _ep(7001), _ep(7002)], [A, B, C])
    assert [(p.how, p.folder) for p in plans] == [(REUSE, 0), (REUSE, 1), (REUSE, 2)]
    assert "its primary is now redis://127.0.0.1:7100 (was redis://127.0.0.1:7000" \
        in plans[0].why
    assert plans[1].why == plans[2].why == "unchanged"
    arrange(tmp_path, plans)
    assert [_applied_port(tmp_path, i) for i in range(3)] == [7000, 7001, 7002]


def test_a_resharding_moves_kept_folders_and_removes_the_others(tmp_path: Path) -> None:
    """A new primary takes slots 0-100 from the first: it sorts first, so the untouched
    shards' folders move one place down; the resharded shards load into fresh folders."""
    for i, (port, slots) in enumerate([(7000, A), (7001, B), (7002, C)]):
        _folder(tmp_path, i, port, slots)
    (tmp_path / ".shard-9.resume").mkdir()  # left by a run killed while arranging
    shards = [_ep(7003), _ep(7000), _ep(7001), _ep(7002)]
    slots = [(SlotRange(0, 100),), (SlotRange(101, 5460),), B, C]
    plans = plan(tmp_path, shards, slots)
    assert [(p.how, p.folder) for p in plans] == [(LOAD, None), (LOAD, None), (REUSE, 1),
                                                  (REUSE, 2)]
    assert plans[0].why == plans[1].why == "its slots changed (a resharding)"
    assert plans[2].why == "unchanged; its folder was shard-1"
    arrange(tmp_path, plans)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-2", "shard-3"]
    assert [_applied_port(tmp_path, i) for i in (2, 3)] == [7001, 7002]


def test_a_folder_without_recorded_slots_is_kept_for_the_same_primary(tmp_path: Path) -> None:
    _folder(tmp_path, 0, 7000, None)  # written before the slots were recorded
    _folder(tmp_path, 1, 7001, None)
    plans = plan(tmp_path, [_ep(7000), _ep(7005)], [A, (SlotRange(5461, 16383),)])
    assert [(p.how, p.folder) for p in plans] == [(REUSE, 0), (LOAD, None)]
    assert plans[1].why == "its primary changed and its folder recorded no slots (an older run)"
    arrange(tmp_path, plans)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-0"]
