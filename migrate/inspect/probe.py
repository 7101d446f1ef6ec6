"""A read-only command channel to one server that counts every command it sends.

Only commands in :data:`READ_ONLY` may pass: a typo that would send a write to a source
fails here, before it reaches the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from migrate.endpoint import Endpoint, raw_command
from migrate.errors import KvmError

READ_ONLY = frozenset({
    "INFO", "CONFIG GET", "MODULE LIST", "ACL LIST", "FUNCTION LIST", "CLIENT LIST",
    "CLUSTER INFO", "CLUSTER NODES", "COMMAND LIST", "COMMAND", "COMMAND INFO", "PUBSUB NUMPAT",
    "PUBSUB CHANNELS", "SCAN", "TYPE", "OBJECT ENCODING", "MEMORY USAGE", "PTTL", "HRANDFIELD",
    "HPTTL", "STRLEN", "LLEN", "SCARD", "ZCARD", "HLEN", "XLEN", "PING",
})


def _name(args: Sequence[Any]) -> str:
    first = str(args[0]).upper()
    two = f"{first} {str(args[1]).upper()}" if len(args) > 1 else first
    return two if two in READ_ONLY else first


class Probe:
    """Counts commands; :meth:`call` for one, :meth:`batch` for a pipeline of many."""

    def __init__(self, endpoint: Endpoint, *, db: int | None = None):
        self.endpoint = endpoint
        self.client = endpoint.client(db=db)
        self.sent = 1  # the PING that proves the connection
        self.clients: dict[int, redis.Redis] = {endpoint.db if db is None else db: self.client}

    def _check(self, args: Sequence[Any]) -> None:
        if _name(args) not in READ_ONLY:
            raise KvmError(f"internal error: {_name(args)} is not a read-only command")

    def _send(self, *args: Any) -> Any:
        self._check(args)
        self.sent += 1
        try:
            return raw_command(self.client, *args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise KvmError(f"lost the connection to {self.endpoint.display()} during "
                           f"{_name(args)}: {exc}", "check the server and run preflight again") \
                from None

    def call(self, *args: Any) -> Any:
        """Send one command the facts cannot do without; a refusal is an error."""
        try:
            return self._send(*args)
        except redis.ResponseError as exc:
            raise KvmError(f"{self.endpoint.display()} refused {_name(args)}: {exc}",
                           "preflight needs a user allowed to run INFO, SCAN, TYPE, "
                           "OBJECT, MEMORY USAGE and PTTL (read-only)") from None

    def try_call(self, *args: Any) -> Any:
        """:meth:`call`, with a server error returned as ``None`` (unsupported or refused)."""
        try:
            return self._send(*args)
        except redis.ResponseError:
            return None

    def on_db(self, db: int) -> redis.Redis:
        if db not in self.clients:
            self.clients[db] = self.endpoint.client(db=db)
            self.sent += 2  # PING and SELECT
        return self.clients[db]

    def batch(self, commands: list[tuple[Any, ...]], *, db: int | None = None) -> list[Any]:
        """Pipeline ``commands`` (no transaction); a failed command's result is ``None``."""
        if not commands:
            return []
        client = self.client if db is None else self.on_db(db)
        pipe = client.pipeline(transaction=False)
        for args in commands:
            self._check(args)
            pipe.execute_command(*args)
        self.sent += len(commands)
        try:
            results = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise KvmError(f"lost the connection to {self.endpoint.display()}: {exc}",
                           "check the server and run preflight again") from None
        return [None if isinstance(r, Exception) else r for r in results]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return "" if value is None else str(value)


def pairs(reply: Any) -> dict[str, Any]:
    """A flat ``[k1, v1, k2, v2, ...]`` reply (or a RESP3 map) as a dict with text keys."""
    if isinstance(reply, dict):
        return {text(k): v for k, v in reply.items()}
    if not isinstance(reply, list):
        return {}
    return {text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
