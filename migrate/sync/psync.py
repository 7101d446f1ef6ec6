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
generation starts and the run is told so. A link cut during the RDB transfer cannot continue
a half-received RDB: the generation is abandoned (its spool files removed, the loader told
with :class:`TransferRestarted`) and a new full sync starts. Every reconnect follows
:mod:`migrate.sync.retry` (backoff, a deadline, each attempt noted and counted); a link that
brings no byte for ``STALL_NOTE_S`` (with the heartbeat) is reported as stalled. The
connection (TLS, AUTH, CLIENT SETNAME, deadlines) is :func:`migrate.protocol.connect.connect`'s.
"""

from __future__ import annotations

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
from migrate.sync.options import SyncOptions
from migrate.sync.retry import RetryPolicy, RetryStopped, fault_class, retry

HANDSHAKE_TIMEOUT_S = 30.0  # each read of the handshake and of the RDB transfer
SILENT_LINK_S = 60.0  # a stream this long without a byte (not even a PING) is dead
# a link this long without a byte is reported as stalled: the heartbeat kvmigrate writes
# on the source every second comes down the stream; without it, a primary pings its
# replicas every 10 s (repl-ping-replica-period), so a quiet source is not a stall
STALL_NOTE_S = 5.0
STALL_NOTE_QUIET_S = 15.0
# how long the stream's reader waits for bytes before it looks at the rest (the stop flag,
# the ACK due): closing the link waits for it
IDLE_POLL_S = 0.05


# what the socket raised (protocol.connect words most as ConnectError); an OSError of its
# own (ENOSPC writing the spool) is the disk's, and stops the run
SOCKET_ERRORS = (ConnectError, ConnectionError, TimeoutError)


class TransferRestarted(KvmError):
    """The RDB being loaded was abandoned (the link was cut during its transfer); a new full
    sync follows as the link's next generation."""


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
    abandoned: bool = False  # cut during the RDB transfer: a new generation replaces it


