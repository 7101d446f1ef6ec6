"""A plain RESP2 connection that pipelines commands and returns replies unparsed.

Verification and the scan copier read many small replies; sending a batch of commands in one
write and reading the replies back (hiredis's C parser) keeps a round trip per batch, not per
key. Error replies come back as :class:`hiredis.ReplyError` values in the list, so one bad key
does not stop a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError
from migrate.protocol.connect import READ_TIMEOUT_S, connect
from migrate.protocol.resp import Arg

Reply = Any


class RawConn:
    """A connection from :func:`migrate.protocol.connect.connect` (TLS, AUTH, CLIENT SETNAME,
    deadlines) that remembers its database."""

    def __init__(self, endpoint: Endpoint, *, db: int = 0, timeout: float = READ_TIMEOUT_S):
        self.endpoint = endpoint
        self.db = db
        self._conn = connect(endpoint, db=db, timeout=timeout)

    def select(self, db: int) -> None:
        if db != self.db:
            reply = self.call("SELECT", db)
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectError(f"{self.endpoint.display()} refused SELECT {db}: {reply}")
            self.db = db

    def call(self, *args: Arg) -> Reply:
        return self._conn.call(*args)

    def call_many(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        return self._conn.call_many(commands)

    def send_many(self, commands: Sequence[Sequence[Arg]]) -> None:
        """Send a pipeline without waiting; :meth:`read_replies` takes its replies (so two
        servers can work on their batches at the same time)."""
        self._conn.send_many(commands)

    def send_encoded(self, data: bytes, commands: int) -> None:
        """Send ``commands`` commands already encoded as RESP (``data``) without waiting,
        like :meth:`send_many` (a caller sending the same pipeline to two servers encodes it
        once)."""
        self._conn.sendall(data)

    def read_replies(self, count: int) -> list[Reply]:
        return self._conn.read_replies(count)

    def send(self, *args: Arg) -> None:
        """Send one command without waiting (for a subscribed connection)."""
        self._conn.send(*args)

    def read(self, timeout: float) -> Reply | None:
        """The next pushed reply, or None when nothing came within ``timeout`` seconds."""
        return self._conn.read_reply(timeout)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RawConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_error(reply: Reply) -> bool:
    return isinstance(reply, hiredis.ReplyError)


def pairs(reply: Reply) -> dict[bytes, Reply]:
    """A flat RESP2 ``[k1, v1, k2, v2]`` reply as a dict."""
    if isinstance(reply, dict):
        return reply
    return {reply[i]: reply[i + 1] for i in range(0, len(reply) - 1, 2)}
