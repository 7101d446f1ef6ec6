"""Cut-over of a running `sync --follow` in replica, proxy and scan mode, under a writer that
fails over on NOREPLICAS: every acknowledged write is on the new primary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.verify.model import HEARTBEAT_KEY
from tests.cutover.test_cutover_native import FailoverWriter
from tests.helpers import run_cli


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


CASES = {
    # case: (mode, source spec, target spec, extra sync arguments)
    "replica": ("replica", "redis-8", "valkey-9", []),  # native replication cannot work
    "native": ("native", "redis-7.0", "valkey-8.0", []),  # the target replicates by itself
    "proxy-pass-through": ("proxy", "redis-7.0", "valkey-8.0", []),
    "proxy-rewrite": ("proxy", "redis-8", "valkey-9", []),  # field-TTL hashes as commands
    "scan": ("scan", "redis-7.0", "valkey-8.0", ["--set-notify-keyspace-events"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cutover_of_a_running_sync(case: str, lab: Fleet, tmp_path: Path) -> None:
    mode, source_spec, target_spec, extra = CASES[case]
    source, target = lab.start(source_spec), lab.start(target_spec)
    seed(source.endpoint, keys=2000)
    state = tmp_path / "state"
    env = {**os.environ, "NO_COLOR": "1"}
    sync = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--to", "valkey", "--mode", mode,
                             "--follow", "--state", str(state), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    writer = FailoverWriter(source, target)
    try:
        def following() -> bool:
            assert sync.poll() is None, sync.communicate()[1][-2000:]
            try:
                ledger = json.loads((state / "ledger.json").read_text())
            except (OSError, ValueError):
                return False
            return ledger.get("status", {}).get("phase") == "follow"

        wait_for(following, 120, "the sync to follow the source")
        thread = writer.start()
        writer.wait_acks(50)
        result = run_cli("cutover", "--state", str(state), "--yes", "--format", "json")
        if result.code == 0:
            writer.wait_acks(30, on="new")
        writer.stop.set()
        thread.join(10)
        assert result.code == 0, result.output[-3000:]
        record = json.loads(result.stdout)
        assert record["ok"] and 0 < record["paused_ms"] < 2000
        # the sync was asked to stop through the request/acknowledge record, and answered
        stop = next(s for s in record["steps"] if s["name"] == "sync-stop")
        assert stop["status"] == "done" and stop["detail"]["acknowledged"], stop
        assert stop["detail"]["status"] == "stopped", stop
        assert "SIGTERM" not in result.stderr, result.stderr[-2000:]
        sync.wait(30)
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    old = [a for a in writer.acks if a.server == "old"]
    new = [a for a in writer.acks if a.server == "new"]
    assert old and new, writer.errors[:3]
    values = target.client().mget([a.key for a in writer.acks])
    lost = [a.key for a, v in zip(writer.acks, values, strict=True) if v != str(a.value).encode()]
    assert not lost, lost[:10]
    assert max(a.at for a in old) < record["promoted_at"]
    with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
        source.client().set("late", 1)
    assert target.client().get("seed:string:int") == b"1234567"
    info = target.client().info("replication")
    assert info["role"] == "master", info
    assert target.client().exists(HEARTBEAT_KEY) == 0  # kvmigrate's own key is gone
    # the sync has exited (waited for above), so nothing it copies after promotion can
    # overwrite a write made on the new primary: the new primary keeps it
    assert sync.poll() is not None
    target.client().set("seed:string:int", "after")
    assert target.client().get("seed:string:int") == b"after"
    out, err = sync.communicate()
    assert sync.returncode == 0, err[-2000:]
    assert "stopped on request" in out + err and "SIGTERM: stopping" not in err, (out + err)[-2000:]
    ledger = json.loads((state / "ledger.json").read_text())
    follow = next(p for p in ledger["phases"] if p["name"] == "follow")
    assert follow["counters"]["stopped_on_request"] == stop["detail"]["request"], follow


def test_cutover_falls_back_to_sigterm_when_the_sync_does_not_answer(lab: Fleet,
                                                                      tmp_path: Path) -> None:
    """A sync that cannot answer the stop request (stopped with SIGSTOP) gets SIGTERM once the
    bound has passed, and the cut-over says so in one line."""
    source, target = lab.start("redis-8"), lab.start("valkey-9")
    # nothing moves the source's offset while the sync is stopped (no replication pings)
    source.client().config_set("repl-ping-replica-period", 3600)
    source.client().mset({f"k{i}": i for i in range(100)})
    state = tmp_path / "state"
    sync = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--to", "valkey", "--mode", "replica",
                             "--follow", "--verify-sample", "0", "--state", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    stopped = False
    try:
        def applied_all() -> bool:
            assert sync.poll() is None, sync.communicate()[1][-2000:]
            try:
                ledger = json.loads((state / "ledger.json").read_text())
                applied = json.loads((state / "applied.json").read_text())["offset"]
            except (OSError, ValueError, KeyError):
                return False
            offset = source.client().info("replication")["master_repl_offset"]
            return ledger["status"].get("phase") == "follow" and applied >= offset

        wait_for(applied_all, 120, "the sync to follow and apply everything")
        sync.send_signal(signal.SIGSTOP)
        stopped = True
        result = run_cli("cutover", "--state", str(state), "--yes", "--format", "json")
        assert result.code == 0, result.output[-3000:]
        line = [m for m in result.stderr.splitlines() if "did not acknowledge" in m]
        assert len(line) == 1 and f"sent SIGTERM to pid {sync.pid}" in line[0], result.stderr
        record = json.loads(result.stdout)
        stop = next(s for s in record["steps"] if s["name"] == "sync-stop")
        assert stop["status"] == "failed" and stop["detail"]["fallback"] == "SIGTERM", stop
        sync.send_signal(signal.SIGCONT)
        stopped = False
        sync.wait(30)
    finally:
        if stopped:
            sync.send_signal(signal.SIGCONT)
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    assert target.client().info("replication")["role"] == "master"
    assert target.client().get("k7") == b"7"


def test_cutover_refuses_when_the_replica_sync_is_not_running(lab: Fleet,
                                                              tmp_path: Path) -> None:
    source, target = lab.start("redis-8"), lab.start("valkey-9")
    source.client().set("k", 1)
    state = tmp_path / "state"
    done = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                   "--mode", "replica", "--state", str(state))
    assert done.code == 0, done.output
    result = run_cli("cutover", "--state", str(state), "--yes")
    assert result.code == 2 and "is not running" in result.stderr and "--follow" in result.stderr
    assert source.client().set("still-writable", 1)
