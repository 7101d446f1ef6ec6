"""Rollback on real servers: writes taken by the new primary come back to the old one."""

import json
import os
import stat
from pathlib import Path

import pytest

from migrate.cutover.fence import fence, is_fenced
from migrate.cutover.rollback import choose_path, rollback_native
from migrate.cutover.run import CutoverOptions
from migrate.errors import KvmError, UsageError
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.serverinfo import ServerIdentity
from migrate.verify.model import HEARTBEAT_KEY
from migrate.verify.runner import VerifyOptions, verify
from tests.cutover.test_cutover_native import FailoverWriter
from tests.helpers import run_cli


def test_choose_path_by_rdb_versions() -> None:
    redis70 = ServerIdentity("redis", (7, 0, 15), "7.0.15")
    redis8 = ServerIdentity("redis", (8, 0, 6), "8.0.6")
    valkey80 = ServerIdentity("valkey", (8, 0, 1), "8.0.1")
    dragonfly = ServerIdentity("dragonfly", (1, 40), "1.40")
    assert not choose_path(redis70, valkey80).native  # RDB 11 > 10
    assert choose_path(redis8, valkey80).native  # Redis 8 loads RDB 11
    assert not choose_path(redis8, dragonfly).native


def test_rollback_brings_new_writes_back_to_the_old_primary(lab: Fleet) -> None:
    # After a (logical) migration redis-8 -> valkey-8.0 and its cut-over: the old primary is
    # fenced and the new one has taken writes. Valkey 8.0 writes RDB 11, which Redis 8 loads,
    # so the way back is native. (No lab pair replicates natively in both directions:
    # Redis 8 writes RDB 12, which Valkey 8.0 and, seen here, 8.1.1 even with
    # rdb-version-check relaxed refuse.)
    old, new = lab.start("redis-8"), lab.start("valkey-8.0")
    old.client().set("before", "cutover")
    new.client().set("before", "cutover")
    record = fence(old.client())
    new.client().set("after", "cutover")  # writes taken by the new primary
    new.client().hset("h", mapping={"a": 1, "b": 2})

    back = rollback_native(old.endpoint, new.endpoint, CutoverOptions(),
                           fence_record=record)
    assert back.ok
    oc = old.client()
    assert oc.info("replication")["role"] == "master"
    assert oc.get("after") == b"cutover" and oc.get("before") == b"cutover"
    assert oc.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert not is_fenced(oc)
    assert oc.set("writable-again", 1)
    assert is_fenced(new.client())  # now the new one refuses writes


def test_rollback_dry_run_changes_nothing(lab: Fleet) -> None:
    old, new = lab.start("redis-8"), lab.start("valkey-8.0")
    record = fence(old.client())
    plan = rollback_native(old.endpoint, new.endpoint, CutoverOptions(dry_run=True),
                           fence_record=record)
    assert plan.dry_run and plan.plan
    assert old.client().info("replication")["role"] == "master"
    assert is_fenced(old.client()) and not is_fenced(new.client())


def test_rollback_refuses_native_when_the_old_primary_cannot_load_the_rdb(lab: Fleet) -> None:
    old, new = lab.start("redis-7.0"), lab.start("valkey-8.0")
    with pytest.raises(KvmError) as info:
        rollback_native(old.endpoint, new.endpoint, CutoverOptions(), fence_record=None)
    assert "RDB 11" in info.value.one_line() and "logical path" in info.value.one_line()
    assert old.client().info("replication")["role"] == "master"


