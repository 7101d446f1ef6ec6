"""A writer process issues every kind of write during the initial copy and afterwards; once
caught up, ``verify --full`` reports zero mismatches (replica and native modes; scan without
FLUSHDB, which keyspace notifications cannot show)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed
from tests.helpers import run_cli

WRITER = Path(__file__).with_name("writer.py")
NO_SYNC = ["--rename-command", "SYNC", "", "--rename-command", "PSYNC", ""]


@pytest.mark.parametrize("mode", ["replica", "native", "scan"])
def test_every_kind_of_write_during_and_after_the_copy(lab: Fleet, tmp_path: Path,
                                                       mode: str) -> None:
    extra = [*NO_SYNC, "--notify-keyspace-events", "KA"] if mode == "scan" else []
    source, target = lab.start("redis-7.0", extra_args=extra), lab.start("valkey-8.0")
    seed(source.endpoint, keys=5000)
    stop, count = tmp_path / "stop", tmp_path / "count"
    writer = subprocess.Popen([sys.executable, str(WRITER), source.url, str(stop), str(count),
                               *(["--no-flush"] if mode == "scan" else [])])
    status = tmp_path / "status.json"
    sync = None
    try:
        while not count.exists():  # writes before the copy starts
            time.sleep(0.05)
        sync = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source",
                                 source.url, "--target", target.url, "--mode", mode,
                                 "--follow", "--state", str(tmp_path / "state"),
                                 "--status-json", str(status)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if status.exists() and json.loads(status.read_text())["status"].get(
                    "phase") == "follow":
                break
            assert sync.poll() is None, sync.communicate()
            time.sleep(0.2)
        before = int(count.read_text())
        while int(count.read_text()) < before + 100:  # writes after the catch-up
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.05)
        stop.touch()
        writer.wait(30)
        assert int(count.read_text()) > before > 0
        # the sync applies the last writes within its lag: verified until it has (a
        # difference that stays past the deadline fails)
        settle = time.monotonic() + 60
        while True:
            result = run_cli("verify", "--source", source.url, "--target", target.url,
                             "--full", "--format", "json")
            report = json.loads(result.stdout)
            if result.code == 0 or time.monotonic() > settle:
                break
        assert result.code == 0, result.stdout[:3000]
        assert report["mismatches_total"] == 0
        assert report["keys_checked"] > 5000
    finally:
        stop.touch()
        if writer.poll() is None:
            writer.kill()
        if sync is not None and sync.poll() is None:
            sync.send_signal(signal.SIGINT)
            sync.communicate(timeout=60)
    assert sync.returncode == 0
