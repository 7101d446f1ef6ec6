"""Receiving the RDB a primary sends after SYNC/PSYNC, in either of its two forms:
``$<len>\\r\\n`` and that many bytes (a file saved on disk), or ``$EOF:<40-byte mark>\\r\\n``
and a payload that ends with the mark (diskless). Used by the replication link
(:mod:`migrate.sync.psync`) and the one-off snapshot (:mod:`migrate.apply.snapshot`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from migrate.errors import KvmError
from migrate.protocol.connect import ServerConnection

MARK_LEN = 40

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None for diskless)


def read_header(conn: ServerConnection) -> bytes:
    """The first non-empty line (a primary sends bare newlines while its fork saves)."""
    while True:
        line = conn.line()
        if line:
            return line


def receive_rdb(conn: ServerConnection, header: bytes, out: BinaryIO,
                progress: Progress | None = None) -> tuple[int, bool]:
    """Write the payload announced by ``header`` to ``out``; (bytes written, diskless).
    Bytes after the payload (the command stream) stay in ``conn.buf``."""
    if not header.startswith(b"$"):
        raise KvmError(f"unexpected reply before the RDB: {header[:60]!r}")
    if header.startswith(b"$EOF:"):
        return _until_mark(conn, header[5:], out, progress), True
    try:
        size = int(header[1:])
    except ValueError:
        raise KvmError(f"malformed RDB length in {header[:60]!r}") from None
    return _sized(conn, size, out, progress), False


def _sized(conn: ServerConnection, size: int, out: BinaryIO, progress: Progress | None) -> int:
    done = 0
    while True:
        take = conn.buf[:size - done]
        conn.buf = conn.buf[len(take):]
        if take:
            out.write(take)
            done += len(take)
            if progress:
                progress(done, size)
        if done >= size:
            return done
        conn.fill()


def _until_mark(conn: ServerConnection, mark: bytes, out: BinaryIO,
                progress: Progress | None) -> int:
    if len(mark) != MARK_LEN:
        raise KvmError(f"malformed EOF mark in the RDB header ({len(mark)} bytes)")
    done = 0
    pending, conn.buf = conn.buf, b""
    while True:
        at = pending.find(mark)
        if at >= 0:
            out.write(pending[:at])
            conn.buf = pending[at + MARK_LEN:]
            done += at
            if progress:
                progress(done, None)
            return done
        keep = max(0, len(pending) - (MARK_LEN - 1))  # a mark may straddle two reads
        out.write(pending[:keep])
        done += keep
        if progress and keep:
            progress(done, None)
        pending = pending[keep:] + conn.recv()
