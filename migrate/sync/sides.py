"""The two sides of a sync. A source is read through one reader per shard (one for a
standalone server); a target is written through a writer per database. A Redis Cluster fits
later as a source whose ``shards`` are its primaries and a target whose ``writer`` routes
commands by hash slot, without changing the modes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self, cast

import redis

from migrate.endpoint import Endpoint, has_command, raw_command
from migrate.protocol.pipeline import PipelineWriter
from migrate.serverinfo import ServerIdentity, identify
from migrate.verify.runner import keyspace


@dataclass
class Side:
    endpoint: Endpoint
    client: redis.Redis
    identity: ServerIdentity

    @classmethod
    def connect(cls, endpoint: Endpoint) -> Self:
        client = endpoint.client()
        return cls(endpoint, client, identify(client.info("server")))

    def info(self, section: str) -> dict[str, Any]:
        return self.client.info(section)

    def keyspace(self) -> dict[int, int]:
        return keyspace(self.info("keyspace"))

    def has(self, command: str) -> bool:
        return has_command(self.client, command)

    def __str__(self) -> str:
        return f"{self.identity} at {self.endpoint.display()}"

    def write_commands(self) -> frozenset[str]:
        """The commands this server flags ``write`` (COMMAND), lower case."""
        out = set()
        for entry in cast(list[Any], raw_command(self.client, "COMMAND")):
            name, flags = entry[0], entry[2]
            if b"write" in flags or "write" in flags:
                out.add(name.decode().lower() if isinstance(name, bytes) else str(name).lower())
        return frozenset(out)

    def command_names(self) -> frozenset[str]:
        """The target's own commands, lower case (COMMAND LIST; COMMAND where it has none)."""
        try:
            names = cast(list[Any], raw_command(self.client, "COMMAND", "LIST"))
        except redis.ResponseError:
            names = [c[0] for c in cast(list[Any], raw_command(self.client, "COMMAND"))]
        return frozenset(n.decode().lower() if isinstance(n, bytes) else str(n).lower()
                         for n in names)


class Source(Side):
    def shards(self) -> list[Endpoint]:
        """Where to read from: one endpoint per shard (a standalone server is one shard)."""
        return [self.endpoint]


class Target(Side):
    def writer(self, db: int = 0) -> PipelineWriter:
        """A pipelined writer into ``db`` (a cluster target routes by slot:
        :class:`migrate.cluster.sides.ClusterTarget`)."""
        return PipelineWriter(self.endpoint, db=db)

    def flushall(self) -> None:
        self.client.flushall()
