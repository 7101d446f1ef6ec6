"""Resharding during a migration (issue 19): a slot of the cluster target migrated while
kvmigrate writes into it (-ASK, -TRYAGAIN, -MOVED followed, nothing lost), and a slot of the
cluster source migrated while ``sync --follow`` reads it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from migrate.endpoint import raw_command
from migrate.lab.cluster import ClusterHandle
from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from migrate.protocol.cluster import router
from migrate.protocol.cluster.router import ClusterWriter
from migrate.protocol.cluster.slots import key_slot
from migrate.protocol.cluster.topology import discover
from tests.cluster.test_cluster_sync import ClusterWriter as SourceWriter
from tests.cluster.test_cluster_sync import _start_follow, fill
from tests.cluster.test_router import (
    _finish_migration,
    _migrate_keys,
    _owner,
    _start_migration,
    cluster_client,
)
from tests.faults.outcomes import Outcome, record
from tests.helpers import run_cli
from tests.sync.writes import Follow, follow, stop

LabCluster = Callable[..., ClusterHandle]


def _migrate_named(handle: ClusterHandle, src: int, dst: int, keys: list[str]) -> None:
    raw_command(handle.nodes[src].client(), "MIGRATE", "127.0.0.1", handle.nodes[dst].port,
                "", 0, 5000, "KEYS", *keys)


def _finish_move(handle: ClusterHandle, slot: int, src: int, dst: int,
                 writer: ClusterWriter) -> None:
    """Once the writer resent a MULTI block whose keys are split between the slot's two
    nodes (-ASK, then -TRYAGAIN) more than REDIRECT_ROUNDS times, move the slot's remaining
    keys, then give it to ``dst``. It waits on a figure of the writer, never on the writer
    itself (which waits for this move)."""
    deadline = time.monotonic() + 60
    while writer._counts.retried <= router.REDIRECT_ROUNDS // 2:  # past 30 resends
        assert time.monotonic() < deadline, "the writer did not keep retrying -TRYAGAIN"
        time.sleep(0.01)
    _migrate_keys(handle, slot, src, dst, pause=0.02)
    _finish_migration(handle, slot, src, dst)


def _write_round(writer: ClusterWriter, rounds: int) -> None:
    for i in range(300):
        writer.send("SET", f"{{mv}}:{i}", f"r{rounds}")
        writer.send("SET", f"other:{i}", f"r{rounds}")
        if i % 50 == 0:
            writer.send("HINCRBY", "{mv}:counter", f"n{i}", 1)
    writer.send("MULTI")
    writer.send("INCR", "{mv}:tx")
    writer.send("RPUSH", "{mv}:list", rounds)
    writer.send("EXEC")


def test_a_slot_moved_while_writing_loses_nothing(lab_cluster: LabCluster,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # short pauses between retries: the block is resent past REDIRECT_ROUNDS quickly
    monkeypatch.setattr(router, "RETRY_SLEEP_S", 0.001)
    monkeypatch.setattr(router, "MAX_RETRY_SLEEP_S", 0.005)
    handle = lab_cluster("valkey-8.0", shards=3)
    slot = key_slot(b"{mv}")
    src = _owner(handle, slot)
    dst = (src + 1) % 3
    rounds = 0
    with ClusterWriter(handle.endpoint) as writer:
        for rounds in range(2):
            _write_round(writer, rounds)
        assert writer.flush().errors == 0
        # the slot half moved: 20 of its keys and the block's counter are on dst, so writing
        # them meets -ASK, and the block (counter on dst, list on src) -ASK then -TRYAGAIN
        # until the mover, started once the writer met it, moves the rest
        _start_migration(handle, slot, src, dst)
        _migrate_named(handle, src, dst, [f"{{mv}}:{i}" for i in range(20)] + ["{mv}:tx"])
        mover = threading.Thread(target=_finish_move, args=(handle, slot, src, dst, writer))
        mover.start()
        rounds = 2
        _write_round(writer, rounds)
        during = writer.flush()
        assert during.errors == 0, during.first_errors
        assert during.asked >= 21 and during.retried > router.REDIRECT_ROUNDS // 2
        while rounds < 5 or mover.is_alive():
            rounds += 1
            _write_round(writer, rounds)
        rounds += 1
        mover.join()
        writer.send("SET", "{mv}:last", "done")  # after the move: -MOVED, then the new node
        stats = writer.flush()
    assert stats.errors == 0, stats.first_errors
    assert stats.sent == stats.replied
    assert stats.asked > 0 and stats.moved > 0 and stats.refreshes >= 1
    client = cluster_client(handle)
    last = f"r{rounds - 1}".encode()
    assert client.mget([f"{{mv}}:{i}" for i in range(300)]) == [last] * 300
    assert all(client.get(f"other:{i}") == last for i in range(0, 300, 7))
    assert client.hgetall("{mv}:counter") == {f"n{i}".encode(): str(rounds).encode()
                                              for i in range(0, 300, 50)}
    assert client.get("{mv}:tx") == str(rounds).encode()  # each block ran exactly once
    assert client.lrange("{mv}:list", 0, -1) == [str(r).encode() for r in range(rounds)]
    assert client.get("{mv}:last") == b"done"
    assert discover(handle.endpoint).shard_for_slot(slot).primary.endpoint.port == \
        handle.nodes[dst].port  # type: ignore[union-attr]
    count = raw_command(handle.nodes[dst].client(), "CLUSTER", "COUNTKEYSINSLOT", slot)
    assert count == 300 + 4
    record(Outcome("a slot of the cluster target migrated while writing", "cluster writer",
                   "continued", acknowledged=stats.replied, lost=0,
                   note=f"{stats.asked} -ASK, {stats.retried} -TRYAGAIN, {stats.moved} -MOVED "
                        "followed; every key and MULTI block once"))


# --- the cluster source resharded mid-sync ----------------------------------------------------

def writer_waits(writer: SourceWriter, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(writer.acks) < count:
        assert time.monotonic() < deadline, f"the writer did not reach {count} writes"
        time.sleep(0.01)


def _lacking(target: ServerProcess, keys: list[str]) -> list[str]:
    """The keys of ``keys`` the target lacks (``w:<n>`` holds n)."""
    client = target.client()
    values = client.mget(keys) if keys else []
    return [k for k, v in zip(keys, values, strict=True) if v != k.split(":")[1].encode()]


def _stopped_by(fault: Callable[[], object], proc: subprocess.Popen[str],
               writer: SourceWriter, thread: threading.Thread) -> tuple[str, float]:
    """Once the writer wrote 50 keys, ``fault``; the sync must then stop with exit 4 (the
    writer goes on; it is stopped here only when this fails). (Its stderr, when the fault
    began as time.monotonic().)"""
    try:
        writer_waits(writer, 50)
        began = time.monotonic()
        fault()
        _out, err = proc.communicate(timeout=90)
    except BaseException:
        writer.stop.set()
        thread.join(10)
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, err[-3000:]
    return err, began


def _caught_up(run: Follow, target: ServerProcess, keys: list[str]) -> None:
    """Wait until the target holds every key of ``keys`` (the resumed run still follows)."""
    deadline = time.monotonic() + 90
    while lacking := _lacking(target, keys):
        assert run.poll() is None, run.err.read_text()[-3000:]
        assert time.monotonic() < deadline, \
            f"{len(lacking)} acknowledged writes missing, e.g. {lacking[:5]}"
        time.sleep(0.1)


def _resumed_to_the_end(source: ClusterHandle, target: ServerProcess, state: Path,
                        writer: SourceWriter, thread: threading.Thread,
                        keys: list[str], seed: ServerProcess | None = None
                        ) -> tuple[str, list[str]]:
    """``sync --follow --resume`` while the writer goes on; once it follows and 100 more
    writes were acknowledged, the writer stops, the target must hold every acknowledged
    write, the run stops (exit 0) and ``verify --full`` finds the two equal (no key more,
    none less). ``seed``: the node given as --source (by default the one the run was
    started with). (stderr of the resumed run, every acknowledged write.)"""
    try:
        resumed = follow(seed or source, target, state,  # type: ignore[arg-type]
                         "--to", "valkey", "--resume")
        writer_waits(writer, len(writer.acks) + 100)
    finally:
        writer.stop.set()
        thread.join(10)
    acked = keys + writer.acks
    _caught_up(resumed, target, acked)
    code, _out, err = stop(resumed)
    assert code == 0, err[-3000:]
    full = run_cli("verify", "--source", source.url, "--target", target.url, "--full")
    assert full.code == 0, full.output[-3000:]
    return err, acked


def test_a_slot_of_the_cluster_source_migrated_mid_sync(lab_cluster: LabCluster, lab: Fleet,
                                                        tmp_path: Path) -> None:
    """A slot of a 3-primary Redis 7.0 source moves to another primary while ``sync
    --follow`` runs under a writer: the sync stops at the first migrated key (exit 4, one
    line naming the resharding and --resume). Once the move is done, ``--resume`` (the
    writer still writing) reads the topology again: the two shards whose slots changed
    delete their slots' keys on the target and load again, the third continues by partial
    resync; the target holds every acknowledged write and nothing more."""
    source = lab_cluster("redis-7.0", shards=3)
    target = lab.start("valkey-8.0")
    slot = key_slot(b"{mv}")
    src = _owner(source, slot)
    dst = (src + 1) % 3
    rc = RedisCluster(host="127.0.0.1", port=source.nodes[0].port)
    moving = [f"{{mv}}:{i}" for i in range(40)]
    for key in moving:
        rc.set(key, key.split(":")[1])
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)  # type: ignore[arg-type]
    writer = SourceWriter(source)
    thread = writer.start()

    def move() -> None:
        _start_migration(source, slot, src, dst)
        _migrate_keys(source, slot, src, dst, pause=0.02)
        _finish_migration(source, slot, src, dst)

    err, began = _stopped_by(move, proc, writer, thread)
    stopped_s = time.monotonic() - began
    line = err.strip().splitlines()[-1]
    assert line.startswith("kvmigrate: error: shard ") and "being resharded" in line, line
    assert "RESTORE-ASKING of key '{mv}:" in line and "run again with --resume" in line, line
    for i in range(40, 60):  # written on the slot's new owner
        rc.set(f"{{mv}}:{i}", i)
        moving.append(f"{{mv}}:{i}")
    err, acked = _resumed_to_the_end(source, target, state, writer, thread, moving)
    recover_s = time.monotonic() - began
    for shard in (src, dst):
        assert f"shard {shard}: its slots changed (a resharding): deleted the " in err, err
    assert err.count("loading it again") == 2, err[-3000:]
    assert err.count("partial resync accepted") == 1, err[-3000:]
    ledger = json.loads((state / "ledger.json").read_text())
    owner = [t for t in ledger["offsets"]["topology"]
             if any(a <= slot <= b for a, b in t["slots"])]
    assert [t["source"] for t in owner] == [f"redis://127.0.0.1:{source.nodes[dst].port}"]
    record(Outcome("a slot of the cluster source migrated mid-sync", "replica (cluster)",
                   "stopped: exit 4, 'shard N (...): the source cluster is being resharded "
                   "(... RESTORE-ASKING of key ...); kvmigrate does not follow a resharding'; "
                   "resumed (--resume)", acknowledged=len(acked), lost=0,
                   recover_s=round(recover_s, 1),
                   note=f"stopped {stopped_s:.1f} s after the move began (at its first "
                        "migrated key); the resume loaded the 2 resharded shards again (their "
                        "slots' keys deleted first), the third by partial resync; time "
                        "includes their full sync"))


def test_a_failover_of_the_cluster_source_stops_then_resumes(lab_cluster: LabCluster,
                                                            lab: Fleet,
                                                            tmp_path: Path) -> None:
    """``CLUSTER FAILOVER`` on shard 0's replica while ``sync --follow`` reads a 3-primary
    Redis 7.0 source under a writer: the topology check stops the sync (exit 4, one line
    naming a failover and --resume). ``--resume``, the writer still writing, reads the
    topology again: every shard's slots are unchanged, so each continues from its folder,
    shard 0 from its new primary by partial resync; nothing is loaded again, the target
    holds every acknowledged write and nothing more. The resume is given the promoted node
    as --source (another node of the same cluster than the run's)."""
    source = lab_cluster("redis-7.0", shards=3, replicas=1)
    target = lab.start("valkey-8.0")
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)  # type: ignore[arg-type]
    writer = SourceWriter(source)
    thread = writer.start()
    promoted = source.replicas[0][0]
    err, since = _stopped_by(lambda: raw_command(promoted.client(), "CLUSTER", "FAILOVER"),
                             proc, writer, thread)
    line = err.strip().splitlines()[-1]
    assert "changed primaries (a failover)" in line and "--resume" in line, line
    err, acked = _resumed_to_the_end(source, target, state, writer, thread, [], promoted)
    assert f"resume: {promoted.url} is a node of the recorded cluster of {source.url}" in err
    recover_s = time.monotonic() - since
    assert f"shard 0: its slots are unchanged, its primary is now " \
           f"redis://127.0.0.1:{promoted.port}" in err, err[-3000:]
    assert err.count("partial resync accepted") == 3, err[-3000:]
    assert "loading it again" not in err and "FULLRESYNC" not in err, err[-3000:]
    assert promoted.client().info("stats")["sync_full"] == 0
    ledger = json.loads((state / "ledger.json").read_text())
    assert ledger["run"]["shards"][0] == f"redis://127.0.0.1:{promoted.port}"
    assert ledger["run"]["source"] == promoted.url
    record(Outcome("the cluster source failed over (CLUSTER FAILOVER on a replica)",
                   "replica (cluster)",
                   "stopped: exit 4, 'the source cluster changed primaries (a failover) "
                   "during the sync'; resumed (--resume)", acknowledged=len(acked), lost=0,
                   recover_s=round(recover_s, 1),
                   note="every shard resumed from its folder by partial resync (the promoted "
                        "one from its new primary): nothing loaded again"))


