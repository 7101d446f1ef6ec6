"""``kvmigrate lab cluster`` as an operator uses it: up, status, url, down, and refusals in
one line with the documented exit code."""

from __future__ import annotations

import json
from pathlib import Path

from migrate.endpoint import Endpoint
from migrate.lab.server import free_port, port_in_use
from migrate.protocol.cluster.topology import discover
from tests.helpers import Result, run_cli


def _one_line(res: Result) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("kvmigrate: error: "), res.stderr
    return lines[0]


def _port_base(count: int) -> int:
    """A run of ``count`` free ports whose bus ports (+10000) are free too."""
    for _ in range(100):
        base = free_port()
        if base + count + 10000 < 65536 and not any(
                port_in_use(p) or port_in_use(p + 10000) for p in range(base, base + count)):
            return base
    raise AssertionError("no run of free ports found")


def test_up_status_url_down(isolated_lab_dir: Path) -> None:
    base = _port_base(3)
    up = run_cli("lab", "cluster", "up", "shop", "--server", "valkey-8.0", "--shards", "3",
                 "--port-base", str(base))
    assert up.code == 0, up.output
    ranges = ["0-5460 (5,461)", "5461-10921 (5,461)", "10922-16383 (5,462)"]
    lines = up.stdout.splitlines()
    assert len(lines) == 3
    for i, (line, slots) in enumerate(zip(lines, ranges, strict=True)):
        expected = (f"shop-{i}: redis://127.0.0.1:{base + i} slots {slots} "
                    f"bus port {base + i + 10000} pid ")
        assert line.startswith(expected) and line.removeprefix(expected).isdigit(), line
    assert "3 shards, 3 nodes, cluster_state:ok" in up.stderr
    for i in range(3):
        assert (isolated_lab_dir / "instances" / f"shop-{i}" / "nodes.conf").exists()

    status = run_cli("lab", "status", "--format", "json")
    rows = json.loads(status.stdout)
    assert [(r["name"], r["port"], r["state"]) for r in rows] == \
        [(f"shop-{i}", base + i, "running") for i in range(3)]

    url = run_cli("lab", "cluster", "url", "shop")
    assert url.code == 0 and url.stdout.strip() == f"redis://127.0.0.1:{base}"
    topology = discover(Endpoint.parse(url.stdout.strip()))
    assert topology.ok and [e.port for e in topology.primaries()] == [base, base + 1, base + 2]

    again = run_cli("lab", "cluster", "up", "shop", "--server", "valkey-8.0")
    assert again.code == 2 and "already running" in _one_line(again)  # a usage slip
    plain = run_cli("lab", "down", "shop")  # the cluster's name, not a server's
    assert plain.code == 2 and "lab cluster down shop" in plain.stderr

    down = run_cli("lab", "cluster", "down", "shop")
    assert down.code == 0, down.output
    assert down.stdout.splitlines() == [f"shop-{i}: stopped" for i in range(3)]
    assert run_cli("lab", "status", "--format", "json").stdout.strip() == "[]"
    assert not (isolated_lab_dir / "instances" / "shop-0").exists()


def test_replicas_password_and_plain_lab_down(isolated_lab_dir: Path) -> None:
    up = run_cli("lab", "cluster", "up", "sec", "--server", "redis-7.0", "--shards", "2",
                 "--replicas", "1", env={"KVMIGRATE_LAB_PASSWORD": "pw1"})
    assert up.code == 0, up.output
    assert "pw1" not in up.output
    assert [line.split(":")[0] for line in up.stdout.splitlines()] == \
        ["sec-0", "sec-2", "sec-1", "sec-3"]
    assert "replica of sec-0" in up.stdout.splitlines()[1]
    assert "2 shards, 4 nodes" in up.stderr
    url = run_cli("lab", "cluster", "url", "sec").stdout.strip()
    assert url.startswith("redis://:pw1@127.0.0.1:")
    topology = discover(Endpoint.parse(url))
    assert topology.coverage() == [] and [len(s.replicas) for s in topology.shards] == [1, 1]
    # the nodes are ordinary lab servers: `lab down` stops one, `lab down --all` the rest
    assert run_cli("lab", "down", "sec-3").code == 0
    assert run_cli("lab", "cluster", "url", "sec").code == 0  # sec-0 still runs
    assert run_cli("lab", "down", "--all").code == 0
    missing = run_cli("lab", "cluster", "url", "sec")
    assert missing.code == 2 and "no lab cluster named 'sec'" in _one_line(missing)


