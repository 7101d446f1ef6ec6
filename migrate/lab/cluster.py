"""Lab clusters: N cluster-mode primaries of one spec, the 16384 slots spread evenly over
them, optionally R replicas each.

Each node is an ordinary lab server named ``NAME-0`` .. ``NAME-(N-1)`` for the primaries and
``NAME-N`` ... for the replicas (so ``lab status`` and ``lab down`` see them), started with
``cluster-enabled yes``, its ``nodes.conf`` in its own directory and an explicit cluster bus
port. The primaries are given their slots (``CLUSTER ADDSLOTSRANGE``), every node a distinct
config epoch; the nodes are introduced (``CLUSTER MEET``), replicas follow their primary
(``CLUSTER REPLICATE``), and the cluster is ready once every node reports
``cluster_state:ok`` and knows every other node, and every replica's link is up.

With a :class:`~migrate.lab.tls.ServerTls` every node listens on its TLS port only, and the
cluster bus and replication run over TLS too (``tls-cluster yes``, ``tls-replication yes``):
the nodes announce their TLS ports in ``CLUSTER SHARDS``/``SLOTS``/``NODES``.

:func:`start_cluster` runs a cluster in a :class:`Fleet` (tests); :func:`up` and :func:`down`
run named ones in the lab directory (``kvmigrate lab cluster``).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from migrate.endpoint import Endpoint, raw_command
from migrate.errors import LabError, UsageError
from migrate.lab import paths, registry
from migrate.lab.fleet import Fleet
from migrate.lab.server import HOST, ServerProcess, free_port, on_fresh_ports, port_in_use
from migrate.lab.specs import get_spec
from migrate.lab.tls import ServerTls, make_pki
from migrate.protocol.cluster.slots import SLOTS
from migrate.protocol.cluster.topology import SlotRange, parse_cluster_info, parse_cluster_nodes

MAX_SHARDS = 64
MAX_REPLICAS = 5
READY_TIMEOUT_S = 30.0
BUS_PORT_OFFSET = 10000  # the servers' default: cluster bus port = port + 10000
CLUSTER_FLAG = "--cluster-enabled"


@dataclass
class ClusterHandle:
    """A running lab cluster: ``nodes[i]`` is the primary serving ``ranges[i]``,
    ``replicas[i]`` its replicas."""

    name: str
    spec: str
    nodes: list[ServerProcess]
    ranges: list[SlotRange]
    replicas: list[list[ServerProcess]] = field(default_factory=list)
    bus_ports: dict[str, int] = field(default_factory=dict)  # node name -> cluster bus port
    password: str | None = None

    @property
    def all_nodes(self) -> list[ServerProcess]:
        """Primaries first (in shard order), then the replicas."""
        return self.nodes + [r for shard in self.replicas for r in shard]

    @property
    def endpoints(self) -> list[Endpoint]:
        """The primaries' endpoints, in shard order."""
        return [n.endpoint for n in self.nodes]

    @property
    def endpoint(self) -> Endpoint:
        """The first node's endpoint: any node leads a cluster client to the others."""
        return self.nodes[0].endpoint

    @property
    def url(self) -> str:
        """The first node's URL, with the password in it (never print it)."""
        return self.nodes[0].url

    def stop(self) -> None:
        for node in reversed(self.all_nodes):
            node.stop()


