"""``kvmigrate sync`` from TLS sources (a private CA, client certificates required) on Redis
7.0, Valkey 8.0 and Valkey 9: replica, proxy and scan mode keep following writes; native mode
when the target can replicate over TLS, and auto choosing another mode when it cannot."""

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
from migrate.lab.server import ServerProcess
from migrate.lab.tls import Pki, ServerTls, replica_args
from migrate.verify.runner import VerifyOptions, verify
from tests.helpers import run_cli

SPECS = ["redis-7.0", "valkey-8.0", "valkey-9"]


def tls_args(side: str, server: ServerProcess) -> list[str]:
    """The --{side}-tls-* options that reach ``server`` (its CA and client certificate)."""
    assert server.tls_ca and server.tls_cert and server.tls_key
    return [f"--{side}-tls-ca", server.tls_ca, f"--{side}-tls-cert", server.tls_cert,
            f"--{side}-tls-key", server.tls_key]


def _in_sync(source: ServerProcess, target: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    report = None
    while time.monotonic() < deadline:
        report = verify(source.endpoint, target.endpoint, VerifyOptions(full=True))
        if report.ok:
            return
        time.sleep(0.5)
    raise AssertionError(report.to_dict() if report else "no report")


def _follow(args: list[str], status: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "sync", *args, "--follow",
                             "--status-json", str(status)],
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


@pytest.mark.parametrize("mode", ["replica", "proxy", "scan"])
@pytest.mark.parametrize("spec", SPECS)
def test_sync_follows_a_tls_source_that_requires_client_certificates(
        lab: Fleet, pki: Pki, tmp_path: Path, spec: str, mode: str) -> None:
    source = lab.start(spec, password="pw-tls-src", tls=ServerTls(pki, auth_clients=True),
                       extra_args=["--notify-keyspace-events", "KA"])
    target = lab.start("valkey-9")
    seed(source.endpoint, keys=1500, seed_value=5)
    proc = _follow(["--source", source.url, *tls_args("source", source), "--target",
                    target.url, "--mode", mode, "--state", str(tmp_path / "s")],
                   tmp_path / "status.json")
    try:
        client = source.client()
        for i in range(300):  # written while kvmigrate follows: they come over TLS
            client.set(f"live:{i}", i)
            client.hset(f"live-h:{i % 7}", f"f{i}", i)
        _in_sync(source, target)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert f"sync {mode}:" in stdout and "MATCH" in stdout
    assert "pw-tls-src" not in stdout + stderr
    assert target.client().get("live:299") == b"299"


def test_two_tls_servers_with_different_cas(lab: Fleet, pki: Pki, other_pki: Pki,
                                            tmp_path: Path) -> None:
    """Each side has its own CA (and client certificate): the options are per side."""
    source = lab.start("redis-7.0", tls=ServerTls(pki, auth_clients=True))
    target = lab.start("valkey-9", tls=ServerTls(other_pki, auth_clients=True))
    seed(source.endpoint, keys=800, seed_value=6)
    result = run_cli("sync", "--source", source.url, *tls_args("source", source),
                     "--target", target.url, *tls_args("target", target), "--mode", "replica",
                     "--state", str(tmp_path / "s"), "--verify-sample", "300")
    assert result.code == 0, result.output
    assert "sync replica:" in result.stdout and "MATCH" in result.stdout
    _in_sync(source, target)
    # one side's CA for the other side: refused at once, with the reason on one line
    crossed = run_cli("sync", "--source", source.url, *tls_args("source", target),
                      "--target", target.url, *tls_args("target", target),
                      "--state", str(tmp_path / "x"))
    assert crossed.code == 3, crossed.output
    assert crossed.stderr.count("\n") == 1 and crossed.stderr.startswith("kvmigrate: error:")
    assert "certificate verify failed" in crossed.stderr


@pytest.mark.parametrize("spec", SPECS)
def test_native_over_tls_when_the_target_replicates_over_tls(lab: Fleet, pki: Pki,
                                                            tmp_path: Path, spec: str) -> None:
    source = lab.start(spec, password="pw-native", tls=ServerTls(pki, auth_clients=True))
    target = lab.start("valkey-9", extra_args=replica_args(pki))
    seed(source.endpoint, keys=1000, seed_value=7)
    result = run_cli("sync", "--source", source.url, *tls_args("source", source), "--target",
                     target.url, "--mode", "native", "--state", str(tmp_path / "s"),
                     "--verify-sample", "300")
    assert result.code == 0, result.output
    assert "sync native:" in result.stdout and "MATCH" in result.stdout
    info = target.client().info("replication")
    assert info["role"] == "slave" and info["master_link_status"] == "up"
    _in_sync(source, target)


def test_auto_does_not_choose_native_when_the_target_has_no_tls(lab: Fleet, pki: Pki,
                                                               tmp_path: Path) -> None:
    source = lab.start("valkey-8.0", tls=ServerTls(pki))
    target = lab.start("valkey-9")  # no certificate: it cannot replicate over TLS
    seed(source.endpoint, keys=500, seed_value=8)
    forced = run_cli("sync", "--source", source.url, "--source-tls-ca", str(pki.ca_cert),
                     "--target", target.url, "--mode", "native", "--state",
                     str(tmp_path / "n"))
    assert forced.code == 2, forced.output
    assert "no TLS certificate and CA to replicate with" in forced.stderr
    assert target.client().info("replication")["role"] == "master"
    auto = run_cli("sync", "--source", source.url, "--source-tls-ca", str(pki.ca_cert),
                   "--target", target.url, "--state", str(tmp_path / "a"),
                   "--verify-sample", "200")
    assert auto.code == 0, auto.output
    assert "native cannot work (the source is reached over TLS" in auto.stderr
    assert "sync native:" not in auto.stdout and "MATCH" in auto.stdout
    _in_sync(source, target)