def test_logical_rollback_valkey_8_to_redis_7_under_a_failover_writer(lab: Fleet,
                                                                      tmp_path: Path) -> None:
    """sync (native) redis-7.0 -> valkey-8.0, cut-over, writes on the new primary (listpack
    sets and streams with groups: RDB types Redis 7.0 cannot load), then `kvmigrate rollback`
    takes the logical path (Valkey 8.0 writes RDB 11 > 10) under a writer that fails over on
    NOREPLICAS: every acknowledged write is on the old primary, which is writable again."""
    old, new = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(old.endpoint, keys=1500)
    state = tmp_path / "st"
    synced = run_cli("sync", "--source", old.url, "--target", new.url, "--to", "valkey",
                     "--mode", "native", "--state", str(state))
    assert synced.code == 0, synced.output[-2000:]
    cut = run_cli("cutover", "--state", str(state), "--yes")
    assert cut.code == 0, cut.output[-2000:]
    nc = new.client()
    nc.sadd("after:set", "a", "b", "c")  # listpack set on Valkey 8 (RDB type 20)
    nc.xadd("after:stream", {"f": "v"})
    nc.xgroup_create("after:stream", "g", id="0")
    nc.xreadgroup("g", "c1", {"after:stream": ">"})  # a consumer with a pending entry
    writer = FailoverWriter(new, old)  # writes to the new primary until it is fenced
    thread = writer.start()
    writer.wait_acks(30)
    back = run_cli("rollback", "--state", str(state), "--yes", "--format", "json")
    if back.code == 0:
        writer.wait_acks(30, on="new")  # the writer's second server: the old primary
    writer.stop.set()
    thread.join(10)
    assert back.code == 0, back.output[-3000:]
    record = json.loads(back.stdout)
    assert record["ok"] and 0 < record["paused_ms"] < 2000
    assert "logical path" in back.stderr
    oc = old.client()
    assert oc.info("replication")["role"] == "master"
    assert not is_fenced(oc) and is_fenced(nc)
    on_new = [a for a in writer.acks if a.server == "old"]  # writer's first server: new
    assert on_new and [a for a in writer.acks if a.server == "new"], writer.errors[:3]
    values = oc.mget([a.key for a in writer.acks])
    lost = [a.key for a, v in zip(writer.acks, values, strict=True) if v != str(a.value).encode()]
    assert not lost, lost[:10]
    assert max(a.at for a in on_new) < record["promoted_at"]
    assert oc.smembers("after:set") == {b"a", b"b", b"c"}
    assert oc.xinfo_groups("after:stream")[0]["pending"] == 1
    # the keys written to the old primary after the switch back are the only difference
    oc.delete(*[a.key for a in writer.acks if a.server == "new"])
    report = verify(new.endpoint, old.endpoint, VerifyOptions(full=True))
    assert report.ok and report.keys_checked > 1000, report.mismatches[:5]
    assert (state / "rollback.json").exists()


def test_window_rollback_under_a_failover_writer(lab: Fleet, tmp_path: Path) -> None:
    """The window path (Dragonfly's way back, which kvmigrate cannot follow), run against a
    Valkey 8.0 new primary, whose SCAN/DUMP/PTTL/CLIENT PAUSE behave the same: its writes are
    paused for the copy, the old Redis 7.0 primary replicates the snapshot from kvmigrate
    (listpack sets and v3 streams as commands), then takes over."""
    from migrate.cutover.rollback import rollback

    old, new = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(new.endpoint, keys=1500)
    record = fence(old.client())
    writer = FailoverWriter(new, old)  # writes to the new primary until it is fenced
    thread = writer.start()
    writer.wait_acks(30)
    plan = rollback(old.endpoint, new.endpoint, CutoverOptions(dry_run=True),
                    fence_record=record, state_root=tmp_path, path="window", window_ms=30000)
    assert plan.ok and any("CLIENT PAUSE 30000 WRITE" in p for p in plan.plan)
    assert is_fenced(old.client())  # the dry run changed nothing
    result = rollback(old.endpoint, new.endpoint, CutoverOptions(), fence_record=record,
                      state_root=tmp_path, path="window", window_ms=30000)
    if result.ok:
        writer.wait_acks(30, on="new")  # the writer's second server: the old primary
    writer.stop.set()
    thread.join(10)
    assert result.ok and result.paused_ms is not None and result.paused_ms < 30000
    oc = old.client()
    assert oc.info("replication")["role"] == "master"
    assert not is_fenced(oc) and is_fenced(new.client())
    on_new = [a for a in writer.acks if a.server == "old"]
    after = [a for a in writer.acks if a.server == "new"]
    assert on_new and after, writer.errors[:3]
    values = oc.mget([a.key for a in writer.acks])
    lost = [a.key for a, v in zip(writer.acks, values, strict=True) if v != str(a.value).encode()]
    assert not lost, lost[:10]
    assert max(a.at for a in on_new) < result.promoted_at  # type: ignore[operator]
    oc.delete(*[a.key for a in after])
    report = verify(new.endpoint, old.endpoint, VerifyOptions(full=True))
    assert report.ok and report.keys_checked > 1000, report.mismatches[:5]
    assert not (tmp_path / "rollback-window").exists()  # the spool is removed


