"""``kvmigrate lab cluster``: run a cluster of lab servers (added under ``lab`` by
:mod:`migrate.cli.lab`; this module has no ``register``, so it is not a top-level command)."""

from __future__ import annotations

from typing import Annotated

import typer

from migrate.cli.console import err, out
from migrate.lab import cluster
from migrate.lab.specs import SPECS

app = typer.Typer(help="Clusters of lab servers: N primaries sharing the 16384 slots.",
                  no_args_is_help=True)


@app.command("up")
def up_cmd(
    name: Annotated[str, typer.Argument(
        metavar="NAME", help="A name for the cluster; nodes are NAME-0 ...")],
    server: Annotated[str, typer.Option("--server", "-s", metavar="SPEC",
                                        help=f"Spec to run: {', '.join(SPECS)}.")],
    shards: Annotated[int, typer.Option(metavar="N", help="How many primaries (1 to 64).")] = 3,
    replicas: Annotated[int, typer.Option(metavar="N", help="Replicas per primary (0 to 5).")] = 0,
    password: Annotated[str | None, typer.Option(metavar="PASSWORD",
        help="Set requirepass and masterauth on every node.",
        envvar="KVMIGRATE_LAB_PASSWORD")] = None,
    port_base: Annotated[int | None, typer.Option(metavar="PORT",
        help="Node i listens on PORT_BASE+i (default: free ports).")] = None,
    timeout: Annotated[float, typer.Option(metavar="S",
        help="Seconds to wait for cluster_state:ok on every node.")] = cluster.READY_TIMEOUT_S,
    tls: Annotated[bool, typer.Option(
        "--tls", help="TLS only (cluster bus and replication too), with a CA made for the "
                      "cluster; client certificates required.")] = False,
) -> None:
    """Start a cluster on 127.0.0.1: the slots spread evenly, every node a lab server."""
    handle = cluster.up(name, server, shards, replicas=replicas, password=password,
                        port_base=port_base, timeout=timeout, tls=tls)
    for primary, slots, followers in zip(handle.nodes, handle.ranges, handle.replicas,
                                         strict=True):
        for node in (primary, *followers):
            role = f"slots {slots} ({len(slots):,})" if node is primary \
                else f"replica of {primary.name}"
            out.print(f"{node.name}: {node.endpoint.display()} {role} bus port "
                      f"{handle.bus_ports[node.name]} pid {node.pid}", markup=False)
    first = handle.nodes[0]
    err.print(f"cluster {name}: {first.spec} ({first.flavor} {first.version}), "
              f"{len(handle.nodes)} shards, {len(handle.all_nodes)} nodes, cluster_state:ok; "
              f"logs in {first.log_path.parent.parent}/{name}-*/server.log", markup=False)
    if first.tls:
        err.print(f"TLS only: reach it with --source-tls-ca {first.tls_ca} --source-tls-cert "
                  f"{first.tls_cert} --source-tls-key {first.tls_key} (or --target-tls-*)",
                  markup=False)


@app.command("url")
def url_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The lab cluster.")],
) -> None:
    """Print the first node's redis:// URL (with its password, for scripts: keep it private)."""
    out.print(cluster.first_running(name).url, markup=False)


@app.command("down")
def down_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The cluster to stop.")],
) -> None:
    """Stop every node of a lab cluster and remove their directories."""
    for proc in cluster.down(name):
        out.print(f"{proc.name}: stopped", markup=False)
