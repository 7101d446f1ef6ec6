"""`kvmigrate copy` into a real Dragonfly (the lab's v1.40.1): RDB files written by Redis 7.0,
Redis 8, Valkey 8.0 and Valkey 9 (every type and encoding, three databases, big keys, a hash
of 100,000 fields, HyperLogLogs, streams with deletions and half-read groups), and a live
source over SYNC; then source and target compared key by key. What Dragonfly cannot take
stops the copy with the key and the reason: expiries beyond its 2^28-1 s limit (which its
RESTORE clamps silently: shown below) and vector sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from migrate.apply.commands import STREAM_COUNTERS
from migrate.apply.copy import RECORDS, REPLICATION
from migrate.endpoint import raw_command
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from tests.conftest import needs_testdata
from tests.copy.both_ways import copy_corpus_both_ways
from tests.dragonfly.compare import dragonfly_differences
from tests.helpers import run_cli

SOURCES = ["redis-7.0", "redis-8", "valkey-8.0", "valkey-9"]
BIG_HASH_FIELDS = 100_000
YEAR_2100_MS = 4102444800000


def _fill(source: ServerProcess) -> None:
    """The seed's every type and encoding in databases 0-2 and its big keys, plus a hash of
    100,000 fields (bigger than one RESTORE: written with bounded HSETs), HyperLogLogs
    (sparse and dense), and a stream with deleted entries and groups that read part of it."""
    seed(source.endpoint, keys=3000, seed_value=7)
    client = source.client()
    pipe = client.pipeline(transaction=False)
    for start in range(0, BIG_HASH_FIELDS, 5000):
        pipe.hset("big:hash:100k", mapping={f"field-{i}": f"value-{i}-{'x' * 32}"
                                            for i in range(start, start + 5000)})
    pipe.execute()
    client.pfadd("hll:sparse", "a", "b", "c")
    client.pfadd("hll:dense", *[f"member-{i}" for i in range(5000)])
    for name in ("stream:deleted", "stream:half-read"):
        for i in range(1, 21):
            client.xadd(name, {"n": i}, id=f"{i}-1")
        client.xgroup_create(name, "half", "0")
        client.xgroup_create(name, "none", "$")
    client.xdel("stream:deleted", "3-1", "4-1")
    for name in ("stream:deleted", "stream:half-read"):
        client.xreadgroup("half", "reader", {name: ">"}, count=7)
    client.set("ttl:ms", "v", px=3_600_123)
    source.client(db=7).set("db7:key", "in database 7")


def _saved(source: ServerProcess, tmp_path: Path) -> Path:
    source.client().save()
    path = tmp_path / f"{source.spec}.rdb"
    shutil.copy(Path(source.directory) / "dump.rdb", path)
    return path


def _total_keys(server: ServerProcess) -> int:
    return sum(int(v["keys"]) for v in server.client().info("keyspace").values())


@pytest.mark.parametrize("spec", SOURCES)
def test_copy_an_rdb_file_into_dragonfly(dragonfly_installed: object, lab: Fleet,
                                         tmp_path: Path, spec: str) -> None:
    source = lab.start(spec)
    _fill(source)
    rdb = _saved(source, tmp_path)
    target = lab.start("dragonfly")
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--to", "dragonfly",
                  "--format", "json")
    assert res.code == 0, res.output
    report = json.loads(res.stdout)
    assert report["failed"] == 0 and report["keys"] == _total_keys(source)
    assert report["restored"] > 0 and report["transcoded"] > 0  # both paths were taken
    assert _total_keys(target) == _total_keys(source)
    assert dragonfly_differences(source.endpoint, target.endpoint) == []
    # the stream's counters survived (Dragonfly's RESTORE alone drops a half-read group's)
    groups = {g[b"name"]: g for g in raw_command(target.client(), "XINFO", "GROUPS",
                                                 "stream:half-read")}
    assert groups[b"half"][b"entries-read"] == 7 and groups[b"half"][b"lag"] == 13
    field_ttl = [f for f in report["findings"] if f["id"] == "rdb.field-ttl"]
    if spec in ("redis-8", "valkey-9"):  # the translation is named, not silent
        assert [f["severity"] for f in field_ttl] == ["warning"]
        assert "HEXPIRE seconds" in field_ttl[0]["title"]
        assert target.client().hlen("seed:hash:field-ttl") == 6
    else:
        assert field_ttl == []


@pytest.mark.parametrize("spec", ["redis-7.0", "valkey-9"])
def test_copy_from_a_live_server_into_dragonfly(dragonfly_installed: object, lab: Fleet,
                                                spec: str) -> None:
    source = lab.start(spec, extra_args=["--repl-diskless-sync", "yes",
                                         "--repl-diskless-sync-delay", "0"])
    _fill(source)
    target = lab.start("dragonfly")
    res = run_cli("copy", "--from-server", source.url, "--target", target.url, "--to",
                  "dragonfly", "--format", "json")
    assert res.code == 0, res.output
    assert json.loads(res.stdout)["keys"] == _total_keys(source)
    assert dragonfly_differences(source.endpoint, target.endpoint) == []


def test_dragonfly_restore_clamps_a_far_expiry_silently(dragonfly_installed: object,
                                                        lab: Fleet) -> None:
    """The server behaviour kvmigrate guards against: RESTORE ... ABSTTL of a key expiring
    in 2100 answers OK and keeps it for 2^28-1 s only; PEXPIREAT says so with an error."""
    source, target = lab.start("redis-7.0"), lab.start("dragonfly")
    source.client().set("far", "v")
    source.client().pexpireat("far", YEAR_2100_MS)
    payload = source.client().dump("far")
    assert raw_command(target.client(), "RESTORE", "far", YEAR_2100_MS, payload,
                       "ABSTTL") == b"OK"
    assert target.client().ttl("far") == (1 << 28) - 1
    assert target.client().pexpiretime("far") < YEAR_2100_MS - 60 * 365 * 86400 * 1000
    target.client().set("x", "1")
    with pytest.raises(Exception, match="expiry is out of range"):
        target.client().pexpireat("x", YEAR_2100_MS)


@pytest.mark.parametrize("spec", ["redis-8", "valkey-9"])
def test_an_expiry_beyond_dragonfly_limit_stops_the_copy(dragonfly_installed: object,
                                                         lab: Fleet, tmp_path: Path,
                                                         spec: str) -> None:
    source = lab.start(spec)
    seed(source.endpoint, keys=300, seed_value=2)
    source.client(db=1).set("far:away", "v")
    source.client(db=1).pexpireat("far:away", YEAR_2100_MS)
    rdb = _saved(source, tmp_path)
    target = lab.start("dragonfly")
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--to", "dragonfly")
    assert res.code == 2, res.output
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("kvmigrate: error: dragonfly 1.40.1 cannot take: 1 key(s) expire "
                           "more than 268,435,455 s (about 8.5 years) ahead, first "
                           "'far:away' in db 1 (expires 2100-01-01)"), line
    assert "would clamp such a TTL silently" in line
    assert _total_keys(target) == 0  # refused before any key was written
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--to", "dragonfly",
                  "--skip-unsupported", "--format", "json")
    assert res.code == 4, res.output  # copied the rest; the key is counted, not clamped
    assert json.loads(res.stdout)["failed_by_reason"] == {
        "expiry more than 268,435,455 s ahead: dragonfly 1.40.1 would clamp it silently": 1}
    assert target.client(db=1).exists("far:away") == 0
    assert dragonfly_differences(source.endpoint, target.endpoint,
                                 ignore=frozenset({(1, b"far:away")})) == []


def test_a_vector_set_stops_the_copy(dragonfly_installed: object, lab: Fleet,
                                     tmp_path: Path) -> None:
    source = lab.start("redis-8")
    source.client().set("plain", "v")
    raw_command(source.client(), "VADD", "embeddings", "VALUES", 3, 0.1, 0.2, 0.3, "doc-1")
    rdb = _saved(source, tmp_path)
    target = lab.start("dragonfly")
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--to", "dragonfly")
    assert res.code == 2, res.output
    line = res.stderr.strip().splitlines()[-1]
    assert "1 value(s) of module type 'vectorset' (first 'embeddings' in db 0): dragonfly " \
           "1.40.1 has no module for them" in line, line
    assert _total_keys(target) == 0


def test_a_big_stream_with_deleted_entries_is_counted_not_silent(
        dragonfly_installed: object, lab: Fleet, tmp_path: Path) -> None:
    """A stream too big for one RESTORE is written with XADD; Dragonfly 1.40.1 then keeps its
    own entries-added / max-deleted-id (XSETID takes neither option): counted as failed with
    that reason (exit 4), never a quiet difference."""
    source = lab.start("redis-7.0")
    client = source.client()
    for i in range(1, 401):
        client.xadd("big:stream", {"n": "x" * 40}, id=f"{i}-1")
    client.xdel("big:stream", "5-1")
    client.xadd("small:stream", {"n": 1}, id="1-1")  # nothing deleted: nothing to lose
    rdb = _saved(source, tmp_path)
    target = lab.start("dragonfly")
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--to", "dragonfly",
                  "--max-bytes", "4096", "--format", "json")
    assert res.code == 4, res.output
    assert json.loads(res.stdout)["failed_by_reason"] == {STREAM_COUNTERS: 1}
    assert target.client().xlen("big:stream") == 399  # the entries themselves arrived


def _no_streams(source: ServerProcess) -> None:
    """Every other type and encoding (streams keep Dragonfly on the key-by-key path: their
    groups' counters need commands there), TTLs, three databases, a 20,000-field hash."""
    client = source.client()
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"s:{i}", f"value-{i}", px=3_600_000 if i % 10 == 0 else None)
        pipe.set(f"n:{i}", i)
    for i in range(200):
        pipe.hset(f"h:{i}", mapping={f"f{j}": f"v{j}" for j in range(i % 30 + 1)})
        pipe.rpush(f"l:{i}", *[f"e{j}" for j in range(i % 50 + 1)])
        pipe.sadd(f"set:{i}", *[j for j in range(i % 40 + 1)])
        pipe.sadd(f"sset:{i}", *[f"m{j}" for j in range(i % 40 + 1)])
        pipe.zadd(f"z:{i}", {f"m{j}": j / 3 for j in range(i % 60 + 1)})
    pipe.hset("big:hash", mapping={f"field-{i}": "x" * 20 for i in range(20_000)})
    pipe.pfadd("hll", *[f"m{i}" for i in range(3000)])
    pipe.execute()
    for db in (1, 2):
        source.client(db).set(f"db{db}:key", db, ex=7200)


