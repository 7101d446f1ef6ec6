"""Clusters over TLS (tls-port only, tls-cluster and tls-replication yes, a private CA per side,
client certificates required): ``sync --mode replica --follow`` from a 3-shard Redis 7.0
cluster into a 3-shard Valkey 8.0 cluster under writes, compared key by key; ``verify`` and
``preflight`` of a cluster; the cut-over of the cluster sync without repeating the TLS
options; a wrong CA refused with exit 3 and one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis
from redis.cluster import RedisCluster

from migrate.lab.cluster import ClusterHandle
from migrate.lab.tls import Pki, ServerTls
from migrate.protocol.cluster.topology import discover, parse_cluster_nodes
from tests.cluster.test_cluster_sync import LabCluster
from tests.helpers import run_cli
from tests.sync.test_tls import tls_args
from tests.test_tls_commands import error_line

KEYS = 400


def cluster_client(handle: ClusterHandle) -> RedisCluster:
    first = handle.nodes[0]
    return RedisCluster(host="127.0.0.1", port=first.port, password=handle.password,
                        **first.endpoint.redis_tls_kwargs())


def _value(client: Redis, key: bytes) -> tuple[bytes, object]:
    kind = client.type(key)
    if kind == b"string":
        return kind, client.get(key)
    if kind == b"hash":
        return kind, client.hgetall(key)
    if kind == b"list":
        return kind, client.lrange(key, 0, -1)
    if kind == b"zset":
        return kind, client.zrange(key, 0, -1, withscores=True)
    raise AssertionError(f"{key!r}: unexpected type {kind!r}")


def _everything(handle: ClusterHandle) -> dict[bytes, tuple[bytes, object]]:
    """Every key of the cluster with its type and value, read node by node."""
    found: dict[bytes, tuple[bytes, object]] = {}
    for node in handle.nodes:
        client = node.client()
        for key in client.scan_iter(count=500):
            found[key] = _value(client, key)
        client.close()
    return found


def _phase(state: Path) -> str | None:
    try:
        return json.loads((state / "ledger.json").read_text()).get("status", {}).get("phase")
    except (OSError, ValueError):
        return None


def test_cluster_sync_verify_and_preflight_over_tls(lab_cluster: LabCluster, pki: Pki,
                                                    other_pki: Pki, tmp_path: Path) -> None:
    # the source's nodes have a plain port too: a TLS client is told their TLS ports
    source = lab_cluster("redis-7.0", shards=3, password="pw-tls-cluster",
                         tls=ServerTls(pki, auth_clients=True, plain_port=True))
    target = lab_cluster("valkey-8.0", shards=3, tls=ServerTls(other_pki, auth_clients=True))
    src, tgt = source.nodes[0], target.nodes[0]
    tls_ports = sorted(n.port for n in source.nodes)
    assert sorted(e.port for e in discover(src.endpoint).primaries()) == tls_ports
    nodes_text = src.client().execute_command("CLUSTER", "NODES").decode()
    assert sorted(s.endpoint.port for s in parse_cluster_nodes(nodes_text, src.endpoint)) == \
        tls_ports
    rc = cluster_client(source)
    for i in range(KEYS):
        rc.set(f"s:{i}", f"value-{i}")
        if i % 10 == 0:
            rc.hset(f"h:{i}", mapping={"a": i, "b": "x" * i})
            rc.rpush(f"l:{i}", *range(i % 7 + 1))
            rc.zadd(f"z:{i}", {f"p{j}": j for j in range(3)})
    state = tmp_path / "state"
    sync = subprocess.Popen(
        [sys.executable, "-m", "migrate", "sync", "--source", source.url,
         *tls_args("source", src), "--target", target.url, *tls_args("target", tgt),
         "--to", "valkey", "--mode", "replica", "--follow", "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while _phase(state) != "follow":
            assert sync.poll() is None, sync.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the cluster sync did not reach follow"
            time.sleep(0.2)
        for i in range(60):  # written while it follows: they reach every shard over TLS
            rc.set(f"live:{i}", i)
            rc.hset(f"live-h:{{{i % 5}}}", f"f{i}", i)
        rc.delete("s:1", "s:2")
        tc = cluster_client(target)
        deadline = time.monotonic() + 60
        while tc.get("live:59") != b"59" or tc.exists("s:1"):
            assert sync.poll() is None, sync.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the writes made while following never came"
            time.sleep(0.2)
        tc.close()
        # the cut-over reaches every shard over TLS with the files the ledger recorded
        cutover = run_cli("cutover", "--state", str(state), "--source", source.url, "--yes",
                          "--format", "json")
        assert cutover.code == 0, cutover.output[-3000:]
        record = json.loads(cutover.stdout)
        assert record["ok"] and len(record["fences"]) == 3
        assert "pw-tls-cluster" not in cutover.output
        stdout, stderr = sync.communicate(timeout=120)  # the cut-over ends the run
    finally:
        if sync.poll() is None:
            sync.send_signal(signal.SIGINT)
            sync.communicate(timeout=120)
    rc.close()
    assert sync.returncode == 0, stderr[-3000:]
    assert "pw-tls-cluster" not in stdout + stderr
    ledger = json.loads((state / "ledger.json").read_text())
    assert ledger["run"]["cluster"] and len(ledger["run"]["shards"]) == 3
    # every shard's link was to a node's TLS port (from CLUSTER SHARDS, not its plain port)
    assert {s.rsplit(":", 1)[-1] for s in ledger["run"]["shards"]} == \
        {str(n.port) for n in source.nodes}

    on_source, on_target = _everything(source), _everything(target)
    assert len(on_source) == KEYS + KEYS // 10 * 3 - 2 + 60 + 5
    assert on_target.keys() == on_source.keys()
    differ = [k for k in on_source if on_source[k] != on_target[k]]
    assert differ == []

    checked = run_cli("verify", "--source", source.url, *tls_args("source", src),
                      "--target", target.url, *tls_args("target", tgt), "--full",
                      "--format", "json")
    assert checked.code == 0, checked.output[-3000:]
    assert json.loads(checked.stdout)["keys_checked"] == len(on_source)

    report = run_cli("preflight", "--source", source.url, *tls_args("source", src),
                     "--to", "valkey", "--target", target.url, *tls_args("target", tgt),
                     "--format", "json")
    assert report.code in (0, 1), report.output[-3000:]
    facts = json.loads(report.stdout)
    assert facts["source"]["keys"] == len(on_source)
    assert "pw-tls-cluster" not in report.output

    # the other side's CA: refused before anything is read, on one line
    for command in (["verify", "--source", source.url, *tls_args("source", tgt),
                     "--target", target.url, *tls_args("target", tgt)],
                    ["preflight", "--source", source.url, *tls_args("source", tgt),
                     "--to", "valkey"],
                    ["sync", "--source", source.url, *tls_args("source", src),
                     "--target", target.url, *tls_args("target", src),
                     "--state", str(tmp_path / "wrong")]):
        wrong = run_cli(*command)
        assert wrong.code == 3, (command[0], wrong.output[-2000:])
        assert "certificate verify failed" in error_line(wrong.stderr), command[0]
