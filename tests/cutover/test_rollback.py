"""Rollback on real servers: writes taken by the new primary come back to the old one."""

import pytest

from migrate.cutover.fence import fence, is_fenced
from migrate.cutover.rollback import choose_path, rollback_native
from migrate.cutover.run import CutoverOptions
from migrate.errors import KvmError
from migrate.lab.fleet import Fleet
from migrate.serverinfo import ServerIdentity


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
