"""``verify`` finds planted differences of every type and TTL, and nothing else, on real
servers; under a steady write load it reports no false mismatches."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.verify.compare import STRING_FIRST, STRING_WINDOW
from migrate.verify.runner import VerifyOptions, parse_db_map, verify
from tests.helpers import run_cli
from tests.verify.replicate import replicate, wait_in_sync

FAST = dict(lag_window_s=0.1, rechecks=1)


@pytest.fixture
def pair(lab: Fleet) -> tuple[ServerProcess, ServerProcess]:
    """A seeded Redis 7.0 and an exact Valkey 8.0 copy of it, no longer replicating."""
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000)
    # a big collection of each kind, so the chunked comparisons run too
    c = source.client()
    c.rpush("big:list", *[f"e{i}" for i in range(2500)])
    c.sadd("big:set", *[f"s{i}" for i in range(2500)])
    c.zadd("big:zset", {f"m{i}": i for i in range(2500)})
    c.hset("big:hash", mapping={f"f{i}": f"v{i}" for i in range(2500)})
    replicate(source, target)
    return source, target


def kinds(report) -> dict[str, str]:
    return {m.to_dict()["key"]: m.kind for m in report.mismatches}


def test_identical_copy_matches_full_and_sample(pair: tuple[ServerProcess, ServerProcess]) \
        -> None:
    source, target = pair
    full = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert full.ok, full.to_dict()["mismatches"]
    assert full.keys_checked >= 3004
    assert {c.source_db for c in full.counts} == {0, 1, 2}
    sample = verify(source.endpoint, target.endpoint, VerifyOptions(sample=200, **FAST))
    assert sample.ok and 0 < sample.keys_checked <= 200
    # half of the keys: RANDOMKEY repeats itself, the sampler draws again for what is missing
    half = verify(source.endpoint, target.endpoint, VerifyOptions(sample=1500, **FAST))
    assert half.ok and 1400 <= half.keys_checked <= 1500, half.keys_checked


def test_planted_differences_of_each_type_are_found(
        pair: tuple[ServerProcess, ServerProcess]) -> None:
    source, target = pair
    t = target.client()
    t.set("seed:string:int", 7654321)
    t.lset("seed:list:small", 3, "changed")
    t.srem("seed:set:small", "member-4")
    t.sadd("seed:set:small", "member-x")
    t.zincrby("seed:zset:small", 0.5, "player-2")
    t.hset("seed:hash:small", "field-1", "other")
    t.xadd("seed:stream", {"late": "1"})
    t.expire("seed:string:embstr", 500)  # no TTL on the source
    t.pexpire("seed:string:ttl", 3_600_000)  # TTL far from the source's
    t.lset("big:list", 2200, "changed")
    t.zadd("big:zset", {"m2100": 99999})
    t.hset("big:hash", "f2222", "changed")
    t.srem("big:set", "s1999")
    t.sadd("big:set", "zzz")
    t.delete("seed:string:raw")
    t.set("only:on:target", "x")
    t.delete("seed:list:large")
    t.set("seed:list:large", "now a string")
    t.execute_command("SELECT", 1)
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    found = kinds(report)
    assert found == {
        "seed:string:int": "value", "seed:list:small": "value", "seed:set:small": "value",
        "seed:zset:small": "value", "seed:hash:small": "value", "seed:stream": "stream",
        "seed:string:embstr": "ttl", "seed:string:ttl": "ttl", "big:list": "value",
        "big:zset": "value", "big:hash": "value", "big:set": "value",
        "seed:string:raw": "missing", "only:on:target": "extra", "seed:list:large": "type",
    }, found
    assert not report.ok


def test_stream_groups_consumers_and_pending_entries(
        pair: tuple[ServerProcess, ServerProcess]) -> None:
    source, target = pair
    t = target.client()

    def detail() -> str:
        report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
        assert kinds(report) == {"seed:stream": "stream"}, report.to_dict()
        return report.mismatches[0].detail

    t.xack("seed:stream", "billing", "1700000000001-0")
    assert "pending" in detail()
    source.client().xack("seed:stream", "billing", "1700000000001-0")
    assert verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST)).ok
    t.xgroup_createconsumer("seed:stream", "audit", "newcomer")
    assert "consumers: 1 on the source, 2 on the target" in detail()
    t.xgroup_delconsumer("seed:stream", "audit", "newcomer")
    t.xgroup_create("seed:stream", "extra-group", "0")
    assert "2 consumer groups on the source, 3 on the target" in detail()
    t.xgroup_destroy("seed:stream", "extra-group")
    t.xgroup_setid("seed:stream", "audit", "1700000000005-0")
    assert "last-delivered-id" in detail()


def test_key_counts_per_database_and_db_map(lab: Fleet) -> None:
    source, target = lab.start("valkey-8.0"), lab.start("valkey-8.0")
    source.client(0).set("a", 1)
    source.client(1).set("b", 2)
    target.client(0).set("a", 1)
    target.client(5).set("b", 2)
    mapped = verify(source.endpoint, target.endpoint,
                    VerifyOptions(full=True, db_map=parse_db_map("1:5"), **FAST))
    assert mapped.ok, mapped.to_dict()
    plain = verify(source.endpoint, target.endpoint, VerifyOptions(sample=10, **FAST))
    assert not plain.ok
    counts = {c.source_db: (c.source_keys, c.target_keys) for c in plain.counts}
    assert counts[1] == (1, 0) and counts[5] == (0, 1)


def test_field_ttls(lab: Fleet) -> None:
    source, target = lab.start("valkey-9"), lab.start("valkey-9")
    seed(source.endpoint, keys=200)
    replicate(source, target)
    ok = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert ok.ok, ok.to_dict()
    target.client().execute_command("HPEXPIRE", "seed:hash:field-ttl", 10_000_000, "FIELDS", 1,
                                    "f4")
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert kinds(report) == {"seed:hash:field-ttl": "field-ttl"}


def test_field_ttl_the_target_cannot_hold_is_reported(lab: Fleet) -> None:
    source, target = lab.start("redis-8"), lab.start("valkey-8.0")
    for server in (source, target):
        server.client().hset("h", mapping={"a": "1", "b": "2"})
    source.client().execute_command("HPEXPIRE", "h", 10_000_000, "FIELDS", 1, "a")
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert kinds(report) == {"h": "field-ttl"}
    assert "no field TTLs" in report.mismatches[0].detail


def test_no_false_mismatches_under_a_steady_write_load(lab: Fleet) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000)
    replicate(source, target, detach=False)
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        c, rng = source.client(), random.Random(7)
        while not stop.is_set():
            i = rng.randrange(3000)
            pipe = c.pipeline(transaction=False)
            pipe.set(f"load:s:{i % 300}", rng.random())
            pipe.hset(f"load:h:{i % 50}", f"f{i}", i)
            pipe.zincrby(f"load:z:{i % 50}", 1, f"m{i % 20}")
            pipe.lpush(f"load:l:{i % 50}", i)
            pipe.ltrim(f"load:l:{i % 50}", 0, 30)
            pipe.xadd(f"load:x:{i % 20}", {"n": i}, maxlen=50, approximate=False)
            pipe.expire(f"load:s:{i % 300}", 3600 + i)
            pipe.execute()
            writes += 7

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    finally:
        stop.set()
        thread.join(10)
    assert writes > 1000
    assert report.ok, report.to_dict()
    wait_in_sync(source, target)


def test_cli_exit_codes_and_json(pair: tuple[ServerProcess, ServerProcess]) -> None:
    source, target = pair
    same = run_cli("verify", "--source", source.url, "--target", target.url, "--full",
                   "--format", "json", "--lag-window", "0.1", "--rechecks", "1")
    assert same.code == 0, same.output
    assert json.loads(same.stdout)["ok"] is True
    target.client().set("seed:string:int", 1)
    diff = run_cli("verify", "--source", source.url, "--target", target.url, "--sample",
                   "5000", "--lag-window", "0.1", "--rechecks", "1")
    assert diff.code == 1, diff.output
    assert "seed:string:int" in diff.stdout and "MISMATCH" in diff.stdout
    assert run_cli("verify", "--source", source.url, "--target", target.url, "--format",
                   "xml").code == 2
    assert run_cli("verify", "--source", source.url, "--target", target.url, "--db-map",
                   "0-1").code == 2
    gone = run_cli("verify", "--source", source.url, "--target", "redis://127.0.0.1:1")
    assert gone.code == 3 and "cannot connect" in gone.stderr


def test_password_is_never_shown(lab: Fleet) -> None:
    source = lab.start("valkey-8.0", password="s3cret-pw")
    target = lab.start("valkey-8.0", password="s3cret-pw")
    result = run_cli("verify", "--source", source.url, "--target", target.url)
    assert result.code == 0, result.output
    assert "s3cret-pw" not in result.output


def test_a_key_written_at_every_look_is_unsettled_not_a_mismatch(lab: Fleet) -> None:
    source, target = lab.start("valkey-8.0"), lab.start("valkey-8.0")
    for server in (source, target):
        server.client().mset({"hot": 0, "cold": "same"})
    target.client().set("cold", "different")
    stop = threading.Event()

    def hammer() -> None:
        c = source.client()
        while not stop.is_set():
            c.incr("hot")

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        report = verify(source.endpoint, target.endpoint,
                        VerifyOptions(full=True, lag_window_s=0.2, rechecks=2))
    finally:
        stop.set()
        thread.join(5)
    assert kinds(report) == {"cold": "value"}
    assert [m.key for m in report.unsettled] == [b"hot"]
    # once the writes stop, the same key is a plain mismatch
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    assert kinds(report) == {"cold": "value", "hot": "value"}


def test_long_strings_are_compared_window_by_window(lab: Fleet) -> None:
    """Strings longer than the first read (64 KiB) are compared a window at a time: equal
    ones match, a byte changed deep inside is found at its offset, a length differs."""
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    rng = random.Random(5)
    long = rng.randbytes(2 * STRING_WINDOW + 12345)
    edge = rng.randbytes(STRING_FIRST + 1)  # one byte past the first read
    s, t = source.client(), target.client()
    for c in (s, t):
        c.mset({"long:same": long, "long:changed": long, "long:shorter": long,
                "edge:same": edge, "edge:longer": edge})
    t.setrange("long:changed", STRING_WINDOW + 777, b"\x00" if long[STRING_WINDOW + 777]
               else b"\x01")
    t.set("long:shorter", long[:-1])
    t.set("edge:longer", edge[:-1])  # fits the first read on the target, not on the source
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True, **FAST))
    details = {m.to_dict()["key"]: m.to_dict()["detail"] for m in report.mismatches}
    assert set(details) == {"long:changed", "long:shorter", "edge:longer"}, details
    assert details["long:changed"].endswith(f"differ from byte {STRING_WINDOW + 777}")
    assert details["long:shorter"] == (f"string of {len(long)} bytes on the source, "
                                       f"{len(long) - 1} bytes on the target")
    assert details["edge:longer"] == (f"string of {len(edge)} bytes on the source, "
                                      f"{len(edge) - 1} bytes on the target")
    assert report.keys_checked == 5