def test_dragonfly_loads_a_file_without_streams_itself(dragonfly_installed: object,
                                                       lab: Fleet, tmp_path: Path) -> None:
    """Differential: the file loaded by Dragonfly itself and the same file copied key by key
    into another Dragonfly hold the same data, and both the source's."""
    source = lab.start("redis-7.0")
    _no_streams(source)
    rdb = _saved(source, tmp_path)
    fast, slow = lab.start("dragonfly"), lab.start("dragonfly")
    a = run_cli("copy", "--from-rdb", str(rdb), "--target", fast.url, "--format", "json")
    b = run_cli("copy", "--from-rdb", str(rdb), "--target", slow.url, "--format", "json",
                "--record-by-record")
    assert a.code == 0 and b.code == 0, a.output + b.output
    assert json.loads(a.stdout)["path"] == REPLICATION, a.stdout
    assert fast.client().info("replication")["role"] == "master"
    assert dragonfly_differences(source.endpoint, fast.endpoint) == []
    assert dragonfly_differences(slow.endpoint, fast.endpoint) == []


def test_a_file_with_streams_goes_key_by_key_into_dragonfly(
        dragonfly_installed: object, lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0")
    source.client().xadd("s", {"f": "v"})
    source.client().xgroup_create("s", "g", "0")
    target = lab.start("dragonfly")
    res = run_cli("copy", "--from-rdb", str(_saved(source, tmp_path)), "--target", target.url,
                  "--format", "json")
    assert res.code == 0, res.output
    data = json.loads(res.stdout)
    assert data["path"] == RECORDS and "type 19" in data["path_reason"], data
    assert dragonfly_differences(source.endpoint, target.endpoint) == []


@needs_testdata
def test_every_corpus_file_dragonfly_may_load_itself_ends_as_key_by_key(
        dragonfly_installed: object, lab: Fleet) -> None:
    """Differential on other projects' files and Redis's test-suite files: whatever path the
    copy takes into Dragonfly, it stays up, ends a primary, and holds what a key-by-key copy
    of the same file gives (or both copies refuse the file)."""
    fast, slow = lab.start("dragonfly"), lab.start("dragonfly")

    def primary(name: str) -> None:
        assert fast.client().info("replication")["role"] == "master", name

    paths = copy_corpus_both_ways(fast, slow, primary, lambda: dragonfly_differences(
        slow.endpoint, fast.endpoint))
    assert REPLICATION in paths.values(), paths
