"""A fresh snapshot of a live server over the replication protocol, as ``redis-cli --rdb``
does: ``REPLCONF rdb-only 1`` (ignored by servers that lack it), then ``SYNC``; the reply is
``$<len>\\r\\n`` and the payload, or ``$EOF:<40-byte mark>\\r\\n`` and a diskless payload
ending with the mark. The payload is written to a file (validated before any key is copied)."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError, KvmError
from migrate.protocol.resp import encode_command
from migrate.serverinfo import identify

CHUNK = 1 << 20
MARK_LEN = 40


class _Conn:
    def __init__(self, endpoint: Endpoint, timeout: float):
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {endpoint.display()}: {exc}") from None
        if endpoint.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=endpoint.host)
        self.sock = sock
        self.buf = b""
        self.endpoint = endpoint

    def recv(self) -> bytes:
        try:
            data = self.sock.recv(CHUNK)
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: {exc}") \
                from None
        if not data:
            raise ConnectError(f"{self.endpoint.display()} closed the connection during the "
                               "snapshot")
        return data

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            self.buf += self.recv()
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def command(self, *args: object) -> bytes:
        self.sock.sendall(encode_command(args))  # type: ignore[arg-type]
        return self.line()


@dataclass
class Snapshot:
    path: Path
    size: int
    diskless: bool  # the source streamed it ($EOF: form) instead of sending a saved file


def fetch_snapshot(endpoint: Endpoint, dest: Path, *, timeout: float = 3600.0,
                   progress: Callable[[int, int | None], None] | None = None) -> Snapshot:
    """Write a fresh RDB snapshot of ``endpoint`` to ``dest``."""
    ident = identify(endpoint.client().info("server"))
    version = ident.version_text if ident.flavor == "valkey" else None
    conn = _Conn(endpoint, timeout)
    try:
        if endpoint.password is not None:
            args = ["AUTH", endpoint.username, endpoint.password] if endpoint.username \
                else ["AUTH", endpoint.password]
            reply = conn.command(*args)
            if not reply.startswith(b"+"):
                raise ConnectError(f"cannot authenticate to {endpoint.display()}: "
                                   f"{reply.decode(errors='replace')[:100]}")
        conn.command("REPLCONF", "rdb-only", "1")  # an error reply is fine: old servers
        conn.command("REPLCONF", "capa", "eof")  # a diskless source may stream to us
        if version:  # Valkey 9 sends its own RDB 80 only to replicas that say they are 9+
            conn.command("REPLCONF", "version", version)
        conn.sock.sendall(encode_command(["SYNC"]))
        while True:  # the server sends bare newlines while its fork saves
            header = conn.line()
            if header:
                break
        if header.startswith(b"-"):
            raise KvmError(f"{endpoint.display()} refused SYNC: "
                           f"{header.decode(errors='replace')[:200]}",
                           "the user needs the SYNC/PSYNC permission (ACL +sync +psync)")
        if not header.startswith(b"$"):
            raise KvmError(f"unexpected reply to SYNC: {header[:60]!r}")
        with dest.open("wb") as out:
            if header.startswith(b"$EOF:"):
                return Snapshot(dest, _eof_payload(conn, out, header[5:], progress), True)
            return Snapshot(dest, _sized_payload(conn, out, int(header[1:]), progress), False)
    finally:
        with contextlib.suppress(OSError):
            conn.sock.close()


def _sized_payload(conn: _Conn, out: object, size: int,
                   progress: Callable[[int, int | None], None] | None) -> int:
    done = 0
    data, conn.buf = conn.buf[:size], conn.buf[size:]
    while True:
        if data:
            out.write(data)  # type: ignore[attr-defined]
            done += len(data)
            if progress:
                progress(done, size)
        if done >= size:
            return done
        data = conn.recv()[:size - done]


def _eof_payload(conn: _Conn, out: object, mark: bytes,
                 progress: Callable[[int, int | None], None] | None) -> int:
    if len(mark) != MARK_LEN:
        raise KvmError(f"malformed EOF mark in the SYNC reply ({len(mark)} bytes)")
    done = 0
    pending = conn.buf
    conn.buf = b""
    while True:
        at = pending.find(mark)
        if at >= 0:
            out.write(pending[:at])  # type: ignore[attr-defined]
            return done + at
        keep = max(0, len(pending) - (MARK_LEN - 1))
        out.write(pending[:keep])  # type: ignore[attr-defined]
        done += keep
        pending = pending[keep:] + conn.recv()
        if progress:
            progress(done, None)
