"""kvmigrate's replication link: it connects to the source as a replica would and spools
what the source sends to disk.

Handshake: AUTH, PING, ``REPLCONF listening-port``, ``REPLCONF capa eof capa psync2``,
``PSYNC <replid> <offset>`` (``? -1`` the first time). A full resync's RDB (disk-backed
``$<len>`` or diskless ``$EOF:<40-byte mark>``) goes to ``rdb-<gen>.rdb``, the command
stream after it to ``stream-<gen>.bin``; one thread reads the socket and only writes files,
so a slow target never backs up the source. It sends ``REPLCONF ACK <applied offset>``
every second and right away when the stream holds ``REPLCONF GETACK``. After a dropped link
it reconnects with ``PSYNC <replid> <received+1>``; when the source answers FULLRESYNC
instead, a new generation starts and the run is told so.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError, KvmError
from migrate.protocol.resp import encode_command

MARK_LEN = 40


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
        self.sock: socket.socket | None = None
        self.buf = b""
        self.generation: Generation | None = None
        self.received = 0  # offset of the last stream byte spooled
        self.error: BaseException | None = None
        self.reconnects = 0
        self.partial_resyncs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        spool.mkdir(parents=True, exist_ok=True)

    # --- handshake ----------------------------------------------------------------------------
    def _connect(self) -> None:
        ep = self.endpoint
        try:
            sock = socket.create_connection((ep.host, ep.port), timeout=30)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {ep.display()}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        if ep.password is not None:
            args = ["AUTH", *([ep.username] if ep.username else []), ep.password]
            self._expect_ok(args, "AUTH")
        self._send(["PING"])
        pong = self._line()
        if pong.startswith(b"-"):
            raise ConnectError(f"{ep.display()} refused PING: {pong[1:].decode()}")
        self._expect_ok(["REPLCONF", "listening-port", sock.getsockname()[1]], "REPLCONF")
        self._expect_ok(["REPLCONF", "capa", "eof", "capa", "psync2"], "REPLCONF capa")

    def _expect_ok(self, args: list, what: str) -> None:
        self._send(args)
        reply = self._line()
        if not reply.startswith(b"+"):
            raise KvmError(f"the source refused {what}: {reply.decode(errors='replace')}")

    def _send(self, args: list) -> None:
        assert self.sock is not None
        self.sock.sendall(encode_command(args))

    def _fill(self) -> bool:
        assert self.sock is not None
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError:
            return False
        if not chunk:
            raise ConnectionError("the source closed the replication link")
        self.buf += chunk
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def psync(self, replid: str | None, offset: int) -> tuple[str, str, int]:
        """Connect and ask for the stream; ("continue"|"full", replid, offset)."""
        self._connect()
        self._send(["PSYNC", replid or "?", offset + 1 if replid else -1])
        while True:
            line = self._line().lstrip(b"\n")
            if line:
                break
        text = line.decode(errors="replace")
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
                except (OSError, ConnectionError) as exc:
                    if self._stop.is_set():
                        return
                    self._reconnect(exc)
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc

    def _receive_rdb(self, gen: Generation) -> None:
        assert gen.rdb_path is not None and self.sock is not None
        while True:
            header = self._line()
            if header.strip(b"\n"):
                break
        header = header.lstrip(b"\n")
        if not header.startswith(b"$"):
            raise KvmError(f"unexpected reply before the RDB: {header[:60]!r}")
        with open(gen.rdb_path, "wb") as fh:
            if header.startswith(b"$EOF:"):
                mark = header[5:5 + MARK_LEN]
                pending = self.buf
                self.buf = b""
                while True:
                    at = pending.find(mark)
                    if at >= 0:
                        fh.write(pending[:at])
                        gen.rdb_bytes += at
                        self.buf = pending[at + MARK_LEN:]
                        break
                    keep = max(0, len(pending) - MARK_LEN)
                    fh.write(pending[:keep])
                    gen.rdb_bytes += keep
                    pending = pending[keep:]
                    self._fill()
                    pending += self.buf
                    self.buf = b""
            else:
                total = int(header[1:])
                gen.rdb_total = total
                while gen.rdb_bytes < total:
                    if not self.buf:
                        self._fill()
                    take = self.buf[:total - gen.rdb_bytes]
                    fh.write(take)
                    gen.rdb_bytes += len(take)
                    self.buf = self.buf[len(take):]
            fh.flush()
            os.fsync(fh.fileno())
        gen.rdb_done = True

    def _receive_stream(self) -> None:
        assert self.sock is not None and self.generation is not None
        self.sock.settimeout(0.5)
        last_ack = 0.0
        with open(self.generation.stream_path, "ab") as fh:
            if self.buf:
                self._spool(fh, self.buf)
                self.buf = b""
            while not self._stop.is_set():
                got = self._fill()
                if got:
                    data, self.buf = self.buf, b""
                    self._spool(fh, data)
                    if b"GETACK" in data:
                        last_ack = 0.0
                now = time.monotonic()
                if now - last_ack >= 1.0:
                    self._send(["REPLCONF", "ACK", self.applied()])
                    last_ack = now

    def _spool(self, fh: object, data: bytes) -> None:
        fh.write(data)  # type: ignore[attr-defined]
        fh.flush()  # type: ignore[attr-defined]
        self.received += len(data)

    def _reconnect(self, why: BaseException) -> None:
        self.note(f"replication link dropped ({why}); reconnecting with PSYNC "
                  f"{self.generation.replid if self.generation else '?'} {self.received + 1}")
        with contextlib.suppress(OSError):
            if self.sock is not None:
                self.sock.close()
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
        if self.error is not None:
            raise KvmError(f"the replication link failed: {self.error}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(OSError):
            if self.sock is not None:
                self.sock.close()
