"""``sync --mode scan`` on real servers: a source with SYNC and PSYNC renamed away, writes
during the copy, typed copy where DUMP payloads cannot be restored, filters, and resume."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.sync.scan import BIG_KEY_BYTES
from migrate.verify.runner import VerifyOptions, verify
from tests.helpers import run_cli

NO_SYNC = ["--rename-command", "SYNC", "", "--rename-command", "PSYNC", ""]


def _writer(client, stop: threading.Event, counter: list[int]) -> None:
    rng = random.Random(3)
    i = 0
    while not stop.is_set():
        i += 1
        pipe = client.pipeline(transaction=False)
        pipe.set(f"live:{i % 400}", i, ex=3600)
        pipe.hset("seed:hash:small", f"live{i % 30}", i)
        pipe.delete(f"string:{rng.randrange(3000):08d}")
        pipe.zincrby("seed:zset:small", 1, "player-1")
        pipe.lmove("seed:list:small", "seed:list:small", "LEFT", "RIGHT")
        pipe.execute()
        if client.exists(f"live:{(i - 1) % 400}"):
            client.rename(f"live:{(i - 1) % 400}", f"moved:{i % 400}")
        counter[0] += 1


def test_scan_on_a_source_without_sync_and_psync(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0", extra_args=NO_SYNC)
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=5000)
    refused = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                      "--state", str(tmp_path / "a"))
    assert refused.code == 2 and "--set-notify-keyspace-events" in refused.stderr
    native = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "native", "--state", str(tmp_path / "b"))
    assert native.code == 2 and "PSYNC" in native.stderr

    stop, count = threading.Event(), [0]
    thread = threading.Thread(target=_writer, args=(source.client(), stop, count), daemon=True)
    thread.start()
    status = tmp_path / "status.json"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", "scan", "--follow",
                             "--set-notify-keyspace-events", "--state", str(tmp_path / "c"),
                             "--status-json", str(status)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if status.exists() and json.loads(status.read_text())["status"].get(
                    "phase") == "follow":
                break
            time.sleep(0.2)
        time.sleep(1)
        stop.set()
        thread.join(10)
        assert count[0] > 100
        time.sleep(1.5)
        report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
        assert report.ok, report.to_dict()
    finally:
        stop.set()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "MATCH" in stdout and "FLUSHALL" in stderr
    # the source's notify-keyspace-events is back as it was
    assert source.client().config_get("notify-keyspace-events")["notify-keyspace-events"] in (
        "", b"")
    assert source.client().exists("__kvmigrate:heartbeat") == 0


def test_typed_copy_redis8_to_valkey9_with_field_ttls(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8", extra_args=["--notify-keyspace-events", "KA"])
    target = lab.start("valkey-9")
    seed(source.endpoint, keys=1500)
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                     "--state", str(tmp_path / "s"))
    assert result.code == 0, result.output
    assert "typed commands" in result.stderr
    assert target.client().execute_command("HPEXPIRETIME", "seed:hash:field-ttl", "FIELDS", 2,
                                           "f0", "f5")[1] == -1
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.ok, report.to_dict()


def test_field_ttls_valkey8_cannot_hold_stop_the_sync(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8", extra_args=["--notify-keyspace-events", "KA"])
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=300)
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                     "--state", str(tmp_path / "s"))
    assert result.code == 4, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(
        "kvmigrate: error: 3 hash field TTL(s) could not be copied")
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                     "--state", str(tmp_path / "s2"), "--flush-target", "--allow-loss",
                     "field-ttl", "--verify-sample", "400")
    assert result.code == 0, result.output
    assert "known: db0 seed:hash:field-ttl: field-ttl" in result.stdout


def test_match_and_db_map(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("valkey-8.0", extra_args=["--notify-keyspace-events", "KA"])
    target = lab.start("valkey-8.1")
    source.client(0).set("user:1", "a")
    source.client(0).set("order:1", "b")
    source.client(1).set("user:2", "c")
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                     "--match", "user:*", "--db-map", "1:4", "--state", str(tmp_path / "s"))
    assert result.code == 0, result.output
    assert target.client(0).keys("*") == [b"user:1"]
    assert target.client(4).keys("*") == [b"user:2"]
    assert target.client(1).dbsize() == 0


def test_resume_after_kill_catches_up(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0", extra_args=[*NO_SYNC, "--notify-keyspace-events", "KA"])
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=2000)
    state = tmp_path / "state"
    args = [sys.executable, "-m", "migrate", "sync", "--source", source.url, "--target",
            target.url, "--mode", "scan", "--follow", "--state", str(state), "--status-json",
            str(tmp_path / "st.json")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        path = tmp_path / "st.json"
        if path.exists() and json.loads(path.read_text())["status"].get("phase") == "follow":
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait(10)
    # changes while kvmigrate is down: a delete, an update, a new key
    c = source.client()
    c.delete("seed:string:raw")
    c.set("seed:string:int", 42)
    c.set("made:while:down", 1)
    busy = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                   "--state", str(state))
    assert busy.code == 2 and "--resume" in busy.stderr
    resumed = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                      "--state", str(state), "--resume")
    assert resumed.code == 0, resumed.output
    assert "removed 1 target key" in resumed.stderr
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.ok, report.to_dict()
    ledger = json.loads((state / "ledger.json").read_text())
    assert ledger["resumed"] == 1


def test_big_keys_are_copied_in_chunks(lab: Fleet, tmp_path: Path) -> None:
    """Keys bigger than BIG_KEY_BYTES (a string, a hash, a list, with TTLs) are copied by
    typed commands in chunks, not as one DUMP payload; smaller ones still by DUMP/RESTORE."""
    source = lab.start("redis-7.0", extra_args=["--notify-keyspace-events", "KA"])
    target = lab.start("valkey-8.0")
    rng = random.Random(11)
    c = source.client()
    c.set("big:string", rng.randbytes(BIG_KEY_BYTES + (3 << 20) + 5), ex=3600)
    c.set("big:empty", b"")
    fields = (BIG_KEY_BYTES // 1000) + 500
    for start in range(0, fields, 2000):
        c.hset("big:hash", mapping={f"f{i}": rng.randbytes(1000)
                                    for i in range(start, min(fields, start + 2000))})
        c.rpush("big:list", *[rng.randbytes(1000) for _ in range(start, min(fields,
                                                                             start + 2000))])
    c.pexpire("big:hash", 7_200_000)
    seed(source.endpoint, keys=500)
    state = tmp_path / "s"
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "scan",
                     "--state", str(state))
    assert result.code == 0, result.output
    ledger = json.loads((state / "ledger.json").read_text())
    copy = next(p for p in ledger["phases"] if p["name"] == "initial-copy")
    assert copy["counters"]["keys_chunked"] == 3, copy  # the big string, hash and list
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.ok, report.to_dict()["mismatches"][:5]
    t = target.client()
    assert t.get("big:empty") == b"" and 0 < t.ttl("big:string") <= 3600
