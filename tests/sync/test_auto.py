"""``--mode auto`` picks native when the target can load the source's RDB, else proxy, else
replica, else scan, and says which and why; bad options are refused before anything is
touched."""

from __future__ import annotations

from pathlib import Path

from migrate.lab.fleet import Fleet
from tests.helpers import run_cli


def test_auto_picks_native_then_proxy_then_replica_then_scan(lab: Fleet, tmp_path: Path) -> None:
    r70, v80 = lab.start("redis-7.0"), lab.start("valkey-8.0")
    r70.client().set("k", 1)
    native = run_cli("sync", "--source", r70.url, "--target", v80.url, "--state",
                     str(tmp_path / "a"))
    assert native.code == 0, native.output
    assert "mode native: the target can load the source's RDB" in native.stderr

    r8, v9 = lab.start("redis-8"), lab.start("valkey-9")
    r8.client().set("k", 1)
    proxy = run_cli("sync", "--source", r8.url, "--target", v9.url, "--state",
                    str(tmp_path / "b"))
    assert proxy.code == 0, proxy.output
    assert "mode proxy: native cannot work (redis 8.0.6 writes RDB 12" in proxy.stderr

    # proxy cannot map databases: auto takes replica
    v9b = lab.start("valkey-9")
    replica = run_cli("sync", "--source", r8.url, "--target", v9b.url, "--db-map", "0:1",
                      "--state", str(tmp_path / "b2"))
    assert replica.code == 0, replica.output
    assert "mode replica: native cannot work" in replica.stderr

    locked = lab.start("redis-7.0", extra_args=["--rename-command", "SYNC", "",
                                                "--rename-command", "PSYNC", "",
                                                "--notify-keyspace-events", "KA"])
    locked.client().set("k", 1)
    other = lab.start("valkey-8.0")
    scan = run_cli("sync", "--source", locked.url, "--target", other.url, "--state",
                   str(tmp_path / "c"))
    assert scan.code == 0, scan.output
    assert "mode scan: native cannot work" in scan.stderr and "PSYNC" in scan.stderr

    # --match rules out native and replica: auto takes scan
    filtered = lab.start("valkey-8.1")
    match = run_cli("sync", "--source", locked.url, "--target", filtered.url, "--match", "k*",
                    "--state", str(tmp_path / "d"))
    assert match.code == 0 and "mode scan" in match.stderr


def test_refusals(lab: Fleet, tmp_path: Path) -> None:
    source, target = lab.start("redis-7.0"), lab.start("valkey-8.0")
    wrong_to = run_cli("sync", "--source", source.url, "--target", target.url, "--to",
                       "dragonfly", "--state", str(tmp_path / "a"))
    assert wrong_to.code == 2 and "--to dragonfly but the target is valkey" in wrong_to.stderr
    bad_mode = run_cli("sync", "--source", source.url, "--target", target.url, "--mode", "x",
                       "--state", str(tmp_path / "b"))
    assert bad_mode.code == 2
    replica_match = run_cli("sync", "--source", source.url, "--target", target.url, "--mode",
                            "replica", "--match", "a*", "--state", str(tmp_path / "c"))
    assert replica_match.code == 2 and "--match needs --mode scan" in replica_match.stderr
    gone = run_cli("sync", "--source", "redis://127.0.0.1:1", "--target", target.url)
    assert gone.code == 3
    assert target.client().info("replication")["role"] == "master"
