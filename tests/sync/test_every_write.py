"""Every write the source accepted arrives on the target, or the sync stops loudly: real
write commands run on a real source while ``sync --follow`` follows it, then the two servers
are compared key by key (tests/sync/writes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate.endpoint import raw_command
from migrate.lab.fleet import Fleet
from migrate.lab.server import ServerProcess
from tests.sync import writes
from tests.sync.writes import COMMON, OTHER_DB, converge, follow, run, stop, wait_applied

# Field-TTL commands as Redis 8 and Valkey 9 clients send them (Redis 8 replicates them as
# HSETEX KEEPTTL / HPERSIST / HPEXPIREAT / HDEL; Valkey 9 may send them as they are).
VALUE_CARRYING_FIELD_COMMANDS = [
    ["HSET", "fh:1", "f", "1.5"], ["HINCRBYFLOAT", "fh:1", "f", "2"],
    ["HSETEX", "fh:2", "FIELDS", 1, "a", "b"], ["HSETEX", "fh:2", "KEEPTTL", "FIELDS", 1,
                                                  "c", "d"],
    ["HSET", "fh:3", "a", "1", "b", "2"], ["HGETDEL", "fh:3", "FIELDS", 1, "a"],
    ["HGETEX", "fh:3", "PERSIST", "FIELDS", 1, "b"],
    ["EVAL", "return redis.call('HINCRBYFLOAT', KEYS[1], 'f', 1)", 1, "fh:1"],
]
FIELD_TTL_COMMANDS = [
    ["HSETEX", "ft:1", "PX", 900000, "FIELDS", 1, "a", "b"],
    ["HSET", "ft:2", "a", "1", "b", "2"], ["HPEXPIRE", "ft:2", 800000, "FIELDS", 1, "a"],
    ["HGETEX", "ft:2", "EX", 700, "FIELDS", 1, "b"], ["HPERSIST", "ft:2", "FIELDS", 1, "a"],
]


def _sync_and_compare(source: ServerProcess, target: ServerProcess, state: Path,
                      *extra: str, mode: str = "auto", skip: frozenset[str] = frozenset(),
                      field_values: bool = False, field_ttls: bool = False
                      ) -> tuple[list[str], int, str]:
    """Every write of the corpus on the source while a sync follows it; then the
    differences between the two servers, the sync's exit code and its stderr."""
    proc = follow(source, target, state, *extra, mode=mode)
    try:
        run(source, [c for c in COMMON if c[0] not in skip])
        run(source, OTHER_DB, db=2)
        writes.dump_restore(source)
        if field_values:
            run(source, VALUE_CARRYING_FIELD_COMMANDS)
        if field_ttls:
            run(source, FIELD_TTL_COMMANDS)
        wait_applied(source, target)
        diff = converge(source, target)
    finally:
        code, _, stderr = stop(proc)
    return diff, code, stderr


@pytest.mark.parametrize(("source_spec", "target_spec", "mode"), [
    ("redis-8", "valkey-8.0", "replica"),
    ("redis-8", "valkey-8.0", "auto"),  # auto picks proxy
    ("redis-8", "valkey-9", "proxy"),
    ("valkey-9", "valkey-8.0", "replica"),
    ("valkey-9", "valkey-8.0", "proxy"),
    ("redis-7.0", "valkey-8.0", "replica"),
    ("redis-7.0", "valkey-8.1", "auto"),  # auto picks native
])
def test_every_write_arrives(lab: Fleet, tmp_path: Path, source_spec: str, target_spec: str,
                             mode: str) -> None:
    source, target = lab.start(source_spec), lab.start(target_spec)
    source.client().set("before", "the sync")
    diff, code, stderr = _sync_and_compare(
        source, target, tmp_path / "state", mode=mode,
        field_values=source_spec in ("redis-8", "valkey-9"),
        field_ttls=target_spec == "valkey-9")
    assert diff == []
    assert code == 0, stderr
    status = json.loads((tmp_path / "state.json").read_text())["status"]
    assert "WARNING" not in stderr
    state = tmp_path / "state"  # customer data: private folders and files
    assert oct(state.stat().st_mode)[-3:] == "700"
    assert {oct(p.stat().st_mode)[-3:] for p in state.rglob("*") if p.is_file()} == {"600"}
    if mode != "auto" or source_spec != "redis-7.0":  # native mode never sees the stream
        # the end-of-sync sample looked at written keys, not only random ones
        written = json.loads((tmp_path / "state" / "written-keys.json").read_text())
        assert [0, b"h:1".hex()] in written
        assert oct((tmp_path / "state" / "written-keys.json").stat().st_mode)[-3:] == "600"
    assert status.get("mode") == ("proxy" if source_spec == "redis-8" and mode == "auto"
                                  else "native" if mode == "auto" else mode)


