"""Valkey 9's atomic slot migration (``CLUSTER MIGRATESLOTS``) on the cluster source while
``sync --follow`` reads it (issue 19).

What the primaries' replication streams carry (seen on the lab's Valkey 9, and the reason
kvmigrate stops: migrate/sync/rules.py SlotsMigratedAtomically): the importing primary's
stream opens the migration with ``CLUSTER SYNCSLOTS ESTABLISH ... SLOTSRANGE a b``, then the
slots' keys as plain commands (``SET``, ``RPUSH``: the snapshot, then the writes made on the
exporting primary meanwhile, which the exporting primary's own stream carries too), then
``CLUSTER SYNCSLOTS SNAPSHOT-EOF / PAUSED / FAILOVER-GRANTED / FINISH``; the exporting
primary's stream has no marker, only one ``UNLINK`` per key once the slots moved. The test
that the streams look so is :func:`test_the_streams_of_an_atomic_slot_migration`."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import hiredis
from redis.cluster import RedisCluster

from migrate.endpoint import raw_command
from migrate.lab.cluster import ClusterHandle
from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from migrate.protocol.cluster.slots import key_slot
from migrate.sync.psync import ReplicationLink
from migrate.sync.rules import SourceResharded
from tests.cluster.test_cluster_sync import ClusterWriter, _start_follow
from tests.cluster.test_router import _owner
from tests.faults.outcomes import Outcome, record
from tests.helpers import run_cli

LabCluster = Callable[..., ClusterHandle]
SPREAD = 100  # slots on either side of {mv}'s slot that move with it
RESHARDED_HINT = SourceResharded(None, None).hint  # what to do after a resharding


def _moving_range(source: ClusterHandle, slot: int) -> tuple[int, int, int, int]:
    """(exporting primary, importing primary, first slot, last slot) of the move."""
    src = _owner(source, slot)
    held = source.ranges[src]
    return src, (src + 1) % len(source.nodes), max(held.start, slot - SPREAD), \
        min(held.end, slot + SPREAD)


def _migrate_slots(source: ClusterHandle, src: int, dst: int, first: int, last: int) -> None:
    node_id = raw_command(source.nodes[dst].client(), "CLUSTER", "MYID")
    node_id = node_id.decode() if isinstance(node_id, bytes) else str(node_id)
    assert raw_command(source.nodes[src].client(), "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE",
                       first, last, "NODE", node_id) in (b"OK", "OK")


def _migration_state(node: ServerProcess) -> str | None:
    jobs = raw_command(node.client(), "CLUSTER", "GETSLOTMIGRATIONS")
    assert isinstance(jobs, list)
    if not jobs:
        return None
    state = jobs[-1][b"state"]
    return state.decode() if isinstance(state, bytes) else str(state)


def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.05)


def _commands(spool: Path) -> list[list[bytes]]:
    reader = hiredis.Reader()
    reader.feed(spool.read_bytes())
    out = []
    while (cmd := reader.gets()) is not False:
        if isinstance(cmd, list) and cmd and cmd[0].upper() not in (b"PING", b"REPLCONF"):
            out.append(cmd)
    return out


def test_the_streams_of_an_atomic_slot_migration(lab_cluster: LabCluster,
                                                 tmp_path: Path) -> None:
    """What each primary's replication stream carries during and after a MIGRATESLOTS,
    read by kvmigrate's own replication link (the facts the stop relies on)."""
    source = lab_cluster("valkey-9", shards=3)
    slot = key_slot(b"{mv}")
    src, dst, first, last = _moving_range(source, slot)
    rc = RedisCluster(host="127.0.0.1", port=source.nodes[0].port)
    for i in range(5):
        rc.set(f"{{mv}}:{i}", i)
    rc.rpush("{mv}:list", 0, 1, 2)
    links = []
    for i, node in enumerate(source.nodes):
        link = ReplicationLink(node.endpoint, tmp_path / f"spool-{i}", lambda: 0,
                               lambda _note: None)
        _how, replid, offset = link.psync(None, -1)
        link.start_full(1, replid, offset)
        link.run_in_background()
        links.append(link)
    try:
        _migrate_slots(source, src, dst, first, last)
        _until(lambda: _migration_state(source.nodes[src]) == "success", "the migration")
        rc.set("{mv}:after", "x")  # on the new owner: its stream goes on past the migration
        exported, imported = (tmp_path / f"spool-{i}" / "stream-1.bin" for i in (src, dst))
        _until(lambda: sum(c[0] == b"UNLINK" for c in _commands(exported)) == 6,
               "the exporting primary's UNLINKs")
        _until(lambda: [b"SET", b"{mv}:after", b"x"] in _commands(imported),
               "the importing primary's write after the migration")
        streams = {src: _commands(exported), dst: _commands(imported)}
    finally:
        for link in links:
            link.close()
    moved = {f"{{mv}}:{i}".encode() for i in range(5)} | {b"{mv}:list"}
    # the exporting primary: an UNLINK per key it gave away, and nothing else of the move
    assert {c[1] for c in streams[src] if c[0] == b"UNLINK"} == moved
    assert not [c for c in streams[src] if c[0].upper() == b"CLUSTER"]
    # the importing primary: ESTABLISH first, the keys as plain commands, FINISH
    importing = streams[dst]
    assert importing[0][:3] == [b"CLUSTER", b"SYNCSLOTS", b"ESTABLISH"]
    assert [str(first).encode(), str(last).encode()] == \
        importing[0][importing[0].index(b"SLOTSRANGE") + 1:][:2]
    steps = [c[2] for c in importing if c[:2] == [b"CLUSTER", b"SYNCSLOTS"]]
    assert steps[0] == b"ESTABLISH" and b"SNAPSHOT-EOF" in steps and b"FINISH" in steps
    assert [b"RPUSH", b"{mv}:list", b"0", b"1", b"2"] in importing
    assert {c[1] for c in importing if c[0] == b"SET"} >= moved - {b"{mv}:list"}
    assert not [c for c in importing if c[0].upper() in (b"RESTORE", b"RESTORE-ASKING",
                                                         b"MULTI", b"DEL", b"UNLINK")]


