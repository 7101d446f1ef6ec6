"""The primary side of the proxy: it listens, and serves the target's replication handshake.

The target (sent ``REPLICAOF <listen host> <port>``) connects and says PING, REPLCONF ...,
PSYNC. The proxy answers ``+FULLRESYNC <its own replid> 0``, sends the rewritten RDB
length-prefixed (``$<len>``, from the spool file, with sendfile) or, while that file is still
being written (pass-through), EOF-marked (``$EOF:<40-byte mark>``), then the bytes of
``out_path``: the out-of-band commands, then the source's command stream as translated by
:class:`migrate.proxy.forward.Forwarder`, which appends to that file as the source's stream
arrives. The target's ``REPLCONF ACK <offset>`` counts bytes of ``out_path``.

A target that reconnects with ``PSYNC <the proxy's replid> <n>`` gets ``+CONTINUE`` and the
bytes of ``out_path`` from ``n`` on (the file is the proxy's backlog); any other PSYNC gets
the full resync again.

No authentication: the listener is meant for loopback or a private network (the target is
given no masterauth); REPLCONF, AUTH and PING are all answered with success.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import hiredis

from migrate.errors import UsageError
from migrate.protocol.resp import encode_command

SEND_CHUNK = 1 << 20
ACK = re.compile(rb"(?i)REPLCONF\r\n\$3\r\nACK\r\n\$\d+\r\n(\d+)\r\n")


def parse_listen(text: str | None) -> tuple[str, int]:
    """``HOST:PORT`` (PORT 0 or left out: a free port) -> (host, port)."""
    if not text:
        return "127.0.0.1", 0
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "0"
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise UsageError(f"invalid --listen {text!r}", "expected HOST:PORT, e.g. 127.0.0.1:7390")
    return host, int(port)


def check_listen(text: str | None) -> None:
    """Refuse a --listen address that cannot be bound, before anything is changed anywhere."""
    host, port = parse_listen(text)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise UsageError(f"cannot listen on {text!r}: {exc.strerror or exc}",
                         "give --listen HOST:PORT of this machine, e.g. 127.0.0.1:7390") \
            from None


class ReplicaServer:
    """Serves one target at a time (a reconnecting target replaces the previous link)."""

    def __init__(self, listen: tuple[str, int], rdb_path: Path, out_path: Path,
                 out_size: Callable[[], int], note: Callable[[str], None],
                 rdb_complete: threading.Event | None = None,
                 released: threading.Event | None = None,
                 rdb_limit: Callable[[], int] | None = None):
        """``released``: set when the target is about to leave on purpose (promoted by a
        cut-over or a rollback): its link dropping then is expected, not reported.
        ``rdb_limit``: how many bytes of a complete ``rdb_path`` may be sent so far (a
        validator reading ahead of the transfer; with ``rdb_complete``, set when all may)."""
        self.rdb_limit = rdb_limit
        self.rdb_path, self.out_path = rdb_path, out_path
        self.released = released if released is not None else threading.Event()
        self.out_size = out_size
        self.note = note
        self.replid = secrets.token_hex(20)
        self.acked = 0  # the target's last REPLCONF ACK (bytes of out_path applied)
        self.sent = 0  # bytes of out_path sent on the current link
        self.connections = 0
        self._ackbuf = b""
        self.continued = 0
        self.rdb_complete = rdb_complete  # None: rdb_path is complete before serving
        self.rdb_failed = threading.Event()
        self.linked = threading.Event()  # the target has the RDB and is streaming
        self.syncing = threading.Event()  # a full resync has begun (the RDB's header is sent)
        # the target has acknowledged since its last full resync: it finished loading the
        # RDB (while loading it sends bare newlines, no ACK)
        self.loaded = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        try:
            self.sock = socket.create_server(listen, reuse_port=False)
        except OSError as exc:
            raise UsageError(f"cannot listen on {listen[0]}:{listen[1]}: {exc}",
                             "pick another --listen HOST:PORT") from None
        self.sock.settimeout(0.05)  # how soon close() is noticed
        self.host, self.port = self.sock.getsockname()[:2]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="proxy-primary")
        self._thread.start()

    # --- accept and serve ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                try:
                    self._serve(conn)
                except (OSError, ConnectionError) as exc:
                    if not self._stop.is_set() and not self.released.is_set():
                        self.note(f"the target's link to the proxy dropped ({exc}): waiting "
                                  "for it to reconnect (unless it was promoted by a cut-over)")
                finally:
                    self.linked.clear()
                    with contextlib.suppress(OSError):
                        conn.close()
        except BaseException as exc:
            self.error = exc

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(30)
        reader = hiredis.Reader()
        while True:
            cmd = self._next_command(conn, reader)
            name = cmd[0].upper()
            if name == b"PING":
                conn.sendall(b"+PONG\r\n")
            elif name in (b"REPLCONF", b"AUTH"):
                conn.sendall(b"+OK\r\n")
            elif name in (b"PSYNC", b"SYNC"):
                break
            else:
                conn.sendall(b"-ERR the kvmigrate proxy serves replication only\r\n")
        start = self._psync_start(cmd)
        held = False
        if start is None:
            self.loaded.clear()
            held = self._full_resync(conn)
            start = 0
        else:
            self.continued += 1
            conn.sendall(b"+CONTINUE %s\r\n" % self.replid.encode())
            self.note(f"the target resumed from the proxy at offset {start + 1} (partial resync)")
        self.sent = start
        self._ackbuf = b""
        self.linked.set()
        self._stream(conn, held)

    def _next_command(self, conn: socket.socket, reader: hiredis.Reader) -> list[bytes]:
        while True:
            got = reader.gets()
            if got is not False:
                if isinstance(got, list) and got:
                    return got
                continue
            data = conn.recv(65536)
            if not data:
                raise ConnectionError("the target closed the connection")
            if not data.startswith(b"*") and b"\r\n" in data:  # inline command (SYNC, PING)
                for line in data.split(b"\r\n"):
                    if line.strip():
                        reader.feed(encode_command(line.split()))
                continue
            reader.feed(data)

    def _psync_start(self, cmd: list[bytes]) -> int | None:
        """Where in out_path a PSYNC can continue, or None for a full resync."""
        if cmd[0].upper() != b"PSYNC" or len(cmd) < 3 or cmd[1].decode() != self.replid:
            return None
        try:
            wanted = int(cmd[2]) - 1
        except ValueError:
            return None
        if 0 <= wanted <= self.out_size():
            return wanted
        return None

    def _full_resync(self, conn: socket.socket) -> bool:
        """Whether the stream must wait for the target's first ACK (an EOF-marked RDB: a
        target loading it from the socket reads past the mark and drops what it read, so a
        primary sends nothing more until the target acknowledged, as Redis's own do)."""
        if self.rdb_complete is not None and not self.rdb_complete.is_set():
            self._full_resync_growing(conn)
            return True
        size = self.rdb_path.stat().st_size
        conn.sendall(b"+FULLRESYNC %s 0\r\n$%d\r\n" % (self.replid.encode(), size))
        self.syncing.set()
        with open(self.rdb_path, "rb") as fh:
            conn.settimeout(None)
            offset = 0
            while offset < size:
                offset += os.sendfile(conn.fileno(), fh.fileno(), offset, size - offset)
        self.note(f"the target has the rewritten RDB ({size:,} bytes)")
        return False

    def _full_resync_growing(self, conn: socket.socket) -> None:
        """Send the RDB while it is being written: ``$EOF:<40-byte mark>``, the bytes as they
        come, then the mark (the target announced ``capa eof``)."""
        assert self.rdb_complete is not None
        mark = secrets.token_hex(20).encode()
        conn.sendall(b"+FULLRESYNC %s 0\r\n$EOF:%s\r\n" % (self.replid.encode(), mark))
        self.syncing.set()
        conn.settimeout(None)
        sent = 0
        with open(self.rdb_path, "rb") as fh:
            while True:
                done = self.rdb_complete.is_set()
                limit = self.rdb_limit
                data = fh.read(SEND_CHUNK if limit is None or done else
                               min(SEND_CHUNK, limit() - sent))
                if data:
                    conn.sendall(data)
                    sent += len(data)
                    continue
                if done:
                    break
                if self.rdb_failed.is_set() or self._stop.wait(0.005):
                    raise ConnectionError("the RDB could not be completed; transfer abandoned")
        conn.sendall(mark)
        self.note(f"the target has the rewritten RDB ({sent:,} bytes, streamed as it arrived)")

    def _stream(self, conn: socket.socket, held: bool) -> None:
        conn.settimeout(30)
        with open(self.out_path, "rb") as fh:
            fh.seek(self.sent)
            while not self._stop.is_set():
                held = held and not self.loaded.is_set()
                available = 0 if held else self.out_size() - self.sent
                if available > 0:
                    data = fh.read(min(available, SEND_CHUNK))
                    conn.sendall(data)
                    self.sent += len(data)
                wait = 0.0 if not held and self.out_size() > self.sent else 0.01
                ready, _, _ = select.select([conn], [], [], wait)
                if ready:
                    self._acks(conn)

    def _acks(self, conn: socket.socket) -> None:
        """Read the target's REPLCONF ACKs (it also sends bare newlines while loading, as
        keep-alives, so the bytes are searched rather than parsed as RESP)."""
        data = conn.recv(65536)
        if not data:
            raise ConnectionError("the target closed the replication link")
        buf = self._ackbuf + data
        last = 0
        for match in ACK.finditer(buf):
            self.acked = max(self.acked, int(match.group(1)))
            self.loaded.set()
            last = match.end()
        buf = buf[last:]
        self._ackbuf = buf[-256:]

    def release(self) -> None:
        """The target is about to be promoted: its link will drop, as it should."""
        self.released.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(OSError):
            self.sock.close()
