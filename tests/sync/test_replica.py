"""``sync --mode replica`` on real servers: kvmigrate as a replica of the source, through the
RDB reader and the writers, a dropped link continued by partial resync, and --resume after
kvmigrate was killed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.lab.server import ServerProcess
from migrate.verify.runner import VerifyOptions, verify
from tests.helpers import run_cli


def _follow(source: ServerProcess, target: ServerProcess, state: Path,
            *extra: str) -> subprocess.Popen[str]:
    status = state.parent / f"{state.name}.json"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", "replica", "--follow",
                             "--state", str(state), "--status-json", str(status), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if status.exists() and json.loads(status.read_text())["status"].get("phase") == \
                "follow":
            return proc
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the sync did not reach the follow phase")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


def _in_sync(source: ServerProcess, target: ServerProcess) -> None:
    deadline = time.monotonic() + 30
    report = None
    while time.monotonic() < deadline:
        report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
        if report.ok:
            return
        time.sleep(0.5)
    raise AssertionError(report.to_dict() if report else "no report")


@pytest.mark.parametrize("diskless", ["yes", "no"])  # EOF-marked or $<len> RDB transfer
def test_redis70_to_valkey80_replica(lab: Fleet, tmp_path: Path, diskless: str) -> None:
    source = lab.start("redis-7.0", password="pw-src",
                       extra_args=["--repl-diskless-sync", diskless])
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=4000)
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "replica", "--state", str(tmp_path / "s"))
    assert result.code == 0, result.output
    assert "MATCH" in result.stdout and "pw-src" not in result.output
    slaves = source.client().info("replication")
    assert slaves["connected_slaves"] == 0  # the link is closed at the end of the run
    _in_sync(source, target)


def test_values_over_one_command_go_in_chunks_the_rest_as_bytes(lab: Fleet,
                                                                 tmp_path: Path) -> None:
    """Replica mode passes a value the target reads as it is as the bytes the source sent
    (checked, not decoded), unless it is too big for one command (4 MiB): those are decoded
    and written in chunks of typed commands, TTL included."""
    source = lab.start("redis-7.0")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000)
    client = source.client()
    blob = os.urandom(5 << 20)  # random: stays over 4 MiB in the RDB (LZF cannot shrink it)
    client.set("big:string", blob)
    client.hset("big:hash", mapping={f"f{i}": blob[i << 20:(i + 2) << 20] for i in range(3)})
    client.rpush("big:list", *[blob[i:i + 4096] for i in range(0, len(blob), 4096)])
    client.pexpire("big:list", 3_600_000)
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "replica", "--state", str(tmp_path / "s"))
    assert result.code == 0, result.output
    _in_sync(source, target)
    assert target.client().pttl("big:list") > 3_000_000
    ledger = json.loads((tmp_path / "s" / "ledger.json").read_text())
    load = next(p for p in ledger["phases"] if p["name"] == "catch-up")["counters"]["load"]
    assert load["transcoded"] == 3  # the three big keys, in chunks
    assert load["restored"] >= 1900  # the others as they are (some are strings)


def test_redis8_to_valkey9_field_ttl_hashes(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-8"), lab.start("valkey-9")
    seed(source.endpoint, keys=1500)
    proc = _follow(source, target, tmp_path / "s")
    try:
        c = source.client()
        c.hset("live:fttl", mapping={"a": "1", "b": "2"})
        c.execute_command("HPEXPIRE", "live:fttl", 9_000_000, "FIELDS", 1, "a")
        c.execute_command("HPEXPIRE", "seed:hash:field-ttl", 8_000_000, "FIELDS", 1, "f4")
        _in_sync(source, target)
        assert target.client().execute_command("HPEXPIRETIME", "live:fttl", "FIELDS", 1,
                                               "a")[0] > 0
    finally:
        code, _stdout, stderr = _stop(proc)
    assert code == 0, stderr


def test_redis8_to_valkey80_field_ttls_stop_the_sync(lab: Fleet, tmp_path: Path) -> None:
    """A hash with field TTLs in the initial copy: no key quietly left out; allowed, its
    fields arrive without TTLs and the verification calls it a known difference."""
    source, target = lab.start("redis-8"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=300)
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "replica", "--state", str(tmp_path / "s"))
    assert result.code == 4, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(
        "kvmigrate: error: 1 key(s) of the initial copy were not written: hash field TTLs")
    assert "--allow-loss field-ttl" in result.stderr
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "replica", "--state", str(tmp_path / "s2"), "--flush-target",
                     "--allow-loss", "field-ttl", "--verify-sample", "400")
    assert result.code == 0, result.output
    assert "hash field TTL(s) not copied (the fields were)" in result.stderr
    assert "MATCH except 1 known difference(s) allowed by --allow-loss" in result.stdout
    assert "known: db0 seed:hash:field-ttl: field-ttl" in result.stdout
    assert target.client().hgetall("seed:hash:field-ttl") == \
        source.client().hgetall("seed:hash:field-ttl")


def test_dropped_link_continues_by_partial_resync(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000)
    proc = _follow(source, target, tmp_path / "s")
    try:
        c = source.client()
        for i in range(200):
            c.incr("counter")
            c.rpush("log", i)
        killed = c.execute_command("CLIENT", "KILL", "TYPE", "replica")
        assert killed == 1
        for i in range(200):
            c.incr("counter")
            c.rpush("log", i)
        _in_sync(source, target)
        assert target.client().get("counter") == b"400"
        assert source.client().info("stats")["sync_partial_ok"] >= 1
    finally:
        code, _stdout, stderr = _stop(proc)
    assert code == 0, stderr
    assert "partial resync accepted" in stderr


def test_killed_and_resumed_catches_up_with_nothing_lost(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000)
    state = tmp_path / "s"
    proc = _follow(source, target, state)
    c = source.client()
    for _ in range(100):
        c.incr("counter")
    time.sleep(0.5)
    proc.kill()
    proc.wait(10)
    for i in range(300):  # written while kvmigrate is down
        c.incr("counter")
        c.lpush("while-down", i)
    c.delete("seed:string:raw")
    resumed = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                      "replica", "--state", str(state), "--resume")
    assert resumed.code == 0, resumed.output
    # commands the killed run sent after its recorded offset may have been applied: loaded
    # again rather than replayed twice (tests/faults/test_killed.py)
    assert "resume: the previous run was killed" in resumed.stderr
    _in_sync(source, target)
    assert target.client().get("counter") == b"400"


def test_a_new_full_sync_never_reads_a_killed_runs_spool(tmp_path: Path,
                                                        lab: Fleet) -> None:
    """A run killed mid-transfer leaves rdb-N.rdb and stream-N.bin; the resumed run's full
    sync of the same generation starts from empty files (issue 19: a resumed run read the
    leftover RDB as the new transfer and died with "invalid RDB at byte 262132")."""
    from migrate.sync.psync import ReplicationLink

    source = lab.start("redis-7.0")
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "rdb-1.rdb").write_bytes(b"REDIS0011" + b"\x00" * 262132)
    (spool / "stream-1.bin").write_bytes(b"*1\r\n$4\r\nPING\r\n")
    link = ReplicationLink(source.endpoint, spool, lambda: 0, lambda _: None)
    gen = link.start_full(1, "0" * 40, 0)
    assert gen.rdb_path is not None and not gen.rdb_path.exists()
    assert not gen.stream_path.exists()


def test_killed_mid_transfer_and_resumed(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=60000, profile="strings")
    state = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", "replica", "--state",
                             str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rdb = state / "spool" / "rdb-1.rdb"
    deadline = time.monotonic() + 60
    while not (rdb.exists() and rdb.stat().st_size > 0) and proc.poll() is None:
        assert time.monotonic() < deadline, "no RDB transfer started"
        time.sleep(0.01)
    proc.kill()
    proc.wait(10)
    source.client().set("after-the-kill", "1")
    resumed = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                      "replica", "--state", str(state), "--resume")
    assert resumed.code == 0, resumed.output
    _in_sync(source, target)
    assert target.client().get("after-the-kill") == b"1"
    assert target.client().dbsize() == source.client().dbsize()


def test_the_spool_is_removed_when_the_run_ends_unless_kept(lab: Fleet, tmp_path: Path) -> None:
    """issue 18: the spool (the RDB and stream as they came: a full copy of the data) is gone
    once a sync has ended; --keep-spool keeps it, private (0700 folder, 0600 files)."""
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=300)
    removed, kept = tmp_path / "removed", tmp_path / "kept"
    done = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                   "replica", "--state", str(removed))
    assert done.code == 0, done.output[-2000:]
    assert (removed / "ledger.json").exists() and not (removed / "spool").exists()
    again = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                    "replica", "--state", str(kept), "--flush-target", "--keep-spool")
    assert again.code == 0, again.output[-2000:]
    spool = kept / "spool"
    assert spool.is_dir() and any(spool.iterdir())
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in spool.iterdir()} == {"0o600"}