def _servers(lab_cluster: LabCluster, lab: Fleet, keys: int
             ) -> tuple[ClusterHandle, ServerProcess, RedisCluster, list[str]]:
    """A 3-primary Valkey 9 source holding ``{mv}:0`` .. ``{mv}:<keys - 1>`` (``{mv}:<n>``
    is n), a Valkey 9 target, a cluster client and the keys' names."""
    source = lab_cluster("valkey-9", shards=3)
    rc = RedisCluster(host="127.0.0.1", port=source.nodes[0].port)
    moving = [f"{{mv}}:{i}" for i in range(keys)]
    rc.mset({k: k.split(":")[1] for k in moving})
    return source, lab.start("valkey-9"), rc, moving


def _rdb_of(node: ServerProcess, spool: Path) -> Path:
    """The RDB ``node`` sends a new replica (kvmigrate's replication link), in a file."""
    link = ReplicationLink(node.endpoint, spool, lambda: 0, lambda _note: None)
    _how, replid, offset = link.psync(None, -1)
    gen = link.start_full(1, replid, offset)
    link.run_in_background()
    try:
        _until(lambda: gen.rdb_done, "the RDB")
    finally:
        link.close()
    assert gen.rdb_path is not None
    return gen.rdb_path


def _wind_down(writer: ClusterWriter, thread: threading.Thread,
               proc: subprocess.Popen[str]) -> None:
    writer.stop.set()
    thread.join(10)
    if proc.poll() is None:
        proc.kill()


def _error_line(proc: subprocess.Popen[str], err: str) -> str:
    """The run's last line, once it ended with exit 4."""
    assert proc.returncode == 4, err[-3000:]
    return err.strip().splitlines()[-1]