class ReplicationLink:
    def __init__(self, endpoint: Endpoint, spool: Path, applied: Callable[[], int],
                 note: Callable[[str], None], policy: RetryPolicy | None = None,
                 status: Callable[..., None] | None = None, stall_note_s: float = STALL_NOTE_S):
        self.endpoint = endpoint
        self.spool = spool
        self.applied = applied
        self.note = note
        self.policy = policy or RetryPolicy()
        self.status = status  # told the link's figures when they change
        self.stall_note_s = stall_note_s
        self.conn: ServerConnection | None = None
        self.generation: Generation | None = None
        self.received = 0  # offset of the last stream byte spooled
        self.error: BaseException | None = None
        self.reconnects = 0  # links made again (each one a partial or a full resync)
        self.partial_resyncs = 0
        self.transfers_restarted = 0  # RDB transfers cut and started again
        self.attempts_failed = 0  # reconnect attempts that failed
        self.last_fault: str | None = None
        self.last_byte = time.monotonic()
        self._down = False  # reconnecting (reported as such, not as a stall)
        self._next_stall_note = stall_note_s
        self._lock = threading.Lock()
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
            while not self._stop.is_set():
                gen = self.generation
                assert gen is not None
                try:
                    if not gen.rdb_done:
                        self._receive_rdb(gen)
                    self._receive_stream()
                except SOCKET_ERRORS as exc:  # a full spool disk is no reason to reconnect
                    if self._stop.is_set():
                        return
                    self._reconnect(exc)
        except RetryStopped:
            return
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc

    def _receive_rdb(self, gen: Generation) -> None:
        assert gen.rdb_path is not None and self.conn is not None
        conn = self.conn
        header = self._read_header(conn)

        def progress(done: int, total: int | None) -> None:
            gen.rdb_bytes, gen.rdb_total = done, total
            self.last_byte = time.monotonic()

        # not fsynced: only this process reads the spool, and a run that ends never reads
        # it again (a resumed run asks the source anew); an fsync delayed the end of the
        # RDB by 70 ms per 90 MB for readers that follow it as it grows (proxy mode)
        with disk_errors(gen.rdb_path.parent), open(gen.rdb_path, "wb") as fh:
            receive_rdb(conn, header, fh, progress)
        gen.rdb_done = True

    def _read_header(self, conn: ServerConnection) -> bytes:
        """The RDB's first line; the bare newlines a primary sends while its fork saves
        (or waits, repl-diskless-sync-delay) are signs of life, not a stall."""
        while True:
            line = conn.line()
            self.last_byte = time.monotonic()
            if line:
                return line

    def _receive_stream(self) -> None:
        assert self.conn is not None and self.generation is not None
        conn = self.conn
        last_ack = 0.0
        last_byte = time.monotonic()
        path = self.generation.stream_path
        with disk_errors(path.parent):  # a spool folder removed under the run: said so
            fh = open(path, "ab")  # noqa: SIM115 - the with below closes it
        with fh:
            if conn.buf:
                self._spool(fh, conn.buf)
                conn.buf = b""
            while not self._stop.is_set():
                data = conn.poll(IDLE_POLL_S)
                now = time.monotonic()
                if data:
                    last_byte = self.last_byte = now
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
        gen = self.generation
        assert gen is not None
        if self.conn is not None:
            self.conn.close()
        self._down = True
        try:
            self._reconnect_now(gen, why)
        finally:
            self.last_byte = time.monotonic()
            self._down = False

    def _reconnect_now(self, gen: Generation, why: BaseException) -> None:
        self._fault(why)
        mid_rdb = not gen.rdb_done
        if mid_rdb:
            # half an RDB cannot be continued: the loader drops what it loaded and the new
            # full sync's RDB replaces it; this one's spool files go now
            gen.abandoned = True
            assert gen.rdb_path is not None
            gen.rdb_path.unlink(missing_ok=True)
            gen.stream_path.unlink(missing_ok=True)
            self.note(f"replication link dropped during the RDB transfer ({why}) after "
                      f"{gen.rdb_bytes} byte(s); starting the transfer again (a new full sync)")
        else:
            self.note(f"replication link dropped ({why}); reconnecting with PSYNC "
                      f"{gen.replid} {self.received + 1}")

        def attempt() -> tuple[str, str, int]:
            if self.conn is not None:
                self.conn.close()
            if mid_rdb:
                return self.psync(None, -1)
            return self.psync(gen.replid, self.received)

        how, replid, offset = retry(attempt, policy=self.policy, what="reconnecting to the "
                                    f"source {self.endpoint.display()}", stop=self._stop,
                                    note=self.note, counted=self._failed_attempt)
        self.reconnects += 1
        if how == "continue" and not mid_rdb:
            self.partial_resyncs += 1
            if replid != gen.replid:  # psync2: the source changed its id
                gen.replid = replid
            self.note(f"partial resync accepted: continuing at offset {self.received + 1}")
            self._publish()
            return
        if mid_rdb:
            self.transfers_restarted += 1
            self.note("the source started a new full sync: loading the target from the start")
        else:
            self.note("the source refused a partial resync (FULLRESYNC): starting a full "
                      "resync; the target will be flushed and loaded again")
        self.start_full(gen.number + 1, replid, offset)
        self._publish()

    def _fault(self, why: BaseException) -> None:
        with self._lock:
            self.last_fault = f"{fault_class(why)}: {why}"
        self._publish()

    def _failed_attempt(self, number: int, why: BaseException) -> None:
        with self._lock:
            self.attempts_failed += 1
            self.last_fault = f"{fault_class(why)}: {why}"
        self._publish()

    # --- health -------------------------------------------------------------------------------
    def stalled_s(self) -> float:
        """Seconds since the source link last brought a byte (0 while the link is down:
        reconnecting is reported as such)."""
        return 0.0 if self._down else time.monotonic() - self.last_byte

    def figures(self) -> dict[str, object]:
        stalled = self.stalled_s()
        return {"reconnects": self.reconnects, "partial_resyncs": self.partial_resyncs,
                "transfers_restarted": self.transfers_restarted,
                "reconnect_attempts_failed": self.attempts_failed,
                "last_reconnect_reason": self.last_fault,
                "source_link_stalled_s": round(stalled, 1) if stalled >= self.stall_note_s
                else None}

    def _publish(self) -> None:
        if self.status is not None:
            self.status(**self.figures())

    def _watch_stall(self) -> None:
        """Note a stall once it lasts ``stall_note_s``, again each time it doubles, and
        when bytes come again."""
        stalled, first = self.stalled_s(), self.stall_note_s
        if stalled >= self._next_stall_note:
            self._next_stall_note = 2 * max(self._next_stall_note, first)
            self.note(f"source link stalled for {stalled:.0f} s (no byte from "
                      f"{self.endpoint.display()})")
            self._publish()
        elif stalled < first and self._next_stall_note > first:
            self._next_stall_note = first
            self.note("source link moving again")
            self._publish()

    def check(self) -> None:
        """Raise what stopped the link; note a stall (called often, by the run's threads)."""
        if isinstance(self.error, StateDiskError):
            raise self.error
        if self.error is not None:
            if isinstance(self.error, KvmError) and not isinstance(self.error, ConnectError):
                raise self.error
            raise KvmError(f"the replication link failed: {self.error}")
        self._watch_stall()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.conn is not None:
            self.conn.close()


def stall_note_s(opts: SyncOptions) -> float:
    """How long the source link may bring nothing before it is reported as stalled."""
    return STALL_NOTE_S if opts.heartbeat else STALL_NOTE_QUIET_S


def _valkey_version(info: object) -> str | None:
    """``valkey_version`` of an ``INFO server`` reply (None for other servers)."""
    if not isinstance(info, bytes):
        return None
    for line in info.splitlines():
        if line.startswith(b"valkey_version:"):
            return line.split(b":", 1)[1].strip().decode()
    return None
