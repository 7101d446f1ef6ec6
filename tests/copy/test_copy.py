"""`kvmigrate copy --from-rdb` into real targets, compared key by key with the source."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from tests.copy.conftest import Source
from tests.helpers import run_cli
from tests.rdb.snapshot import differences, server_snapshot, without_consumer_times

FIELD_TTL_KEY = (0, b"seed:hash:field-ttl")


def _copy(*args: str) -> tuple[int, dict, str]:
    res = run_cli("copy", *args, "--format", "json")
    data = json.loads(res.stdout) if res.stdout.strip() else {}
    return res.code, data, res.stderr


@pytest.mark.parametrize("spec", ["valkey-8.0", "valkey-9", "redis-7.0"])
def test_copy_redis8_file_to(lab: Fleet, redis8_source: Source, spec: str) -> None:
    target = lab.start(spec)
    args = ["--from-rdb", str(redis8_source.rdb), "--target", target.url]
    field_ttl_ok = spec == "valkey-9"
    if not field_ttl_ok:  # refused up front: the target cannot hold field TTLs
        code, _, stderr = _copy(*args)
        assert code == 2 and "--skip-unsupported" in stderr
        assert target.client(0).dbsize() == 0
        args.append("--skip-unsupported")
    code, data, stderr = _copy(*args)
    source = server_snapshot(redis8_source.server.endpoint)
    copied = server_snapshot(target.endpoint)
    if field_ttl_ok:
        assert code == 0, stderr
        assert data["failed"] == 0
        assert copied[FIELD_TTL_KEY] == source[FIELD_TTL_KEY]  # HSET + HPEXPIREAT
    else:
        assert code == 4
        assert data["failed"] == 1 and "field" in next(iter(data["failed_by_reason"]))
        del source[FIELD_TTL_KEY]
    assert data["keys"] == len(source)
    assert differences(without_consumer_times(source), without_consumer_times(copied)) == []
    assert data["functions"] == 1
    assert target.client(0).execute_command("FUNCTION", "LIST")
    if spec == "redis-7.0":
        assert data["transcoded"] > 0  # set listpacks and v3 streams are not RDB 10
    else:
        assert data["restored"] > data["transcoded"]


def test_big_keys_are_split_into_bounded_commands(lab: Fleet, redis8_source: Source) -> None:
    target = lab.start("valkey-9")
    code, _data, stderr = _copy("--from-rdb", str(redis8_source.rdb), "--target", target.url,
                               "--max-elements", "500", "--max-bytes", "65536")
    assert code == 0, stderr
    stats = target.client(0).info("commandstats")
    # seed:big:{list,set,zset,hash} hold 20,000 elements each: at least 40 commands each
    for cmd in ("rpush", "sadd", "zadd", "hset"):
        assert stats[f"cmdstat_{cmd}"]["calls"] >= 40, cmd
    assert differences(without_consumer_times(server_snapshot(redis8_source.server.endpoint)),
                       without_consumer_times(server_snapshot(target.endpoint))) == []


def test_non_empty_target_is_refused_unless_flush(lab: Fleet, redis8_source: Source) -> None:
    target = lab.start("valkey-9")
    target.client(3).set("precious", "1")
    args = ["--from-rdb", str(redis8_source.rdb), "--target", target.url]
    code, _, stderr = _copy(*args)
    assert code == 2 and "not empty (db3: 1 keys)" in stderr and "--flush-target" in stderr
    assert target.client(0).dbsize() == 0 and target.client(3).get("precious") == b"1"
    code, data, _ = _copy(*args, "--flush-target")
    assert code == 0 and data["flushed_target"]
    assert target.client(3).dbsize() == 0 and target.client(0).dbsize() > 0


def test_corrupt_file_writes_nothing(lab: Fleet, redis8_source: Source, tmp_path: Path) -> None:
    target = lab.start("valkey-9")
    data = redis8_source.rdb.read_bytes()
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(data[:-20] + bytes([data[-20] ^ 0x55]) + data[-19:])
    res = run_cli("copy", "--from-rdb", str(bad), "--target", target.url)
    assert res.code == 2 and "invalid RDB at byte" in res.stderr
    assert sum(target.client(db).dbsize() for db in range(3)) == 0


def test_dry_run_writes_nothing(lab: Fleet, redis8_source: Source) -> None:
    target = lab.start("valkey-9")
    code, data, _ = _copy("--from-rdb", str(redis8_source.rdb), "--target", target.url,
                          "--dry-run")
    assert code == 0 and data["dry_run"] and data["keys"] == 2000
    assert target.client(0).dbsize() == 0


def test_db_map_and_match(lab: Fleet, redis8_source: Source) -> None:
    target = lab.start("valkey-9")
    code, data, _ = _copy("--from-rdb", str(redis8_source.rdb), "--target", target.url,
                          "--db-map", "1:5", "--match", "hash:*")
    assert code == 0
    source = server_snapshot(redis8_source.server.endpoint)
    want = {((5 if db == 1 else db), key): v for (db, key), v in source.items()
            if key.startswith(b"hash:")}
    assert server_snapshot(target.endpoint) == want
    assert data["not_matched"] == 2000 - len(want)


def test_expired_keys_and_fields_are_skipped_and_counted(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("valkey-9")
    c = source.client(0)
    soon = int(time.time() * 1000) + 1500
    c.set("gone", "x")
    c.pexpireat("gone", soon)
    c.set("stays", "y")
    c.hset("h", mapping={"f1": "1", "f2": "2"})
    c.execute_command("HPEXPIREAT", "h", soon, "FIELDS", 1, "f1")
    c.execute_command("HPEXPIREAT", "h", soon + 3_600_000, "FIELDS", 1, "f2")
    c.save()
    time.sleep(2)
    target = lab.start("valkey-9")
    code, data, _ = _copy("--from-rdb", str(Path(source.directory) / "dump.rdb"),
                          "--target", target.url)
    assert code == 0
    assert data["expired_skipped"] == 1 and data["expired_fields_skipped"] == 1
    t = target.client(0)
    assert t.get("gone") is None and t.get("stays") == b"y"
    assert t.hgetall("h") == {b"f2": b"2"}
    assert t.execute_command("HPEXPIRETIME", "h", "FIELDS", 1, "f2") == [soon + 3_600_000]


def test_bad_arguments(tmp_path: Path) -> None:
    res = run_cli("copy", "--from-rdb", str(tmp_path / "nope.rdb"), "--target",
                  "redis://127.0.0.1:1")
    assert res.code == 2 and "cannot read" in res.stderr
    res = run_cli("copy", "--target", "redis://127.0.0.1:1")
    assert res.code == 2 and "--from-rdb" in res.stderr


def test_idle_time_and_frequency_are_carried(lab: Fleet) -> None:
    source = lab.start("valkey-9", extra_args=["--maxmemory-policy", "allkeys-lru"])
    c = source.client(0)
    c.set("tmp", "v")
    c.restore("old", 0, c.dump("tmp"), idletime=5000)
    c.save()
    lru = lab.start("valkey-9", extra_args=["--maxmemory-policy", "allkeys-lru"])
    code, _, err = _copy("--from-rdb", str(Path(source.directory) / "dump.rdb"),
                         "--target", lru.url)
    assert code == 0, err
    assert lru.client(0).object("idletime", "old") >= 5000
    assert lru.client(0).object("idletime", "tmp") < 1000
    out = Path(source.directory) / "for-valkey9.rdb"
    res = run_cli("copy", "--from-rdb", str(Path(source.directory) / "dump.rdb"), "--to-rdb",
                  str(out), "--to", "valkey", "--target-version", "9.1.2")
    assert res.code == 0, res.stderr
    loaded = lab.start("valkey-9", extra_args=["--maxmemory-policy", "allkeys-lru", "--dir",
                                               str(out.parent), "--dbfilename", out.name])
    assert loaded.client(0).object("idletime", "old") >= 5000
    lfu_src = lab.start("redis-8", extra_args=["--maxmemory-policy", "allkeys-lfu"])
    c = lfu_src.client(0)
    c.set("tmp", "v")
    c.restore("hot", 0, c.dump("tmp"), frequency=200)
    c.save()
    lfu = lab.start("redis-8", extra_args=["--maxmemory-policy", "allkeys-lfu"])
    code, _, err = _copy("--from-rdb", str(Path(lfu_src.directory) / "dump.rdb"),
                         "--target", lfu.url)
    assert code == 0, err
    assert lfu.client(0).object("freq", "hot") >= 150
