"""``kvmigrate lab``: provision, run and seed real Redis and Valkey servers on this machine."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from migrate.cli import lab_cluster
from migrate.cli.console import err, out, print_json
from migrate.errors import UsageError
from migrate.lab import dragonfly, install, registry
from migrate.lab.seed import PROFILES, census, seed
from migrate.lab.specs import KNOWN, SPECS, resolve_specs

app = typer.Typer(help="Real Redis and Valkey servers for tests, demos and rehearsals.",
                  no_args_is_help=True)
app.add_typer(lab_cluster.app, name="cluster")


@app.command("install")
def install_cmd(
    specs: Annotated[list[str] | None, typer.Argument(metavar="SPEC",
        help=f"Specs to install ({', '.join(SPECS)}, dragonfly), or 'all' (every Debian "
             "one).")] = None,
    force: Annotated[bool, typer.Option(help="Download and unpack again.")] = False,
    from_path: Annotated[str | None, typer.Option(
        "--from", metavar="FILE", envvar=dragonfly.ENV_FROM,
        help="dragonfly: a release tarball (dragonfly-ARCH.tar.gz) or binary to install "
             "instead of downloading the official release.")] = None,
) -> None:
    """Download server binaries into the lab cache: Redis and Valkey from Debian's archive,
    Dragonfly from its official release (checked against its published SHA-256) or --from."""
    for spec in resolve_specs(specs or ["all"]):
        progress = lambda m: err.print(f"  {m}", markup=False)  # noqa: E731
        if spec.name == dragonfly.SPEC:
            record = dragonfly.install_dragonfly(from_path, progress=progress, force=force)
        else:
            record = install.install(spec, progress=progress, force=force)
        out.print(f"{spec.name:<11} {spec.flavor} {record.version:<8} {record.binary}",
                  markup=False)


@app.command("list")
def list_cmd() -> None:
    """List the known server specs and whether each is installed."""
    table = Table("spec", "server", "installed", "from")
    for spec in KNOWN.values():
        record = install.installed(spec.name)
        table.add_row(spec.name, spec.description, record.version if record else "no",
                      f"{spec.package} ({spec.suite})" if spec.package else "release")
    out.print(table)


@app.command(
    "up", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def up_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for this server.")],
    server: Annotated[str | None, typer.Option("--server", "-s", metavar="SPEC",
                                                help="Spec to run, e.g. redis-7.0.")] = None,
    port: Annotated[int | None, typer.Option(
        metavar="PORT", help="Port on 127.0.0.1 (default: a free one).")]
    = None,
    binary: Annotated[str | None, typer.Option(metavar="FILE",
        help="Run this server binary instead of an installed spec.")] = None,
    password: Annotated[str | None, typer.Option(metavar="PASSWORD",
        help="Set requirepass on the server.", envvar="KVMIGRATE_LAB_PASSWORD")] = None,
) -> None:
    """Start a server on 127.0.0.1. Arguments after `--` go to the server."""
    proc = registry.up(name, server, port=port, extra_args=list(ctx.args), binary=binary,
                       password=password)
    out.print(f"{proc.name}: {proc.spec} ({proc.flavor} {proc.version}) on "
              f"{proc.endpoint.display()} pid {proc.pid}, log {proc.log_path}", markup=False)


@app.command("url")
def url_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The lab server.")],
) -> None:
    """Print the server's redis:// URL (with its password, for scripts: keep it private)."""
    out.print(registry.get_running(name).url, markup=False)


@app.command("down")
def down_cmd(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="The server to stop.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every lab server.")] = False,
) -> None:
    """Stop a lab server and remove its directory."""
    if all_:
        stopped = registry.down_all()
    elif name:
        stopped = [registry.down(name)]
    else:
        raise typer.BadParameter("give a NAME or --all")
    for proc in stopped:
        out.print(f"{proc.name}: stopped", markup=False)


@app.command("status")
def status_cmd(
    fmt: Annotated[str, typer.Option(
        "--format", metavar="table|json", help="table or json")] = "table",
) -> None:
    """Show the lab servers: name, server, version, port, pid, keys."""
    rows = []
    for proc in registry.all_instances():
        running = proc.alive()
        keys: int | None = None
        if running:
            try:
                keyspace = proc.client().info("keyspace")
                keys = sum(int(v["keys"]) for v in keyspace.values())
            except Exception:  # a busy or password-changed server still gets a row
                keys = None
        rows.append({"name": proc.name, "server": proc.spec, "version": proc.version,
                     "port": proc.port, "pid": proc.pid if running else None,
                     "state": "running" if running else "stopped", "keys": keys})
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        err.print("no lab servers; start one with: kvmigrate lab up NAME --server SPEC")
        return
    table = Table("name", "server", "version", "port", "pid", "keys", "state")
    for r in rows:
        table.add_row(str(r["name"]), str(r["server"]), str(r["version"]), str(r["port"]),
                      str(r["pid"] or "-"), "-" if r["keys"] is None else f"{r['keys']:,}",
                      str(r["state"]))
    out.print(table)


@app.command("seed")
def seed_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The lab server to fill.")],
    keys: Annotated[int, typer.Option(
        metavar="N", help="How many keys, in all databases.")] = 10000,
    profile: Annotated[str, typer.Option(
        metavar="PROFILE", help=f"One of: {', '.join(PROFILES)}.")] = "mixed",
    seed_value: Annotated[int, typer.Option("--seed", metavar="N",
        help="Random seed (same seed, same data).")]
    = 1,
    fmt: Annotated[str, typer.Option(
        "--format", metavar="table|json", help="table or json")] = "table",
) -> None:
    """Fill a lab server with deterministic data of every type and encoding."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    if profile not in PROFILES:  # checked before the progress bar, which would leave a line
        raise UsageError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    if keys < 0:
        raise UsageError("--keys must be 0 or more")
    proc = registry.get_running(name)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(f"seeding {name}", total=keys)
        report = seed(proc.endpoint, keys=keys, profile=profile, seed_value=seed_value,
                      progress=lambda n: bar.update(task, completed=n))
    encodings = census(proc.endpoint)
    if fmt == "json":
        print_json({"keys": report.keys, "by_db": dict(report.by_db),
                    "by_type": dict(report.by_type), "with_ttl": report.with_ttl,
                    "field_ttl_hashes": report.field_ttl_hashes,
                    "by_encoding": {f"{t}:{e}": n for (t, e), n in sorted(encodings.items())}})
        return
    table = Table("type", "encoding", "keys", title=f"{name}: {report.keys:,} keys seeded")
    for (t, e), n in sorted(encodings.items()):
        table.add_row(t, e, f"{n:,}")
    out.print(table)
    dbs = ", ".join(f"db{db}: {n:,}" for db, n in sorted(report.by_db.items()))
    out.print(f"databases: {dbs}; with TTL: {report.with_ttl:,}; hashes with field TTLs: "
              f"{report.field_ttl_hashes}", markup=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="lab")
