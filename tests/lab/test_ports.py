"""Lab servers started at the same time never share a port: each pytest-xdist worker takes
its ports from its own share of a range below the ephemeral ports, and a server that finds
its port taken anyway (by another test run's server) is started again on another."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from migrate.errors import UsageError
from migrate.lab import ports
from migrate.lab.cluster import start_cluster
from migrate.lab.fleet import Fleet


def test_each_worker_has_its_own_share() -> None:
    whole = range(20000, 32000)
    shares = [ports.share(whole, f"gw{i}", "3") for i in range(3)]
    assert [(s.start, s.stop) for s in shares] == [(20000, 24000), (24000, 28000),
                                                  (28000, 32000)]
    assert ports.share(whole, None, None) == whole  # not under xdist: all of it
    assert ports.share(whole, "gw0", "1") == whole
    assert ports.share(whole, "master", "2") == whole


def test_the_range_is_below_the_ephemeral_ports() -> None:
    low, _ = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    assert ports.RANGE[1] <= int(low)


def test_the_range_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.ENV_RANGE, "40000-40009")
    assert ports.lab_range() == range(40000, 40010)
    monkeypatch.setenv(ports.ENV_RANGE, "banana")
    with pytest.raises(UsageError, match="KVMIGRATE_LAB_PORTS='banana'"):
        ports.lab_range()


def test_a_process_hands_out_no_port_twice_until_it_went_round() -> None:
    picked = [ports.free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)
    assert all(not ports.port_in_use(p) for p in picked)


def _hand_out(monkeypatch: pytest.MonkeyPatch, module: str, *first: int) -> None:
    """``module``'s free_port() gives ``first`` (ports another process took meanwhile), then
    free ones."""
    given = iter(first)
    monkeypatch.setattr(f"{module}.free_port", lambda: next(given, None) or ports.free_port())


def test_a_port_taken_before_the_server_bound_it_is_replaced(
        lab: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:  # bound, not listening: nothing answers there
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        _hand_out(monkeypatch, "migrate.lab.server", taken)
        proc = lab.start("valkey-8.0")
    assert proc.port != taken and proc.client().ping()
    assert "Address already in use" in (lab.directory / proc.name / "server.log").read_text()


@pytest.mark.parametrize("spec", ["redis-7.0", "dragonfly"])
def test_a_server_answering_on_the_port_is_not_taken_for_ours(
        spec: str, lab: Fleet, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    """Another process's server got the port first: it answers PING there while ours fails
    to bind it; ours is started again on another port, never mistaken for that one."""
    if spec == "dragonfly":
        request.getfixturevalue("dragonfly_installed")
    other = lab.start(spec)
    _hand_out(monkeypatch, "migrate.lab.server", other.port)
    ours = lab.start(spec)
    assert ours.port != other.port and ours.pid != other.pid
    assert int(ours.client().info("server")["process_id"]) == ours.pid


def test_a_cluster_node_whose_bus_port_was_taken_is_started_again(
        lab: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        # node 0's port, then its bus port
        _hand_out(monkeypatch, "migrate.lab.cluster", ports.free_port(), taken)
        handle = start_cluster(lab, "valkey-9", 2)
    assert taken not in handle.bus_ports.values()
    assert {n.port for n in handle.nodes}.isdisjoint(handle.bus_ports.values())


def test_an_explicit_port_in_use_is_a_usage_error(lab: Fleet) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        with pytest.raises(UsageError, match="is in use"):
            lab.start("redis-7.0", port=holder.getsockname()[1])
