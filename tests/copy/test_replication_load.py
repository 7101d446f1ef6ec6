"""copy --from-rdb into an empty target: the target loads the file itself over the
replication protocol (kvmigrate serves it), then is a primary again; the record path stays
for --match, a non-empty target, and a file that does not validate writes nothing."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate.apply.copy import RECORDS, REPLICATION
from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.rdb.crc64 import crc64
from tests.conftest import needs_testdata
from tests.copy.both_ways import copy_corpus_both_ways
from tests.helpers import run_cli, wait_for
from tests.rdb.snapshot import differences, server_snapshot, without_consumer_times


@pytest.fixture(scope="module")
def redis70(session_lab: Fleet, tmp_path_factory: pytest.TempPathFactory) \
        -> tuple[ServerProcess, Path]:
    server = session_lab.start("redis-7.0")
    seed(server.endpoint, keys=1500, seed_value=7)
    server.client(0).save()
    path = tmp_path_factory.mktemp("copy-r70") / "redis70.rdb"
    shutil.copy(Path(server.directory) / "dump.rdb", path)
    return server, path


def _copy(*args: str) -> tuple[int, dict, str]:
    res = run_cli("copy", *args, "--format", "json")
    data = json.loads(res.stdout) if res.stdout.strip() else {}
    return res.code, data, res.stderr


def _same(source: ServerProcess, target: ServerProcess) -> None:
    assert differences(without_consumer_times(server_snapshot(source.endpoint)),
                       without_consumer_times(server_snapshot(target.endpoint))) == []


@pytest.mark.parametrize("spec", ["valkey-8.0", "valkey-9", "redis-7.0", "redis-8"])
def test_empty_target_loads_the_file_itself(lab: Fleet, redis70: tuple[ServerProcess, Path],
                                            spec: str) -> None:
    source, rdb = redis70
    target = lab.start(spec)
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url)
    assert code == 0, stderr
    assert data["path"] == REPLICATION, data["path_reason"]
    assert data["failed"] == 0 and data["restored"] == 0 and data["transcoded"] == 0
    assert data["keys"] == sum(source.client(db).dbsize() for db in range(16))
    replication = target.client().info("replication")
    assert replication["role"] == "master"  # detached again
    _same(source, target)
    target.client(0).set("writable", "yes")  # a primary: it takes writes
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--flush-target")
    assert res.code == 0, res.stderr
    assert "path: loaded by the target itself (replication)" in res.stdout
    assert target.client(0).get("writable") is None
    _same(source, target)


def test_match_goes_record_by_record(lab: Fleet, redis70: tuple[ServerProcess, Path]) -> None:
    source, rdb = redis70
    target = lab.start("valkey-9")
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url,
                               "--match", "*")
    assert code == 0, stderr
    assert data["path"] == RECORDS and "--match" in data["path_reason"]
    assert data["restored"] + data["transcoded"] == data["keys"] > 0
    _same(source, target)


def test_non_empty_target_goes_record_by_record(lab: Fleet,
                                                redis70: tuple[ServerProcess, Path]) -> None:
    source, rdb = redis70
    target = lab.start("valkey-8.0")
    target.client(5).set("precious", "1")  # a database the file does not use
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url,
                               "--match", "*", "--db-map", "5:6")
    assert code == 2 and "not empty" in stderr  # refused, as before
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--match", "*")
    assert res.code == 2 and target.client(5).get("precious") == b"1"
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url,
                               "--flush-target", "--db-map", "9:9")
    assert code == 0, stderr
    assert data["path"] == RECORDS and "--db-map" in data["path_reason"]
    _same(source, target)


def test_corrupt_file_writes_nothing(lab: Fleet, redis70: tuple[ServerProcess, Path],
                                     tmp_path: Path) -> None:
    _, rdb = redis70
    target = lab.start("valkey-9")
    data = rdb.read_bytes()
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(data[:-20] + bytes([data[-20] ^ 0x55]) + data[-19:])
    res = run_cli("copy", "--from-rdb", str(bad), "--target", target.url)
    assert res.code == 2 and "invalid RDB at byte" in res.stderr
    assert [line for line in res.stderr.splitlines() if "error" in line] == \
        [res.stderr.splitlines()[-1]]  # one line
    assert target.client().info("replication")["role"] == "master"
    assert sum(target.client(db).dbsize() for db in range(16)) == 0


def _state(server: ServerProcess) -> dict:
    return {"role": server.client().info("replication")["role"],
            "diskless": server.client().config_get("repl-diskless-load")["repl-diskless-load"]}


@needs_testdata
def test_every_corpus_file_the_target_may_load_itself_ends_as_key_by_key(lab: Fleet) -> None:
    """Differential, on files of other projects and Redis's test suite: whatever path the
    copy takes, the target stays up, ends a primary with its own settings, and holds what a
    key-by-key copy of the same file gives (or both copies refuse the file)."""
    fast, slow = lab.start("valkey-9"), lab.start("valkey-9")
    before = _state(fast)

    def unchanged(name: str) -> None:
        assert _state(fast) == before, name

    paths = copy_corpus_both_ways(fast, slow, unchanged, lambda: differences(
        server_snapshot(fast.endpoint), server_snapshot(slow.endpoint)))
    assert REPLICATION in paths.values() and RECORDS in paths.values()


def _late(server: ServerProcess, tmp: Path, bulk_keys: int) -> Path:
    """An RDB whose database 0 holds ``bulk_keys`` strings (several megabytes: sent to the
    target before the walk reaches database 1) and whose database 1 holds what the caller
    wrote there; saved by ``server``."""
    client = server.client(0)
    pipe = client.pipeline(transaction=False)
    for i in range(bulk_keys):
        pipe.set(f"bulk:{i}", "v" * 300)
    pipe.execute()
    client.save()
    path = tmp / "late.rdb"
    shutil.copy(Path(server.directory) / "dump.rdb", path)
    return path


def test_a_key_the_target_cannot_load_as_it_is_cuts_the_transfer(
        lab: Fleet, tmp_path: Path) -> None:
    """Redis 8 into Redis 8: a hash with field TTLs (left to the key-by-key path) comes after
    megabytes already sent. The transfer is cut, the target drops what it had, and the copy
    goes key by key: every key arrives, the field TTLs with it."""
    source, target = lab.start("redis-8"), lab.start("redis-8")
    source.client(1).hset("late:hash", mapping={"a": "1", "b": "2"})
    source.client(1).execute_command("HPEXPIRE", "late:hash", 600_000, "FIELDS", 1, "a")
    rdb = _late(source, tmp_path, 20_000)
    before = _state(target)
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url)
    assert code == 0, stderr
    assert data["path"] == RECORDS and "cannot load the file as it is" in data["path_reason"]
    assert _state(target) == before
    log = target.log_path.read_text(errors="replace")
    assert "REPLICA sync: Loading DB in memory" in log  # it had begun loading the file
    assert differences(server_snapshot(source.endpoint), server_snapshot(target.endpoint)) == []


def test_a_damaged_container_never_reaches_the_target(lab: Fleet, tmp_path: Path) -> None:
    """A listpack whose header lies, in a file whose checksum is right (as a buggy writer
    would make it), after megabytes already sent: the walk stops before the target sees
    it (a server exits on such a record), the target stays up and empty, and the key-by-key
    reader names the defect."""
    source, target = lab.start("valkey-8.0"), lab.start("valkey-8.0")
    source.client(1).hset("late:hash", mapping={"field": "value"})  # a listpack
    rdb = _late(source, tmp_path, 20_000)
    data = bytearray(rdb.read_bytes())
    at = data.index(b"\x10\x09late:hash") + 11  # type 16, the key, then the listpack
    assert data[at] < 64  # stored as it is, its length in one byte
    data[at + 1] ^= 0x01  # the listpack's total-bytes field
    data[-8:] = crc64(bytes(data[:-8])).to_bytes(8, "little")
    bad = tmp_path / "bad-listpack.rdb"
    bad.write_bytes(bytes(data))
    before = _state(target)
    res = run_cli("copy", "--from-rdb", str(bad), "--target", target.url)
    assert res.code == 2 and "invalid RDB at byte" in res.stderr, res.stderr
    assert target.client().ping() and _state(target) == before
    assert sum(target.client(db).dbsize() for db in range(16)) == 0


@pytest.fixture(scope="module")
def big_rdb(session_lab: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600,000 keys: the target takes a while to load them."""
    source = session_lab.start("redis-7.0")
    source.client().execute_command("DEBUG", "POPULATE", 600_000, "k", 64)
    source.client().save()
    rdb = tmp_path_factory.mktemp("copy-big") / "big.rdb"
    shutil.copy(Path(source.directory) / "dump.rdb", rdb)
    return rdb