def test_refusals_are_one_line(isolated_lab_dir: Path) -> None:
    zero = run_cli("lab", "cluster", "up", "c", "--server", "redis-7.0", "--shards", "0")
    assert zero.code == 2
    assert "a lab cluster has 1 to 64 shards, not 0" in _one_line(zero)
    many = run_cli("lab", "cluster", "up", "c", "--server", "redis-7.0", "--replicas", "9")
    assert many.code == 2 and "0 to 5 replicas per shard, not 9" in _one_line(many)
    word = run_cli("lab", "cluster", "up", "c", "--server", "redis-7.0", "--shards", "three")
    assert word.code == 2 and "Invalid value for '--shards'" in _one_line(word)
    spec = run_cli("lab", "cluster", "up", "c", "--server", "redis-6", "--shards", "2")
    assert spec.code == 2 and "unknown server spec 'redis-6'" in _one_line(spec)
    name = run_cli("lab", "cluster", "up", "bad/name", "--server", "redis-7.0")
    assert name.code == 2 and "invalid lab cluster name" in _one_line(name)
    for args in (("down", "ghost"), ("url", "ghost")):
        res = run_cli("lab", "cluster", *args)
        assert res.code == 2 and "no lab cluster named 'ghost'" in _one_line(res)
    assert run_cli("lab", "status", "--format", "json").stdout.strip() == "[]"


def test_port_in_use_stops_nothing_it_did_not_start(isolated_lab_dir: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_cli("lab", "cluster", "up", "c", "--server", "valkey-9", "--shards", "2",
                      "--port-base", str(port))
    assert res.code == 2
    assert f"port {port} on 127.0.0.1 is in use" in _one_line(res)
    assert run_cli("lab", "status", "--format", "json").stdout.strip() == "[]"


def test_a_tls_cluster(isolated_lab_dir: Path) -> None:
    """``--tls``: nodes on TLS ports only, a CA made for the cluster, client certificates
    required; the options to reach it are printed, and ``down`` removes the certificates."""
    up = run_cli("lab", "cluster", "up", "secure", "--server", "valkey-9", "--shards", "2",
                 "--replicas", "1", "--tls")
    assert up.code == 0, up.output
    lines = up.stdout.splitlines()
    assert sorted(line.split(": ")[0] for line in lines) == [f"secure-{i}" for i in range(4)]
    assert all(line.split(": ")[1].startswith("rediss://127.0.0.1:") for line in lines)
    pki = isolated_lab_dir / "tls" / "secure"
    assert f"--source-tls-ca {pki / 'ca.crt'} --source-tls-cert {pki / 'client.crt'} " \
        f"--source-tls-key {pki / 'client.key'}" in up.stderr
    url = run_cli("lab", "cluster", "url", "secure").stdout.strip()
    assert url.startswith("rediss://")
    options = ["--source-tls-ca", str(pki / "ca.crt"), "--source-tls-cert",
               str(pki / "client.crt"), "--source-tls-key", str(pki / "client.key")]
    report = run_cli("preflight", "--source", url, *options, "--to", "valkey",
                     "--format", "json")
    assert report.code in (0, 1), report.output
    assert len(json.loads(report.stdout)["source"]["cluster"]["shards"]) == 2
    no_cert = run_cli("preflight", "--source", url, "--source-tls-ca", str(pki / "ca.crt"),
                      "--to", "valkey")  # client certificates are required
    assert no_cert.code == 3, no_cert.output
    _one_line(no_cert)
    down = run_cli("lab", "cluster", "down", "secure")
    assert down.code == 0 and not pki.exists()