def test_window_path_needs_a_window(lab: Fleet, tmp_path: Path) -> None:
    from migrate.cutover.rollback import rollback

    old, new = lab.start("redis-7.0"), lab.start("valkey-8.0")
    with pytest.raises(UsageError) as info:
        rollback(old.endpoint, new.endpoint, CutoverOptions(), fence_record=None,
                 state_root=tmp_path, path="window")
    assert "--window-ms" in info.value.one_line()
    assert old.client().info("replication")["role"] == "master"


def _modes(root: Path) -> dict[str, str]:
    """Every folder and file under ``root`` (itself included) that is not private."""
    paths = [root, *root.rglob("*")]
    want = {True: 0o700, False: 0o600}
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths
            if stat.S_IMODE(p.stat().st_mode) != want[p.is_dir()]}


def test_logical_rollback_leaves_nothing_behind_and_names_the_servers(lab: Fleet,
                                                                      tmp_path: Path) -> None:
    """issue 18: after `kvmigrate rollback` (logical path, Valkey 8.0 back to Redis 7.0) no
    heartbeat key on either server, no spool in the state folder, every file there 0600 and
    every folder 0700; the messages name the servers by what they are (the reverse sync's
    source is the user's --target), never "asked for with --mode" (the rollback chose it),
    and no "link dropped" in a run that went well."""
    old, new = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(old.endpoint, keys=300)
    state = tmp_path / "st"
    synced = run_cli("sync", "--source", old.url, "--target", new.url, "--to", "valkey",
                     "--mode", "native", "--state", str(state))
    assert synced.code == 0, synced.output[-2000:]
    cut = run_cli("cutover", "--state", str(state), "--yes")
    assert cut.code == 0, cut.output[-2000:]
    new.client().set("after", "cutover")
    plan = run_cli("rollback", "--state", str(state), "--dry-run", "--format", "json")
    assert plan.code == 0, plan.output[-2000:]
    steps = json.loads(plan.stdout)["plan"]
    assert steps[0] == "the Valkey primary: CLIENT PAUSE 2000 WRITE", steps
    assert f"the old Redis: DEL {HEARTBEAT_KEY.decode()} (kvmigrate's own heartbeat key)" \
        in steps, steps
    assert not any(s.startswith(("source", "target")) for s in steps), steps

    back = run_cli("rollback", "--state", str(state), "--yes")
    assert back.code == 0, back.output[-3000:]
    assert old.client().get("after") == b"cutover"
    assert not old.client().exists(HEARTBEAT_KEY), "heartbeat left on the old primary"
    assert not new.client().exists(HEARTBEAT_KEY), "heartbeat left on the new primary"
    assert not (state / "rollback-sync" / "spool").exists()
    assert (state / "rollback-sync" / "ledger.json").exists()
    assert _modes(state) == {}
    assert "asked for with --mode" not in back.stderr, back.stderr
    assert "dropped" not in back.stderr, back.stderr
    assert "mode proxy: the rollback's logical path" in back.stderr, back.stderr
    assert "the source" not in back.output and "the target" not in back.output, back.output
    assert "reverse sync: the old Redis has the rewritten RDB" in back.stderr, back.stderr
    assert "the Valkey primary (" in back.stdout and "fenced" in back.stdout, back.stdout


def test_window_rollback_keeps_a_private_spool_only_when_asked(lab: Fleet,
                                                              tmp_path: Path) -> None:
    """--keep-spool keeps the window path's snapshot: in a 0700 folder, its files 0600 (the
    process's umask notwithstanding); the heartbeat key is gone from the old primary."""
    from migrate.cutover.rollback import rollback

    old, new = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(new.endpoint, keys=200)
    record = fence(old.client())
    previous = os.umask(0o022)
    try:
        result = rollback(old.endpoint, new.endpoint, CutoverOptions(), fence_record=record,
                          state_root=tmp_path / "st", path="window", window_ms=30000,
                          keep_spool=True)
    finally:
        os.umask(previous)
    assert result.ok and result.roles == ("the Valkey primary", "the old Redis")
    spool = tmp_path / "st" / "rollback-window"
    assert spool.is_dir() and any(spool.iterdir())
    assert _modes(spool) == {}
    assert not old.client().exists(HEARTBEAT_KEY)
