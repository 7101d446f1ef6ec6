"""kvmigrate's replication link: it connects to the source as a replica would and spools
what the source sends to disk.

Handshake: AUTH, PING, ``REPLCONF listening-port``, ``REPLCONF capa eof capa psync2``,
``PSYNC <replid> <offset>`` (``? -1`` the first time). A full resync's RDB (disk-backed
``$<len>`` or diskless ``$EOF:<40-byte mark>``) goes to ``rdb-<gen>.rdb``, the command
stream after it to ``stream-<gen>.bin``; one thread reads the socket and only writes files,
so a slow target never backs up the source. It sends ``REPLCONF ACK <applied offset>``
every second and right away when the stream holds ``REPLCONF GETACK``. After a dropped link
(or one silent for ``SILENT_LINK_S``: a primary pings its replicas every 10 s) it reconnects
with ``PSYNC <replid> <received+1>``; when the source answers FULLRESYNC instead, a new
generation starts and the run is told so. The connection (TLS, AUTH, CLIENT SETNAME,
deadlines) is :func:`migrate.protocol.connect.connect`'s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import hiredis

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError, KvmError
from migrate.protocol.connect import ServerConnection, connect
from migrate.protocol.rdbtransfer import read_header, receive_rdb
from migrate.protocol.resp import Arg
from migrate.state.disk import StateDiskError, disk_errors

HANDSHAKE_TIMEOUT_S = 30.0  # each read of the handshake and of the RDB transfer
SILENT_LINK_S = 60.0  # a stream this long without a byte (not even a PING) is dead


@dataclass
class Generation:
    """One full resync: its RDB file, its stream file and where the stream starts."""

    number: int
    replid: str
    start_offset: int  # replication offset of the stream file's first byte, minus one
    rdb_path: Path | None  # None when the stream continues a resumed run
    stream_path: Path
    rdb_bytes: int = 0
    rdb_total: int | None = None  # None for diskless (EOF-marked) transfers
    rdb_done: bool = False


class ReplicationLink:
    def __init__(self, endpoint: Endpoint, spool: Path, applied: Callable[[], int],
                 note: Callable[[str], None]):
        self.endpoint = endpoint
        self.spool = spool
        self.applied = applied
        self.note = note
        self.conn: ServerConnection | None = None
        self.generation: Generation | None = None
        self.received = 0  # offset of the last stream byte spooled
        self.error: BaseException | None = None
        self.reconnects = 0
        self.partial_resyncs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        spool.mkdir(parents=True, exist_ok=True)

    # --- handshake ----------------------------------------------------------------------------
    def _connect(self) -> ServerConnection:
        self.conn = conn = connect(self.endpoint, db=0, timeout=HANDSHAKE_TIMEOUT_S)
        port = conn.sock.getsockname()[1]
        for args, what in ((["PING"], "PING"),
                           (["REPLCONF", "listening-port", port], "REPLCONF"),
                           (["REPLCONF", "capa", "eof", "capa", "psync2"], "REPLCONF capa")):
            self._expect_ok(conn, args, what)
        version = _valkey_version(conn.call("INFO", "server"))
        if version:  # Valkey 9 sends its own RDB 80 (field TTLs) only to replicas of 9+
            conn.call("REPLCONF", "version", version)  # an error reply is fine: older ones
        return conn

    def _expect_ok(self, conn: ServerConnection, args: Sequence[Arg], what: str) -> None:
        reply = conn.call(*args)
        if isinstance(reply, hiredis.ReplyError):
            raise KvmError(f"{self.endpoint.display()} refused {what}: {reply}")

    def psync(self, replid: str | None, offset: int) -> tuple[str, str, int]:
        """Connect and ask for the stream; ("continue"|"full", replid, offset)."""
        conn = self._connect()
        conn.send("PSYNC", replid or "?", offset + 1 if replid else -1)
        text = read_header(conn).decode(errors="replace")
        if text.startswith("+FULLRESYNC"):
            _, new_id, new_offset = text.split()
            return "full", new_id, int(new_offset)
        if text.startswith("+CONTINUE"):
            parts = text.split()
            return "continue", parts[1] if len(parts) > 1 else (replid or ""), offset
        if "unknown command" in text.lower():
            raise KvmError(f"the source does not offer PSYNC: {text[1:]}",
                           "use --mode scan for sources that refuse replication")
        raise KvmError(f"the source refused PSYNC: {text}")

    # --- spooling -----------------------------------------------------------------------------
    def start_full(self, number: int, replid: str, offset: int) -> Generation:
        gen = Generation(number, replid, offset, self.spool / f"rdb-{number}.rdb",
                         self.spool / f"stream-{number}.bin")
        # a killed run may have left this generation's files: the loader must never read
        # them as the new transfer (seen: "invalid RDB at byte 262132" after --resume)
        assert gen.rdb_path is not None
        gen.rdb_path.unlink(missing_ok=True)
        gen.stream_path.unlink(missing_ok=True)
        self.generation, self.received = gen, offset
        return gen

    def start_continue(self, number: int, replid: str, offset: int) -> Generation:
        gen = Generation(number, replid, offset, None, self.spool / f"stream-{number}.bin",
                         rdb_done=True)
        self.generation, self.received = gen, offset
        return gen

    def run_in_background(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            gen = self.generation
            assert gen is not None
            if not gen.rdb_done:
                self._receive_rdb(gen)
            while not self._stop.is_set():
                try:
                    self._receive_stream()
                except (OSError, ConnectionError, ConnectError) as exc:
                    if self._stop.is_set():
                        return
                    self._reconnect(exc)
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc

    def _receive_rdb(self, gen: Generation) -> None:
        assert gen.rdb_path is not None and self.conn is not None
        conn = self.conn
        header = read_header(conn)

        def progress(done: int, total: int | None) -> None:
            gen.rdb_bytes, gen.rdb_total = done, total

        with disk_errors(gen.rdb_path.parent), open(gen.rdb_path, "wb") as fh:
            receive_rdb(conn, header, fh, progress)
            fh.flush()
            os.fsync(fh.fileno())
        gen.rdb_done = True

    def _receive_stream(self) -> None:
        assert self.conn is not None and self.generation is not None
        conn = self.conn
        last_ack = 0.0
        last_byte = time.monotonic()
        with open(self.generation.stream_path, "ab") as fh:
            if conn.buf:
                self._spool(fh, conn.buf)
                conn.buf = b""
            while not self._stop.is_set():
                data = conn.poll(0.5)
                now = time.monotonic()
                if data:
                    last_byte = now
                    self._spool(fh, data)
                    if b"GETACK" in data:
                        last_ack = 0.0
                elif now - last_byte > SILENT_LINK_S:
                    raise ConnectError(f"{self.endpoint.display()} sent nothing for "
                                       f"{SILENT_LINK_S:g} s (not even a PING)")
                if now - last_ack >= 1.0:
                    conn.send("REPLCONF", "ACK", self.applied())
                    last_ack = now

    def _spool(self, fh: BinaryIO, data: bytes) -> None:
        with disk_errors(Path(fh.name).parent):  # a full disk is no link to reconnect
            fh.write(data)
            fh.flush()
        self.received += len(data)

    def _reconnect(self, why: BaseException) -> None:
        self.note(f"replication link dropped ({why}); reconnecting with PSYNC "
                  f"{self.generation.replid if self.generation else '?'} {self.received + 1}")
        if self.conn is not None:
            self.conn.close()
        delay = 0.2
        while not self._stop.is_set():
            try:
                gen = self.generation
                assert gen is not None
                how, replid, offset = self.psync(gen.replid, self.received)
                self.reconnects += 1
                if how == "continue":
                    self.partial_resyncs += 1
                    if replid != gen.replid:  # psync2: the source changed its id
                        gen.replid = replid
                    self.note(f"partial resync accepted: continuing at offset "
                              f"{self.received + 1}")
                    return
                self.note("the source refused a partial resync (FULLRESYNC): starting a full "
                          "resync; the target will be flushed and loaded again")
                new = self.start_full(gen.number + 1, replid, offset)
                self._receive_rdb(new)
                return
            except (OSError, ConnectionError, ConnectError):
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def check(self) -> None:
        if isinstance(self.error, StateDiskError):
            raise self.error
        if self.error is not None:
            raise KvmError(f"the replication link failed: {self.error}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.conn is not None:
            self.conn.close()


def _valkey_version(info: object) -> str | None:
    """``valkey_version`` of an ``INFO server`` reply (None for other servers)."""
    if not isinstance(info, bytes):
        return None
    for line in info.splitlines():
        if line.startswith(b"valkey_version:"):
            return line.split(b":", 1)[1].strip().decode()
    return None
