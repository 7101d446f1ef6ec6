"""A fresh snapshot of a live server over the replication protocol, as ``redis-cli --rdb``
does: ``REPLCONF rdb-only 1`` (ignored by servers that lack it), then ``SYNC``; the reply is
``$<len>\\r\\n`` and the payload, or ``$EOF:<40-byte mark>\\r\\n`` and a diskless payload
ending with the mark. The payload is written to a file (validated before any key is copied)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.protocol.connect import READ_TIMEOUT_S, connect
from migrate.protocol.rdbtransfer import read_header, receive_rdb
from migrate.protocol.resp import Arg
from migrate.serverinfo import identify


@dataclass
class Snapshot:
    path: Path
    size: int
    diskless: bool  # the source streamed it ($EOF: form) instead of sending a saved file


def fetch_snapshot(endpoint: Endpoint, dest: Path, *, timeout: float = READ_TIMEOUT_S,
                   progress: Callable[[int, int | None], None] | None = None) -> Snapshot:
    """Write a fresh RDB snapshot of ``endpoint`` to ``dest``; a read that gets nothing for
    ``timeout`` seconds fails (the source sends newlines while its fork saves)."""
    ident = identify(endpoint.client().info("server"))
    version = ident.version_text if ident.flavor == "valkey" else None
    with connect(endpoint, db=0, timeout=timeout) as conn:
        asks: list[list[Arg]] = [
            ["REPLCONF", "rdb-only", "1"],  # an error reply is fine: old servers
            ["REPLCONF", "capa", "eof"],  # a diskless source may stream to us
        ]
        if version:  # Valkey 9 sends its own RDB 80 only to replicas that say they are 9+
            asks.append(["REPLCONF", "version", version])
        conn.call_many(asks)
        conn.send("SYNC")
        header = read_header(conn)
        if header.startswith(b"-"):
            raise KvmError(f"{endpoint.display()} refused SYNC: "
                           f"{header.decode(errors='replace')[:200]}",
                           "the user needs the SYNC/PSYNC permission (ACL +sync +psync)")
        with dest.open("wb") as out:
            size, diskless = receive_rdb(conn, header, out, progress)
        return Snapshot(dest, size, diskless)

