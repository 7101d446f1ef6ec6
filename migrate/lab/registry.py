"""Named lab servers (``kvmigrate lab up NAME``), kept under ``<lab dir>/instances/NAME``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from migrate.errors import LabError, UsageError
from migrate.lab import install, paths
from migrate.lab.server import ServerProcess, start_server
from migrate.lab.specs import get_spec
from migrate.lab.tls import ServerTls

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _dir(name: str) -> Path:
    if not NAME_RE.match(name):
        raise UsageError(f"invalid lab name {name!r}: use letters, digits, '.', '_' or '-'")
    return paths.instances_dir() / name


def get(name: str) -> ServerProcess:
    directory = _dir(name)
    if not (directory / "instance.json").exists():
        known = ", ".join(p.name for p in all_instances()) or "none"
        if (_dir(f"{name}-0") / "instance.json").exists():  # a lab cluster's nodes
            raise UsageError(f"no lab server named {name!r}: {name!r} is a lab cluster "
                             f"(nodes {name}-0, {name}-1, ...)",
                             f"use: kvmigrate lab cluster down {name} (or url {name})")
        raise UsageError(f"no lab server named {name!r} (known: {known})",
                         "start one with: kvmigrate lab up NAME --server SPEC")
    return ServerProcess.load(directory)


def get_running(name: str) -> ServerProcess:
    proc = get(name)
    if not proc.alive():
        raise LabError(f"lab server {name!r} is not running",
                       f"start it again with: kvmigrate lab up {name} --server {proc.spec}")
    return proc


def all_instances() -> list[ServerProcess]:
    root = paths.instances_dir()
    if not root.exists():
        return []
    return [ServerProcess.load(d) for d in sorted(root.iterdir())
            if (d / "instance.json").exists()]


def up(name: str, spec_name: str | None, *, port: int | None = None,
       extra_args: list[str] | None = None, binary: str | None = None,
       password: str | None = None, tls: ServerTls | None = None) -> ServerProcess:
    directory = _dir(name)
    if (directory / "instance.json").exists():
        existing = ServerProcess.load(directory)
        if existing.alive():
            raise UsageError(f"lab server {name!r} is already running on port "
                             f"{existing.port}", f"stop it first: kvmigrate lab down {name}")
    record: install.Installed | None
    if binary:
        record, flavor = install.from_binary(binary)
        spec_label = f"custom:{flavor}-{record.version}"
    else:
        if spec_name is None:
            raise UsageError("give --server SPEC or --binary PATH")
        spec = get_spec(spec_name)
        record = install.installed(spec.name)
        if record is None:
            raise LabError(f"server {spec.name} is not installed",
                           f"run: kvmigrate lab install {spec.name}")
        flavor, spec_label = spec.flavor, spec.name
    if directory.exists():
        shutil.rmtree(directory)
    return start_server(record, name=name, spec=spec_label, flavor=flavor,
                        directory=directory, port=port, extra_args=extra_args,
                        password=password, tls=tls)


def down(name: str) -> ServerProcess:
    proc = get(name)
    proc.stop()
    shutil.rmtree(_dir(name), ignore_errors=True)
    return proc


def down_all() -> list[ServerProcess]:
    return [down(p.name) for p in all_instances()]
