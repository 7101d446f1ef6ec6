"""``sync --follow --metrics-listen``: a real sync scraped over HTTP while it runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from migrate.lab.fleet import Fleet
from migrate.lab.server import free_port
from migrate.sync.metrics import is_loopback, parse_metrics_listen, render
from tests.helpers import run_cli
from tests.sync.prometheus_text import Scrape, parse, scrape


def _until(url: str, proc: subprocess.Popen[str], ok: Callable[[Scrape], bool],
           what: str, timeout: float = 120) -> Scrape:
    deadline = time.monotonic() + timeout
    last: Scrape | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            kind, last = scrape(url)
        except OSError:
            time.sleep(0.2)  # not listening yet
            continue
        assert kind.startswith("text/plain; version=0.0.4"), kind
        if ok(last):
            return last
        time.sleep(0.3)
    raise AssertionError(f"the metrics never showed {what}: {last and last.samples}")


def test_a_following_replica_sync_is_scraped(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-8"), lab.start("valkey-8.0")
    client = source.client()
    for i in range(500):
        client.set(f"k:{i}", i)
    client.hset("h", mapping={f"f{i}": i for i in range(20)})
    keys = client.dbsize()
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", "replica", "--follow",
                             "--state", str(tmp_path / "state"),
                             "--allow-loss", "field-ttl",
                             "--metrics-listen", str(port)],  # a port alone: loopback
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        first = _until(url, proc, lambda s: s.value("kvmigrate_keys") == keys and
                       s.values("kvmigrate_phase", phase="follow") == [1.0],
                       f"{keys} keys and the follow phase")
        assert first.types["kvmigrate_commands_applied_total"] == "counter"
        assert first.values("kvmigrate_info", mode="replica") == [1.0]
        # writes while it follows: Redis 8 replicates HINCRBYFLOAT as HSETEX ... KEEPTTL,
        # which Valkey 8.0 lacks (translated to HSET); a field TTL is dropped, as allowed
        for i in range(5):
            client.hincrbyfloat("h", f"f{i}", 0.5)
            client.set(f"new:{i}", i)
        client.hexpire("h", 600, "f10", "f11")
        after = _until(url, proc, lambda s: s.value("kvmigrate_commands_translated_total",
                                                    command="HSETEX") == 5 and
                       s.value("kvmigrate_commands_dropped_total") == 1 and
                       (s.value("kvmigrate_commands_applied_total") or 0) >= 11,
                       "5 HSETEX translated, 1 command dropped and 11 applied")
        assert after.value("kvmigrate_lag_bytes") is not None
        assert after.value("kvmigrate_lag_milliseconds") is not None  # the heartbeat's
        assert after.value("kvmigrate_ops_per_second") is not None
        assert after.value("kvmigrate_target_refused_total") == 0
        assert after.value("kvmigrate_status_updated_timestamp_seconds") > time.time() - 60
        assert target.client().hget("h", "f4") == b"4.5"
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert f"metrics at {url}" in err
    with pytest.raises(OSError):  # the listener is closed with the run
        scrape(url)


def test_bad_metrics_addresses_are_usage_errors_before_any_connection(
        tmp_path: Path) -> None:
    unreachable = "redis://127.0.0.1:1"  # connecting would be exit 3
    bad = run_cli("sync", "--source", unreachable, "--target", unreachable,
                  "--metrics-listen", "banana", "--state", str(tmp_path / "a"))
    assert bad.code == 2 and "invalid --metrics-listen 'banana'" in bad.stderr, bad.output
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        taken = run_cli("sync", "--source", unreachable, "--target", unreachable,
                        "--metrics-listen", f"127.0.0.1:{port}", "--state",
                        str(tmp_path / "b"))
    assert taken.code == 2, taken.output
    assert taken.stderr.startswith("kvmigrate: error: cannot listen on") and \
        taken.stderr.count("\n") == 1, taken.stderr


def test_listen_addresses() -> None:
    assert parse_metrics_listen("9187") == ("127.0.0.1", 9187)
    assert parse_metrics_listen(":9187") == ("127.0.0.1", 9187)
    assert parse_metrics_listen("0.0.0.0:9187") == ("0.0.0.0", 9187)
    assert parse_metrics_listen("[::1]:9187") == ("::1", 9187)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.10")


def test_a_cluster_status_is_labelled_per_shard() -> None:
    status = {"phase": "follow", "sync_phase": "following", "mode": "replica", "keys": 30,
              "lag_bytes": 7, "commands": 12, "updated": 1.5e9,
              "shards": [{"shard": i, "phase": "following", "keys_loaded": 10, "lag_bytes": i,
                          "commands": 4, "target_errors": 0,
                          "translated_commands": {"HGETDEL": i}} for i in range(3)]}
    text = parse(render(status, ops_per_s=2.0))
    assert text.values("kvmigrate_keys") == [10.0, 10.0, 10.0]  # no unlabelled total
    assert text.value("kvmigrate_lag_bytes", shard="2") == 2
    assert text.value("kvmigrate_commands_translated_total", shard="1", command="HGETDEL") == 1
    assert text.values("kvmigrate_shard_phase", shard="0", phase="following") == [1.0]
    assert text.value("kvmigrate_ops_per_second") == 2.0
