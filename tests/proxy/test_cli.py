"""``kvmigrate sync --mode proxy`` through the real CLI."""

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


def test_cli_proxy_redis8_to_valkey80(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-8", password="pw-src")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=3000, seed_value=21)
    source.client().delete("seed:hash:field-ttl")
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                     "--mode", "proxy", "--listen", "127.0.0.1:0", "--state",
                     str(tmp_path / "state"))
    assert result.code == 0, result.output
    assert "sync proxy:" in result.stdout and "MATCH" in result.stdout
    assert "REDIS0012 -> REDIS0011" in result.stderr and "records not parsed" in result.stderr
    assert "pw-src" not in result.output
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.ok and report.keys_checked >= 2999, report.to_dict()


def test_cli_proxy_refuses_vector_set_and_leaves_target_alone(lab: Fleet,
                                                              tmp_path: Path) -> None:
    source = lab.start("redis-8")
    target = lab.start("valkey-8.0")
    source.client().execute_command("VADD", "vec", "VALUES", 2, 0.5, 0.25, "a")
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "proxy", "--state", str(tmp_path / "state"))
    assert result.code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "module value" in errors[0] and "vec" in errors[0]
    assert target.client().info("replication")["role"] == "master"
    assert target.client().dbsize() == 0


def test_cli_proxy_bad_listen_and_db_map(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0")
    target = lab.start("valkey-8.0")
    bad = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "proxy",
                  "--listen", "127.0.0.1:notaport", "--state", str(tmp_path / "a"))
    assert bad.code == 2 and "invalid --listen" in bad.stderr
    mapped = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                     "proxy", "--db-map", "0:1", "--state", str(tmp_path / "b"))
    assert mapped.code == 2 and "--db-map needs --mode replica" in mapped.stderr
    assert target.client().info("replication")["role"] == "master"


def test_cli_proxy_follow_until_sigint(lab: Fleet, tmp_path: Path) -> None:
    source = lab.start("redis-7.0")
    target = lab.start("valkey-8.0")
    seed(source.endpoint, keys=1500, seed_value=22, profile="strings")
    status = tmp_path / "status.json"
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", "proxy", "--follow",
                             "--state", str(tmp_path / "state"), "--status-json", str(status)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (status.exists() and
                   json.loads(status.read_text())["status"].get("phase") == "follow"):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        client = source.client()
        for i in range(100):
            client.set(f"after:{i}", i)
        deadline = time.monotonic() + 30
        while target.client().get("after:99") != b"99" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.client().get("after:99") == b"99"
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "sync proxy:" in stdout and "REPLICAOF NO ONE" in stderr
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.ok and report.keys_checked == 1600, report.to_dict()


def test_bad_listen_is_refused_before_the_target_is_flushed(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    source.client().set("k", 1)
    target.client().set("precious", 1)
    result = run_cli("sync", "--source", source.url, "--target", target.url, "--to", "valkey",
                     "--mode", "proxy", "--listen", "no-such-host.invalid:7390",
                     "--flush-target", "--state", str(tmp_path / "st"))
    assert result.code == 2 and "cannot listen on" in result.stderr
    assert target.client().get("precious") == b"1"


def test_a_run_killed_while_the_target_loads_leaves_it_empty_and_a_new_run_loads_it(
        lab: Fleet, tmp_path: Path) -> None:
    """kvmigrate killed (SIGKILL) while the target loads the RDB as it arrives: the target
    drops the half load (empty, still a replica of the dead proxy's address) and a new run
    loads it in full. Only its repl-diskless-load stays as the killed run set it
    (docs/sync.md), and the new run leaves that value alone."""
    source = lab.start("redis-7.0", extra_args=["--repl-diskless-sync-delay", "0"])
    target = lab.start("valkey-8.0", extra_args=[
        "--repl-diskless-load", "disabled", "--key-load-delay", "500",
        "--loading-process-events-interval-bytes", "1024"])  # answers while it loads
    seed(source.endpoint, keys=20000, profile="strings")
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", "--source", source.url,
                             "--target", target.url, "--mode", "proxy", "--state",
                             str(tmp_path / "killed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while target.client().info("persistence")["loading"] != 1:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait(30)
    while target.client().info("persistence")["loading"] == 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert target.client().dbsize() == 0
    assert target.client().info("replication")["role"] == "slave"
    setting = "repl-diskless-load"
    assert target.client().config_get(setting) == {setting: "on-empty-db"}
    target.client().config_set("key-load-delay", 0)
    again = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "proxy",
                    "--flush-target", "--state", str(tmp_path / "again"))
    assert again.code == 0, again.output
    report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
    assert report.ok and report.keys_checked == source.client().dbsize(), report.to_dict()
    assert target.client().config_get(setting) == {setting: "on-empty-db"}
