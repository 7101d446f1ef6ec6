"""A set of lab servers started together and always stopped together (tests, demo, benchmarks).

Unlike :mod:`migrate.lab.registry`, a fleet keeps no names on disk: each server lives in its
own folder under the fleet's directory and the fleet stops them all on exit.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from migrate.errors import LabError
from migrate.lab import install
from migrate.lab.server import ServerProcess, start_server
from migrate.lab.specs import get_spec
from migrate.lab.tls import ServerTls


class Fleet:
    def __init__(self, directory: Path):
        self.directory = directory
        self.servers: list[ServerProcess] = []
        self._counter = itertools.count(1)

    def start(self, spec_name: str, *, password: str | None = None,
              extra_args: list[str] | None = None, port: int | None = None,
              config_file: Path | None = None, name: str | None = None,
              lab_defaults: bool = True, tls: ServerTls | None = None) -> ServerProcess:
        """Start a server of ``spec_name``; the spec must be installed (``lab install``).
        With ``tls`` it listens on a TLS port only (:mod:`migrate.lab.tls`)."""
        spec = get_spec(spec_name)
        record = install.installed(spec.name)
        if record is None:
            raise LabError(f"server {spec.name} is not installed",
                           f"run: kvmigrate lab install {spec.name}")
        name = name or f"{spec.name}-{next(self._counter)}"
        proc = start_server(record, name=name, spec=spec.name, flavor=spec.flavor,
                            directory=self.directory / name, port=port, extra_args=extra_args,
                            password=password, config_file=config_file,
                            lab_defaults=lab_defaults, tls=tls)
        self.servers.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.servers):
            proc.stop()
        self.servers.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
