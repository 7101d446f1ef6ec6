"""``sync --mode native`` on real servers: Redis 7.0 to Valkey 8.0 with auth, the ledger and
the status file; Redis 8 to Valkey 9 refused with the reason; the empty-target rule."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from migrate.verify.runner import VerifyOptions, verify
from tests.helpers import run_cli


def test_redis70_to_valkey80_native(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0", password="src-secret")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=5000)
    state, status = tmp_path / "state", tmp_path / "status.json"
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                     "--mode", "native", "--state", str(state), "--status-json", str(status),
                     "--verify-sample", "500")
    assert result.code == 0, result.output
    assert "MATCH" in result.stdout
    assert "src-secret" not in result.output + (state / "ledger.json").read_text()
    info = target.client().info("replication")
    assert info["role"] == "slave" and info["master_link_status"] == "up"
    assert target.client().config_get("masterauth")["masterauth"] in ("src-secret", b"src-secret")
    ledger = json.loads((state / "ledger.json").read_text())
    assert [p["name"] for p in ledger["phases"]] == ["prepare", "replicaof", "catch-up",
                                                     "verify"]
    assert all(p["status"] == "done" for p in ledger["phases"])
    assert json.loads(status.read_text())["status"]["phase"] == "done"
    assert not (state / "kvmigrate.pid").exists()
    # the heartbeat was removed, and the copy is exact
    assert source.client().exists("__kvmigrate:heartbeat") == 0
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.ok, report.to_dict()
    # the same folder again without --resume is refused; with --resume it continues
    again = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "native",
                    "--state", str(state))
    assert again.code == 2 and "--resume" in again.stderr
    resumed = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                      "native", "--state", str(state), "--resume")
    assert resumed.code == 0, resumed.output
    assert "already replicates" in resumed.stderr


def test_redis8_to_valkey9_native_is_refused_with_the_reason(lab: Fleet, tmp_path: Path) \
        -> None:
    source, target = lab.start("redis-8"), lab.start("valkey-9")
    source.client().set("k", "v")
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "native",
                     "--state", str(tmp_path / "s"))
    assert result.code == 2, result.output
    assert "RDB 12" in result.stderr and "use --mode replica" in result.stderr
    assert target.client().info("replication")["role"] == "master"
    assert not (tmp_path / "s").exists()


def test_non_empty_target_needs_flush_target(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    source.client().set("from-source", 1)
    target.client(3).set("already-here", 1)
    refused = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                      "native", "--state", str(tmp_path / "a"))
    assert refused.code == 2 and "--flush-target" in refused.stderr
    assert target.client(3).get("already-here") == b"1"
    assert target.client().info("replication")["role"] == "master"
    done = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "native",
                   "--state", str(tmp_path / "b"), "--flush-target")
    assert done.code == 0, done.output
    assert target.client(3).exists("already-here") == 0
    assert target.client().get("from-source") == b"1"


def test_follow_reports_lag_and_stops_on_sigterm(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    seed(source.endpoint, keys=1000)
    status = tmp_path / "status.json"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", "native", "--follow",
                             "--state", str(tmp_path / "st"), "--status-json", str(status)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        seen: dict = {}
        while time.monotonic() < deadline:
            if status.exists():
                seen = json.loads(status.read_text())["status"]
                if seen.get("phase") == "follow" and seen.get("lag_ms") is not None:
                    break
            source.client().incr("counter")
            time.sleep(0.2)
        assert seen.get("phase") == "follow", seen
        assert seen["lag_ms"] >= 0 and seen["lag_bytes"] is not None
        assert "verification" in seen
        proc.send_signal(signal.SIGTERM)
        _stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "SIGTERM" in stderr
    assert target.client().get("counter") == source.client().get("counter")