def test_an_empty_slot_of_the_cluster_source_moved_mid_sync(lab_cluster: LabCluster,
                                                           lab: Fleet, tmp_path: Path) -> None:
    """A slot without keys moves (no key travels, so no stream shows it): the topology
    check while following (every 10 s) stops the sync, naming a resharding apart from a
    failover; ``--resume`` loads the two shards whose slots changed again, the third
    continues, and the two clusters are equal after it."""
    source = lab_cluster("redis-7.0", shards=3)
    target = lab.start("valkey-8.0")
    slot = key_slot(b"{empty}")
    src = _owner(source, slot)
    fill(source, 300)
    state = tmp_path / "state"
    proc = _start_follow(source, target, state)  # type: ignore[arg-type]
    try:
        _finish_migration(source, slot, src, (src + 1) % 3)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    line = err.strip().splitlines()[-1]
    assert proc.returncode == 4, err[-3000:]
    assert line.startswith("kvmigrate: error: the source cluster resharded (slots moved "
                           "between its primaries) during the sync"), line
    assert "run again with --resume" in line, line
    resumed = run_cli("sync", "--source", source.url, "--target", target.url, "--to",
                      "valkey", "--state", str(state), "--resume")
    assert resumed.code == 0, resumed.output[-3000:]
    assert resumed.stderr.count("its slots changed (a resharding)") == 2, resumed.stderr
    assert resumed.stderr.count("partial resync accepted") == 1, resumed.stderr
    full = run_cli("verify", "--source", source.url, "--target", target.url, "--full")
    assert full.code == 0, full.output[-3000:]
    record(Outcome("an empty slot of the cluster source moved mid-sync", "replica (cluster)",
                   "stopped: exit 4, 'the source cluster resharded (slots moved between its "
                   "primaries) during the sync (now: ...); kvmigrate does not follow that'; "
                   "resumed (--resume)", acknowledged=0, lost=0,
                   note="seen by the topology check (every 10 s while following); the resume "
                        "loaded the 2 resharded shards again, the third by partial resync; "
                        "verify --full clean"))