def slot_ranges(shards: int) -> list[SlotRange]:
    """The 16384 slots in ``shards`` contiguous ranges whose sizes differ by one at most."""
    return [SlotRange(i * SLOTS // shards, (i + 1) * SLOTS // shards - 1) for i in range(shards)]


def _check_shape(shards: int, replicas: int) -> None:
    if not 1 <= shards <= MAX_SHARDS:
        raise UsageError(f"a lab cluster has 1 to {MAX_SHARDS} shards, not {shards}",
                         "give --shards N, e.g. --shards 3")
    if not 0 <= replicas <= MAX_REPLICAS:
        raise UsageError(f"a lab cluster has 0 to {MAX_REPLICAS} replicas per shard, "
                         f"not {replicas}", "give --replicas R, e.g. --replicas 1")


def _ports(count: int, port_base: int) -> list[tuple[int, int]]:
    """(port, cluster bus port) for each of ``count`` nodes on ``port_base + i``; the bus port
    is port + 10000 when that is free, else a free port."""
    if port_base < 1 or port_base + count - 1 > 65535:
        raise UsageError(f"--port-base {port_base} leaves no room for {count} ports "
                         "below 65536", "choose a lower --port-base")
    ports = list(range(port_base, port_base + count))
    for port in ports:
        if port_in_use(port):
            raise UsageError(f"port {port} on {HOST} is in use", "choose another --port-base")
    taken = set(ports)
    pairs = []
    for port in ports:
        bus = port + BUS_PORT_OFFSET
        if bus > 65535 or bus in taken or port_in_use(bus):
            while (bus := free_port()) in taken:
                pass
        taken.add(bus)
        pairs.append((port, bus))
    return pairs


def node_args(directory: Path, bus_port: int, password: str | None,
              tls: bool = False) -> list[str]:
    """The server arguments that make a lab server a cluster node (with ``tls``: its cluster
    bus and its replication over TLS)."""
    args = [CLUSTER_FLAG, "yes", "--cluster-config-file", str(directory / "nodes.conf"),
            "--cluster-port", str(bus_port), "--appendonly", "no"]
    if password:
        args += ["--masterauth", password]
    if tls:
        args += ["--tls-cluster", "yes", "--tls-replication", "yes"]
    return args


# start(node name, port, extra server args) -> the started node
Starter = Callable[[str, int, list[str]], ServerProcess]


def _build(name: str, spec_name: str, shards: int, *, replicas: int, password: str | None,
           port_base: int | None, start: Starter, directory_of: Callable[[str], Path],
           timeout: float, tls: bool = False) -> ClusterHandle:
    """Start, configure and wait for the nodes; stop every started node if any step fails."""
    _check_shape(shards, replicas)
    spec = get_spec(spec_name)
    count = shards * (1 + replicas)
    fixed = _ports(count, port_base) if port_base is not None else None
    handle = ClusterHandle(name, spec.name, [], slot_ranges(shards),
                           [[] for _ in range(shards)], password=password)
    deadline = time.monotonic() + timeout
    try:
        for i in range(count):
            node_name = f"{name}-{i}"

            def start_node(port: int, bus: int, node_name: str = node_name) \
                    -> tuple[ServerProcess, int]:
                return start(node_name, port,
                             node_args(directory_of(node_name), bus, password, tls)), bus

            # free ports: started again on others when one was taken before it was bound
            node, bus = start_node(*fixed[i]) if fixed is not None else \
                on_fresh_ports(lambda: start_node(free_port(), free_port()))
            handle.bus_ports[node.name] = bus
            if i < shards:
                handle.nodes.append(node)
            else:  # NAME-N .. are the replicas: shard 0's first, then shard 1's ...
                handle.replicas[(i - shards) // replicas].append(node)
        _configure(handle)
        _replicate(handle, deadline)
        wait_ready(handle, timeout=timeout, deadline=deadline)
    except BaseException:
        handle.stop()
        raise
    return handle


def _command(node: ServerProcess, *args: object) -> object:
    client = node.client()
    try:
        return raw_command(client, *args)
    except redis.RedisError as exc:
        raise LabError(f"{node.name}: {' '.join(str(a) for a in args[:2])} failed: {exc}",
                       f"see {node.log_path}") from None
    finally:
        client.close()


def _configure(handle: ClusterHandle) -> None:
    for epoch, node in enumerate(handle.all_nodes, 1):
        if epoch <= len(handle.ranges):
            slots = handle.ranges[epoch - 1]
            _command(node, "CLUSTER", "ADDSLOTSRANGE", slots.start, slots.end)
        # distinct epochs up front, as redis-cli --cluster create does: no epoch collisions
        _command(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
    first, *others = handle.all_nodes
    for node in others:
        _command(first, "CLUSTER", "MEET", HOST, node.port, handle.bus_ports[node.name])


def _replicate(handle: ClusterHandle, deadline: float) -> None:
    """Make each replica follow its primary, once gossip has told it about the primary."""
    for primary, replicas in zip(handle.nodes, handle.replicas, strict=True):
        if not replicas:
            continue
        primary_id = _decode(_command(primary, "CLUSTER", "MYID"))
        for replica in replicas:
            while primary_id not in _decode(_command(replica, "CLUSTER", "NODES")):
                if time.monotonic() > deadline:
                    raise LabError(f"cluster node {replica.name} never learnt of its primary "
                                   f"{primary.name}", f"see {replica.log_path}")
                time.sleep(0.1)
            _command(replica, "CLUSTER", "REPLICATE", primary_id)


def node_state(node: ServerProcess) -> dict[str, str]:
    """The node's ``CLUSTER INFO`` (empty when it cannot be read)."""
    client = node.client()
    try:
        return parse_cluster_info(_decode(raw_command(client, "CLUSTER", "INFO")))
    except (redis.RedisError, OSError):
        return {}
    finally:
        client.close()


def _decode(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _replica_linked(node: ServerProcess) -> bool:
    client = node.client(decode_responses=True)
    try:
        return client.info("replication").get("master_link_status") == "up"
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _sees_every_replica(node: ServerProcess, handle: ClusterHandle) -> bool:
    """The node's CLUSTER NODES has each replica as a replica (gossip spreads role changes)."""
    client = node.client()
    try:
        text = _decode(raw_command(client, "CLUSTER", "NODES"))
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    seen = {r.endpoint.port for s in parse_cluster_nodes(text, node.endpoint) for r in s.replicas}
    return seen == {r.port for shard in handle.replicas for r in shard}


def _node_ready(node: ServerProcess, handle: ClusterHandle, is_replica: bool) -> bool:
    info = node_state(node)
    return (info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == str(SLOTS)
            and info.get("cluster_known_nodes") == str(len(handle.all_nodes))
            and (not is_replica or _replica_linked(node))
            and (not any(handle.replicas) or _sees_every_replica(node, handle)))


def wait_ready(handle: ClusterHandle, *, timeout: float = READY_TIMEOUT_S,
               deadline: float | None = None) -> None:
    """Wait until every node says ``cluster_state:ok``, serves all slots, knows every node and
    every replica as one, and every replica's link to its primary is up; a node that never gets
    there raises :class:`LabError` naming what it reports. ``deadline`` (a monotonic time)
    replaces now + ``timeout`` when the wait is part of a longer one."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    nodes = handle.all_nodes
    replicas = {r.name for shard in handle.replicas for r in shard}
    pending = list(nodes)
    while True:
        for node in list(pending):
            if not node.alive():
                raise LabError(f"cluster node {node.name} exited: {node.log_tail()}",
                               f"see {node.log_path}")
            if _node_ready(node, handle, node.name in replicas):
                pending.remove(node)
        if not pending:
            return
        if time.monotonic() > deadline:
            node = pending[0]
            info = node_state(node)
            link = ", or its replicas not all linked or known" if any(handle.replicas) else ""
            raise LabError(
                f"lab cluster {handle.name!r} did not reach cluster_state:ok within "
                f"{timeout:.0f}s: {node.name} reports cluster_state:"
                f"{info.get('cluster_state', '?')}, slots ok "
                f"{info.get('cluster_slots_ok', '?')}/{SLOTS}, known nodes "
                f"{info.get('cluster_known_nodes', '?')}/{len(nodes)}{link}",
                f"see {node.log_path}")
        time.sleep(0.1)


def start_cluster(where: Fleet | Path, spec_name: str, shards: int, *, replicas: int = 0,
                  password: str | None = None, port_base: int | None = None,
                  name: str | None = None, timeout: float = READY_TIMEOUT_S,
                  tls: ServerTls | None = None) -> ClusterHandle:
    """Start a ready cluster of ``shards`` primaries with ``replicas`` replicas each, in a
    fleet (which then stops its nodes with the rest) or in a fresh fleet in directory
    ``where`` (stop it with ``.stop()``). With ``tls`` the nodes speak TLS only."""
    fleet = where if isinstance(where, Fleet) else Fleet(Path(where))
    if name is None:
        base = f"{spec_name}-cluster"
        name = next(f"{base}{k}" for k in range(1, 10_000)
                    if not (fleet.directory / f"{base}{k}-0").exists())

    def start(node_name: str, port: int, args: list[str]) -> ServerProcess:
        return fleet.start(spec_name, name=node_name, port=port, extra_args=args,
                           password=password, tls=tls)

    return _build(name, spec_name, shards, replicas=replicas, password=password,
                  port_base=port_base, start=start, directory_of=lambda n: fleet.directory / n,
                  timeout=timeout, tls=tls is not None)


def start_lone_node(fleet: Fleet, spec_name: str, *, extra_args: list[str] | None = None,
                    password: str | None = None) -> ServerProcess:
    """One cluster-mode server in ``fleet`` that met no other node and serves no slot yet,
    on free ports (its cluster bus port too: started again on others when one was taken)."""
    return on_fresh_ports(lambda: fleet.start(
        spec_name, password=password,
        extra_args=[CLUSTER_FLAG, "yes", "--cluster-port", str(free_port()),
                    *(extra_args or [])]))


# Named clusters in the lab directory (kvmigrate lab cluster ...)

def _node_index(cluster: str, proc: ServerProcess) -> int | None:
    match = re.fullmatch(rf"{re.escape(cluster)}-(\d+)", proc.name)
    if match is None or CLUSTER_FLAG not in proc.argv:
        return None
    return int(match.group(1))


def nodes(name: str) -> list[ServerProcess]:
    """The registered nodes of lab cluster ``name``, running or not, in node order."""
    found = [(i, p) for p in registry.all_instances()
             if (i := _node_index(name, p)) is not None]
    return [p for _, p in sorted(found, key=lambda pair: pair[0])]


def known_clusters() -> list[str]:
    names = {p.name.rsplit("-", 1)[0] for p in registry.all_instances()
             if CLUSTER_FLAG in p.argv and "-" in p.name}
    return sorted(n for n in names if nodes(n))


def _existing(name: str) -> list[ServerProcess]:
    found = nodes(name)
    if not found:
        known = ", ".join(known_clusters()) or "none"
        raise UsageError(f"no lab cluster named {name!r} (known: {known})",
                         "start one with: kvmigrate lab cluster up NAME --server SPEC "
                         "--shards N")
    return found


def up(name: str, spec_name: str, shards: int, *, replicas: int = 0,
       password: str | None = None, port_base: int | None = None,
       timeout: float = READY_TIMEOUT_S, tls: bool = False) -> ClusterHandle:
    """Start lab cluster ``name``; its nodes are the lab servers ``name-0`` ... (the
    primaries, then the replicas). With ``tls`` they speak TLS only, with a CA and
    certificates made for the cluster (:func:`paths.cluster_pki_dir`; client certificates
    required)."""
    _check_shape(shards, replicas)
    if not registry.NAME_RE.match(f"{name}-{shards * (1 + replicas) - 1}"):
        raise UsageError(f"invalid lab cluster name {name!r}: use letters, digits, '.', '_' "
                         "or '-'")
    get_spec(spec_name)
    running = [p for p in nodes(name) if p.alive()]
    if running:
        raise UsageError(f"lab cluster {name!r} is already running ({running[0].name} on port "
                         f"{running[0].port})", f"stop it first: kvmigrate lab cluster down {name}")
    for stale in nodes(name):  # the stopped nodes of an earlier cluster of that name
        registry.down(stale.name)
    shutil.rmtree(paths.cluster_pki_dir(name), ignore_errors=True)
    server_tls = ServerTls(make_pki(paths.cluster_pki_dir(name), f"kvmigrate lab {name}"),
                           auth_clients=True) if tls else None

    def start(node_name: str, port: int, args: list[str]) -> ServerProcess:
        return registry.up(node_name, spec_name, port=port, extra_args=args, password=password,
                           tls=server_tls)

    try:
        return _build(name, spec_name, shards, replicas=replicas, password=password,
                      port_base=port_base, start=start,
                      directory_of=lambda n: paths.instances_dir() / n, timeout=timeout,
                      tls=tls)
    except BaseException:
        for proc in nodes(name):  # _build stopped them; take them out of the lab too
            with contextlib.suppress(Exception):
                registry.down(proc.name)
        shutil.rmtree(paths.cluster_pki_dir(name), ignore_errors=True)
        raise


def down(name: str) -> list[ServerProcess]:
    """Stop every node of lab cluster ``name`` and remove their directories (and its
    certificates)."""
    stopped = [registry.down(p.name) for p in reversed(_existing(name))][::-1]
    shutil.rmtree(paths.cluster_pki_dir(name), ignore_errors=True)
    return stopped


def first_running(name: str) -> ServerProcess:
    """The first node of lab cluster ``name``; a stopped one raises :class:`LabError`."""
    first = _existing(name)[0]
    if not first.alive():
        raise LabError(f"lab cluster {name!r} is not running ({first.name} is stopped)",
                       f"start it again: kvmigrate lab cluster down {name}, then "
                       f"kvmigrate lab cluster up {name} --server {first.spec} ...")
    return first