def _lacking(rc: RedisCluster, target: ServerProcess, keys: list[str]) -> list[str]:
    """The keys of ``keys`` the source holds and the target lacks or holds otherwise (the
    writer's strings and hot hashes, the moved slot's strings and counter)."""
    client = target.client()
    out = []
    for key in keys:
        if key.startswith("wh:"):
            same = rc.hgetall(key) == client.hgetall(key) != {}
        else:
            same = rc.get(key) == client.get(key) is not None
        if not same:
            out.append(key)
    return out


def test_an_atomic_slot_migration_of_the_cluster_source_mid_sync(
        lab_cluster: LabCluster, lab: Fleet, tmp_path: Path) -> None:
    """A range of slots of a 3-primary Valkey 9 source moves with CLUSTER MIGRATESLOTS while
    ``sync --follow`` runs under a writer: the sync stops before the importing primary's
    first ``CLUSTER SYNCSLOTS`` (exit 4, one line naming the atomic slot migration, the
    shard's applied offset at it, a resharding's hint), and a new run with --flush-target
    once the move is done holds every acknowledged write, key by key."""
    source, target, rc, moving = _servers(lab_cluster, lab, 40)
    slot = key_slot(b"{mv}")
    src, dst, first, last = _moving_range(source, slot)
    rc.incr("{mv}:counter", 40)
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)  # type: ignore[arg-type]
    writer = ClusterWriter(source)
    thread = writer.start()
    try:
        _until(lambda: len(writer.acks) >= 50, "50 writes")
        started = time.monotonic()
        _migrate_slots(source, src, dst, first, last)
        _out, err = proc.communicate(timeout=60)
        stopped_s = time.monotonic() - started
        _until(lambda: _migration_state(source.nodes[src]) == "success", "the migration")
        for i in range(40, 60):  # written on the slots' new owner
            rc.set(f"{{mv}}:{i}", i)
            moving.append(f"{{mv}}:{i}")
        rc.incr("{mv}:counter")
        assert raw_command(source.nodes[dst].client(), "CLUSTER", "COUNTKEYSINSLOT", slot) \
            >= 61  # the slot's keys are on the new owner
    finally:
        _wind_down(writer, thread, proc)
    line = _error_line(proc, err)
    assert line.startswith(f"kvmigrate: error: shard {dst} ("), line
    assert "atomic slot migration (CLUSTER MIGRATESLOTS: CLUSTER SYNCSLOTS ESTABLISH of " \
           f"slots {first}-{last} at source offset " in line, line
    assert RESHARDED_HINT and RESHARDED_HINT in line, line  # a resharding's hint
    # stopped before the migration's first command: the shard's resume point is at it
    offset = int(line.split("at source offset ")[1].split(")")[0])
    applied = (state / f"shard-{dst}" / "applied.json").read_text()
    assert f'"offset": {offset},' in applied, applied
    again = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                    "--flush-target", "--state", str(tmp_path / "again"))
    assert again.code == 0, again.output[-3000:]
    acked = writer.acks
    hot = [f"wh:{{{i}}}" for i in range(17)] + [f"wc:{{{i}}}" for i in range(13)]
    lost = _lacking(rc, target, [*moving, "{mv}:counter", *hot, *acked])
    assert lost == [], f"{len(lost)} acknowledged writes missing, e.g. {lost[:5]}"
    in_range = sum(first <= key_slot(k.encode()) <= last for k in acked)
    assert in_range > 0  # the writer wrote into the moving slots
    record(Outcome("an atomic slot migration (Valkey 9 CLUSTER MIGRATESLOTS) of the cluster "
                   "source mid-sync", "replica (cluster)",
                   "stopped: exit 4, 'shard N (...): the source cluster is being resharded by "
                   "an atomic slot migration (CLUSTER MIGRATESLOTS: CLUSTER SYNCSLOTS "
                   "ESTABLISH of slots ...); kvmigrate does not follow a resharding'; a new "
                   "run with --flush-target continued",
                   acknowledged=len(acked) + len(moving), lost=0,
                   note=f"stopped {stopped_s:.1f} s after the move began, before the "
                        f"importing primary's first CLUSTER SYNCSLOTS ({in_range} written "
                        f"keys in the {last - first + 1} moving slots)"))


