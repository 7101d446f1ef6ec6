"""The two sides of a sync. A source is read through one reader per shard (one for a
standalone server); a target is written through a writer per database. A Redis Cluster fits
later as a source whose ``shards`` are its primaries and a target whose ``writer`` routes
commands by hash slot, without changing the modes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from migrate.endpoint import Endpoint, has_command
from migrate.protocol.pipeline import PipelineWriter
from migrate.serverinfo import ServerIdentity, identify
from migrate.verify.runner import keyspace


@dataclass
class Side:
    endpoint: Endpoint
    client: redis.Redis
    identity: ServerIdentity

    @classmethod
    def connect(cls, endpoint: Endpoint) -> Side:
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