def _signal_while_loading(rdb: Path, target: ServerProcess, signum: int) -> str:
    """Run a copy into ``target`` and send it ``signum`` once the target was told to
    replicate kvmigrate (while it loads); returns the copy's stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "copy", "--from-rdb", str(rdb),
                             "--target", target.url], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    client = target.client()
    try:
        deadline = time.monotonic() + 120
        while client.info("replication")["role"] == "master":  # until it is sent REPLICAOF
            assert proc.poll() is None and time.monotonic() < deadline
        proc.send_signal(signum)
        return proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kvmigrate_stopped_while_the_target_loads(lab: Fleet, big_rdb: Path) -> None:
    """SIGTERM (or Ctrl-C) while the target loads the file: the transfer is cut, the target
    is detached, holds nothing and has its own repl-diskless-load again; exit 130."""
    target = lab.start("valkey-9")
    before = _state(target)
    stderr = _signal_while_loading(big_rdb, target, signal.SIGTERM)
    assert "kvmigrate: interrupted" in stderr, stderr
    assert _state(target) == before
    assert target.client().dbsize() == 0


def test_kvmigrate_killed_while_the_target_loads(lab: Fleet, big_rdb: Path) -> None:
    """SIGKILL while the target loads the file: the target is left a replica of the dead
    listener, holding nothing (the transfer was cut); a new copy refuses it in one line
    naming REPLICAOF NO ONE, and once that is done the copy runs to the end."""
    target = lab.start("valkey-8.0")
    rdb = big_rdb
    _signal_while_loading(rdb, target, signal.SIGKILL)
    client = target.client()
    wait_for(lambda: client.info("replication")["role"] == "slave" and
             not int(client.info("persistence")["loading"]) and client.dbsize() == 0,
             "the target drops the cut transfer", timeout=60)
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url)
    assert res.code == 2 and "is a replica" in res.stderr and "REPLICAOF NO ONE" in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("kvmigrate: error")]) == 1
    client.execute_command("REPLICAOF", "NO", "ONE")
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url)
    assert code == 0 and data["path"] == REPLICATION, stderr
    assert client.dbsize() == 600_000


def test_keys_expired_in_the_file_load_then_expire(lab: Fleet, tmp_path: Path) -> None:
    """A file holding keys whose TTL passed (saved with active expiry off): the target, a
    replica while it loads, keeps them (the key counts match the file exactly), then
    expires them as a primary; the report says how many."""
    source = lab.start("redis-7.0")
    client = source.client()
    client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
    for i in range(10):
        client.set(f"gone:{i}", "x", px=1)
        client.set(f"kept:{i}", "y")
    client.save()
    rdb = tmp_path / "expired.rdb"
    shutil.copy(Path(source.directory) / "dump.rdb", rdb)
    target = lab.start("valkey-8.0")
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url)
    assert code == 0 and data["path"] == REPLICATION, stderr
    assert data["keys"] == 20
    assert any("10 keys already expired when read" in n for n in data["notes"]), data["notes"]
    assert [target.client().exists(f"gone:{i}") for i in range(10)] == [0] * 10
    assert target.client().dbsize() == 10


def test_listen_on_every_address(lab: Fleet, redis70: tuple[ServerProcess, Path]) -> None:
    """--listen 0.0.0.0:0: the target is told the address it reaches kvmigrate at (this
    machine's side of a connection to it), and loads the file itself."""
    source, rdb = redis70
    target = lab.start("valkey-8.0")
    code, data, stderr = _copy("--from-rdb", str(rdb), "--target", target.url,
                               "--listen", "0.0.0.0:0")
    assert code == 0 and data["path"] == REPLICATION, stderr
    _same(source, target)
    res = run_cli("copy", "--from-rdb", str(rdb), "--target", target.url, "--listen", "nope:x")
    assert res.code == 2 and "invalid --listen" in res.stderr, res.stderr