@pytest.mark.parametrize(("source_spec", "mode", "command", "loss_class"), [
    ("redis-8", "replica", ["HPEXPIRE", "h", 900000, "FIELDS", 1, "f"], "field-ttl"),
    ("redis-8", "proxy", ["HSETEX", "h", "EX", 900, "FIELDS", 1, "f", "v"], "field-ttl"),
    ("redis-8", "proxy", ["VADD", "vs", "VALUES", 2, 1, 2, "e1"], "vector-set"),
    ("valkey-9", "replica", ["HSETEX", "h", "PX", 900000, "FIELDS", 1, "f", "v"], "field-ttl"),
])
def test_a_write_the_target_cannot_hold_stops_the_sync(lab: Fleet, tmp_path: Path,
                                                      source_spec: str, mode: str,
                                                      command: list, loss_class: str) -> None:
    source, target = lab.start(source_spec), lab.start("valkey-8.0")
    source.client().hset("h", "f", "before")
    proc = follow(source, target, tmp_path / "state", mode=mode)
    run(source, [["SET", "k", "1"], command, ["SET", "after", "1"]])
    proc.wait(60)
    code, _, stderr = stop(proc)
    last = stderr.strip().splitlines()[-1]
    assert code == 4, stderr
    # named as the source replicated it (Redis 8: HPEXPIRE as HPEXPIREAT, HSETEX EX as
    # HSETEX PXAT)
    assert last.startswith("kvmigrate: error: the target cannot take "), last
    assert f" on key '{command[1]}' in db 0, source offset " in last
    assert f"--allow-loss {loss_class}" in last
    assert target.client().get("k") == b"1"  # what came before it arrived
    assert target.client().get("after") is None  # nothing after it was applied

    if mode == "replica":  # resumable: once allowed, the rest arrives and the loss is counted
        resumed = follow(source, target, tmp_path / "state", "--resume",
                         "--allow-loss", loss_class, mode=mode)
        wait_applied(source, target)
        code, stdout, stderr = stop(resumed)
        assert code == 0, stderr
        assert "MATCH except 1 known difference(s) allowed by --allow-loss" in stdout
        assert target.client().get("after") == b"1"
        assert target.client().hget("h", "f") == source.client().hget("h", "f")
        status = json.loads((tmp_path / "state.json").read_text())["status"]
        assert sum(status["dropped_commands"].values()) == 1


@pytest.mark.parametrize(("command", "said"), [
    (["SWAPDB", 2, 3], "SWAPDB"), (["FLUSHALL"], "FLUSHALL"), (["FLUSHDB"], "FLUSHDB"),
    (["FUNCTION", "LOAD", "#!lua name=late\nredis.register_function('f', function() "
      "return 1 end)"], "FUNCTION LOAD"),
    (["FUNCTION", "DELETE", "early"], "FUNCTION DELETE"),
    (["FUNCTION", "FLUSH"], "FUNCTION FLUSH"),
    (["FUNCTION", "RESTORE", "<dump>", "REPLACE"], "FUNCTION RESTORE"),
])
def test_what_scan_mode_cannot_see_stops_the_sync(lab: Fleet, tmp_path: Path, command: list,
                                                  said: str) -> None:
    """Commands that send no keyspace event: a scan-mode sync cannot follow them."""
    source, target = lab.start("redis-7.0", extra_args=["--notify-keyspace-events", "KEA"]), \
        lab.start("valkey-8.0")
    source.client(db=2).set("two", "2")
    source.client(db=3).set("three", "3")
    run(source, [["FUNCTION", "LOAD", "#!lua name=early\nredis.register_function('e', "
                  "function() return 1 end)"]])
    dump = raw_command(source.client(), "FUNCTION", "DUMP")
    proc = follow(source, target, tmp_path / "state", mode="scan")
    run(source, [[dump if a == "<dump>" else a for a in command]])
    proc.wait(60)
    code, _, stderr = stop(proc)
    assert code == 4, stderr
    assert f"the source ran {said} during a scan-mode sync" in stderr.strip().splitlines()[-1]


# Dragonfly lacks GEOSEARCHSTORE, FUNCTION/FCALL, and refuses expiries more than ~8.5 years
# ahead (docs/compatibility.md 'Commands Dragonfly lacks'): those are the stops below.
DRAGONFLY_LACKS = {"GEOSEARCHSTORE", "FUNCTION", "FCALL", "PEXPIREAT"}


@pytest.mark.parametrize("source_spec", ["redis-7.0", "redis-8"])
def test_every_write_arrives_on_dragonfly(dragonfly_installed: object, lab: Fleet,
                                          tmp_path: Path, source_spec: str) -> None:
    source, target = lab.start(source_spec), lab.start("dragonfly")
    diff, code, stderr = _sync_and_compare(source, target, tmp_path / "state", "--to",
                                           "dragonfly", skip=DRAGONFLY_LACKS,
                                           field_values=source_spec == "redis-8")
    assert diff == []
    assert code == 0, stderr
    status = json.loads((tmp_path / "state.json").read_text())["status"]
    assert status["mode"] == "replica"  # auto: neither native nor proxy can see refusals


@pytest.mark.parametrize(("command", "said"), [
    (["GEOSEARCHSTORE", "g:near", "g:1", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km"],
     "the target cannot take GEOSEARCHSTORE on key 'g:near' in db 0, source offset "),
    (["SWAPDB", 0, 1], "the target cannot take SWAPDB on db 0, source offset "),
    (["PEXPIREAT", "g:1", 4102444800000],
     "the target refused PEXPIREAT on key 'g:1' in db 0 (source offset "),
])
def test_what_dragonfly_cannot_take_stops_the_sync(dragonfly_installed: object, lab: Fleet,
                                                   tmp_path: Path, command: list,
                                                   said: str) -> None:
    source, target = lab.start("redis-7.0"), lab.start("dragonfly")
    run(source, [["GEOADD", "g:1", 13.36, 38.11, "Palermo"]])
    proc = follow(source, target, tmp_path / "state", "--to", "dragonfly")
    run(source, [command, ["SET", "after", "1"]])
    proc.wait(60)
    code, _, stderr = stop(proc)
    assert code == 4, stderr
    assert said in stderr.strip().splitlines()[-1]
    if "refused" in said:
        # answered with an error: commands after it in the same pipelined batch may have
        # been applied, so no offset is exact and --resume loads again from scratch
        assert not (tmp_path / "state" / "applied.json").exists()
    else:  # refused before it was sent: nothing after it was applied
        assert target.client().get("after") is None
