"""A plain RESP2 connection that pipelines commands and returns replies unparsed.

Verification and the scan copier read many small replies; sending a batch of commands in one
write and reading the replies back (hiredis's C parser) keeps a round trip per batch, not per
key. Error replies come back as :class:`hiredis.ReplyError` values in the list, so one bad key
does not stop a batch.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import hiredis

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError
from migrate.protocol.resp import Arg, encode_command

Reply = Any


class RawConn:
    def __init__(self, endpoint: Endpoint, *, db: int = 0, timeout: float = 60.0):
        self.endpoint = endpoint
        self.db = 0
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {endpoint.display()}: {exc}",
                               "check the host, the port and that the server is running") \
                from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if endpoint.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=endpoint.host)
        self._sock = sock
        self._reader = hiredis.Reader()
        if endpoint.password is not None:
            auth: list[Arg] = ["AUTH", endpoint.password]
            if endpoint.username:
                auth.insert(1, endpoint.username)
            reply = self.call(*auth)
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectError(f"cannot authenticate to {endpoint.display()}: {reply}",
                                   "check the user and password in the URL")
        self.select(db)

    def select(self, db: int) -> None:
        if db != self.db:
            reply = self.call("SELECT", db)
            if isinstance(reply, hiredis.ReplyError):
                raise ConnectError(f"{self.endpoint.display()} refused SELECT {db}: {reply}")
            self.db = db

    def call(self, *args: Arg) -> Reply:
        return self.call_many([args])[0]

    def call_many(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        if not commands:
            return []
        data = b"".join(encode_command(c) for c in commands)
        try:
            self._sock.sendall(data)
            replies: list[Reply] = []
            while len(replies) < len(commands):
                reply = self._reader.gets()
                if reply is False:
                    chunk = self._sock.recv(1 << 20)
                    if not chunk:
                        raise ConnectionError("server closed the connection")
                    self._reader.feed(chunk)
                    continue
                replies.append(reply)
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: {exc}") \
                from None
        return replies

    def send(self, *args: Arg) -> None:
        """Send one command without waiting (for a subscribed connection)."""
        try:
            self._sock.sendall(encode_command(args))
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: {exc}") \
                from None

    def read(self, timeout: float) -> Reply | None:
        """The next pushed reply, or None when nothing came within ``timeout`` seconds."""
        reply = self._reader.gets()
        if reply is not False:
            return reply
        self._sock.settimeout(timeout)
        try:
            chunk = self._sock.recv(1 << 20)
        except TimeoutError:
            return None
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: {exc}") \
                from None
        if not chunk:
            raise ConnectError(f"{self.endpoint.display()} closed the connection")
        self._reader.feed(chunk)
        reply = self._reader.gets()
        return None if reply is False else reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

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