def test_a_full_sync_of_the_importing_primary_mid_migration(lab_cluster: LabCluster,
                                                           lab: Fleet, tmp_path: Path) -> None:
    """The sync starts while an atomic slot migration is under way (held before its write
    pause by Valkey's own test hook, ``DEBUG SLOTMIGRATION PREVENT-PAUSE``): the importing
    primary's RDB records the import in progress (opcode 243 under VALKEY080; its stream
    then continues the migration without the ESTABLISH). The sync stops at that record
    (exit 4, the atomic slot migration named, where it said "invalid RDB at byte 163:
    unknown opcode 243"), and the new run once the move is done holds every key."""
    source, target, rc, moving = _servers(lab_cluster, lab, 300)
    slot = key_slot(b"{mv}")
    src, dst, _first, _last = _moving_range(source, slot)
    raw_command(source.nodes[dst].client(), "CONFIG", "SET", "repl-diskless-sync-delay", 0)
    exporter = source.nodes[src].client()
    raw_command(exporter, "DEBUG", "SLOTMIGRATION", "PREVENT-PAUSE", 1)
    try:
        _migrate_slots(source, src, dst, slot, slot)
        _until(lambda: _migration_state(source.nodes[src]) == "waiting-to-pause",
               "the migration held before its pause")
        run = run_cli("sync", "--source", source.url, "--target", target.url, "--to",
                      "valkey", "--state", str(tmp_path / "state"))
        rdb = _rdb_of(source.nodes[dst], tmp_path / "spool")  # as a replica receives it
        copied = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url,
                         "--flush-target")
        held = _migration_state(source.nodes[src])
    finally:
        raw_command(exporter, "DEBUG", "SLOTMIGRATION", "PREVENT-PAUSE", 0)
    assert run.code == 4, run.output[-3000:]
    assert held == "waiting-to-pause", run.stderr[-3000:]  # still under way at the stop
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith(f"kvmigrate: error: shard {dst} ("), line
    assert "atomic slot migration (CLUSTER MIGRATESLOTS: the primary's RDB holds its import " \
           f"of slots {slot}-{slot} in progress)" in line, line
    assert RESHARDED_HINT and RESHARDED_HINT in line, line  # a resharding's hint
    # copy --from-rdb of that node's RDB is refused before anything is written
    assert copied.code == 2, copied.output[-3000:]
    assert f"was saved while its Valkey cluster node was importing slots {slot}-{slot} (an " \
           "atomic slot migration under way)" in copied.stderr, copied.stderr
    _until(lambda: _migration_state(source.nodes[src]) == "success", "the migration")
    again = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                    "--flush-target", "--state", str(tmp_path / "again"))
    assert again.code == 0, again.output[-3000:]
    lost = _lacking(rc, target, moving)
    assert lost == [], f"{len(lost)} keys missing, e.g. {lost[:5]}"
    record(Outcome("a full sync of a cluster source primary in the middle of an atomic slot "
                   "migration into it (Valkey 9)", "replica (cluster)",
                   "stopped: exit 4, 'shard N (...): the source cluster is being resharded by "
                   "an atomic slot migration (CLUSTER MIGRATESLOTS: the primary's RDB holds "
                   "its import of slots ... in progress)'; a new run with --flush-target "
                   "continued", acknowledged=len(moving), lost=0,
                   note="the migration held before its write pause (DEBUG SLOTMIGRATION "
                        "PREVENT-PAUSE); stopped at the RDB's slot-import record"))
