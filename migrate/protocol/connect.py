"""The one place kvmigrate opens a socket to a server.

:func:`connect` opens a TCP connection within ``connect_timeout``, wraps it in TLS for a
``rediss://`` endpoint (its :class:`~migrate.endpoint.TlsSettings`: CA file, client certificate
and key, or no verification), then sends AUTH (password, or ACL user and password),
``CLIENT SETNAME kvmigrate`` and SELECT in one round trip, all within the same deadline. The
:class:`ServerConnection` it returns reads with a deadline too: every read that gets nothing
within ``timeout`` raises :class:`~migrate.errors.ConnectError` (exit 3), so a server that
accepts a connection and never answers cannot hang a command.

A connection is used in one of two ways: request/response (:meth:`ServerConnection.call`,
replies parsed by hiredis), or as a byte stream (:meth:`~ServerConnection.line`,
:meth:`~ServerConnection.fill`, :attr:`~ServerConnection.buf`) for the replication protocol.
The pipelined writers, which read replies in one thread while another thread writes, take
:meth:`ServerConnection.duplex` once it is open: an OpenSSL connection must not be used by two
threads at once, so over TLS that serialises the (non-blocking) reads and writes.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hiredis

from migrate.endpoint import CLIENT_NAME, Endpoint, TlsSettings, tls_hint
from migrate.errors import ConnectError, UsageError
from migrate.protocol.resp import Arg, encode_command

CONNECT_TIMEOUT_S = 10.0  # TCP connect, TLS handshake, AUTH/SETNAME/SELECT
READ_TIMEOUT_S = 60.0  # any later read that gets nothing
READER_EXIT_S = 10.0  # longest a close waits for the reading thread to end (it ends at once)
CHUNK = 1 << 20
NOT_ANSWERING = "the server accepts connections but does not answer: check that it is a " \
                "Redis/Valkey server and not overloaded"

Reply = Any
T = TypeVar("T")
# what the reader's gets() returns while no whole reply is buffered: an object no reply
# equals, so ``iter(gets, INCOMPLETE)`` takes every buffered reply in C
INCOMPLETE = object()


@functools.lru_cache(maxsize=32)
def tls_context(settings: TlsSettings) -> ssl.SSLContext:
    """The client TLS context for ``settings`` (one per distinct settings, reused)."""
    try:
        context = ssl.create_default_context(cafile=settings.ca)
        if settings.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if settings.cert:
            context.load_cert_chain(settings.cert, settings.key)
    except (ssl.SSLError, OSError) as exc:
        files = ", ".join(f for f in (settings.ca, settings.cert, settings.key) if f)
        raise UsageError(f"cannot use the TLS files {files}: {_reason(exc)}",
                         "give PEM files: the CA certificate, the client certificate and "
                         "its unencrypted key") from None
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"TLS certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"TLS: {exc.reason.lower().replace('_', ' ')}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def open_socket(endpoint: Endpoint, *, connect_timeout: float = CONNECT_TIMEOUT_S
                ) -> socket.socket:
    """A TCP (and for ``rediss://`` a TLS) socket to ``endpoint``, handshake done."""
    where = endpoint.display()
    context = tls_context(endpoint.tls_settings) if endpoint.tls else None  # files first
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=connect_timeout)
    except TimeoutError:
        raise ConnectError(f"cannot connect to {where}: no answer within "
                           f"{connect_timeout:g} s",
                           "check the host, the port and the firewall") from None
    except OSError as exc:
        raise ConnectError(f"cannot connect to {where}: {_reason(exc)}",
                           "check the host, the port and that the server is running") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is None:
        return sock
    try:
        return context.wrap_socket(sock, server_hostname=endpoint.host)
    except TimeoutError:
        sock.close()
        raise ConnectError(f"cannot connect to {where}: the TLS handshake got no answer within "
                           f"{connect_timeout:g} s", NOT_ANSWERING) from None
    except OSError as exc:  # ssl.SSLError is an OSError
        sock.close()
        reason = _reason(exc)
        raise ConnectError(f"cannot connect to {where}: {reason}",
                           tls_hint(reason) or "check that the port is the server's TLS port") \
            from None


class ServerConnection:
    """One open, authenticated connection (see the module's description)."""

    def __init__(self, endpoint: Endpoint, sock: socket.socket, timeout: float):
        self.endpoint = endpoint
        self.sock = sock
        self.timeout = timeout
        self.buf = b""  # bytes received and not yet taken (byte-stream use)
        try:
            self._reader = hiredis.Reader(notEnoughData=INCOMPLETE)
            self._incomplete: object = INCOMPLETE
        except TypeError:  # an older hiredis: gets() says False (the reply 0 equals it)
            self._reader, self._incomplete = hiredis.Reader(), False
        sock.settimeout(timeout)

    # --- sending --------------------------------------------------------------------------
    def send(self, *args: Arg) -> None:
        self.sendall(encode_command(args))

    def sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise self._silent() from None
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: "
                               f"{_reason(exc)}") from None

    # --- receiving ------------------------------------------------------------------------
    def _silent(self) -> ConnectError:
        return ConnectError(f"{self.endpoint.display()} did not answer within "
                            f"{self.sock.gettimeout() or self.timeout:g} s", NOT_ANSWERING)

    def recv(self) -> bytes:
        """The next bytes; :class:`ConnectError` when none come within the deadline or the
        server closes the connection."""
        try:
            data = self.sock.recv(CHUNK)
        except TimeoutError:
            raise self._silent() from None
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: "
                               f"{_reason(exc)}") from None
        if not data:
            raise ConnectError(f"{self.endpoint.display()} closed the connection")
        return data

    def poll(self, timeout: float) -> bytes | None:
        """The next bytes, or None when none come within ``timeout`` (an idle wait)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(CHUNK)
        except TimeoutError:
            return None
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: "
                               f"{_reason(exc)}") from None
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            raise ConnectError(f"{self.endpoint.display()} closed the connection")
        return data

    def fill(self) -> None:
        """Append the next bytes to :attr:`buf`."""
        self.buf += self.recv()

    def line(self) -> bytes:
        """The next line of :attr:`buf` (``\\n``-terminated; a ``\\r`` before it dropped)."""
        while b"\n" not in self.buf:
            self.fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    # --- request/response -----------------------------------------------------------------
    def call(self, *args: Arg) -> Reply:
        return self.call_many([args])[0]

    def call_many(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        """Send the commands in one write and return their replies (error replies are
        :class:`hiredis.ReplyError` values in the list)."""
        if not commands:
            return []
        self.send_many(commands)
        return self.read_replies(len(commands))

    def send_many(self, commands: Sequence[Sequence[Arg]]) -> None:
        """Send the commands in one write without reading (see :meth:`read_replies`)."""
        self.sendall(b"".join([encode_command(c) for c in commands]))

    def read_replies(self, count: int) -> list[Reply]:
        """The next ``count`` replies (taken in C as they are buffered: verification reads
        millions)."""
        replies: list[Reply] = []
        gets = self._reader.gets
        if self._incomplete is not INCOMPLETE:
            while len(replies) < count:
                reply = gets()
                if reply is False:
                    self._reader.feed(self.recv())
                else:
                    replies.append(reply)
            return replies
        while True:
            replies.extend(itertools.islice(iter(gets, INCOMPLETE), count - len(replies)))
            if len(replies) >= count:
                return replies
            self._reader.feed(self.recv())

    def read_reply(self, timeout: float) -> Reply | None:
        """The next reply (a subscribed connection's push), or None when none is complete
        within ``timeout``."""
        reply = self._reader.gets()
        if reply is not self._incomplete:
            return reply
        data = self.poll(timeout)
        if data is None:
            return None
        self._reader.feed(data)
        reply = self._reader.gets()
        return None if reply is self._incomplete else reply

    def duplex(self) -> Duplex:
        """The socket for one reading thread and one writing thread (see the module)."""
        return Duplex(self.sock, self.timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> ServerConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Duplex:
    """A socket one thread reads while another writes. A plain socket allows that as it is;
    a TLS one is made non-blocking and each read or write holds a lock, waiting with
    ``select`` outside it. ``recv`` and ``sendall`` raise :class:`TimeoutError` after
    ``timeout`` seconds without progress, like a socket with a timeout."""

    POLL_S = 0.2  # longest wait between tries (the other thread may have moved TLS along)

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.timeout = timeout
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._lock = threading.Lock()
        if self._tls:
            sock.setblocking(False)

    def recv(self, size: int) -> bytes:
        if not self._tls:
            return self.sock.recv(size)
        return self._retry(lambda: self.sock.recv(size))

    def sendall(self, data: bytes) -> None:
        if not self._tls:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            sent = self._retry(functools.partial(self.sock.send, view[:CHUNK]))
            view = view[sent:]

    def _retry(self, op: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.timeout
        while True:
            with self._lock:
                try:
                    return op()
                except ssl.SSLWantReadError:
                    readable, writable = [self.sock], []
                except ssl.SSLWantWriteError:
                    readable, writable = [], [self.sock]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            select.select(readable, writable, [], min(left, self.POLL_S))

    def close(self, reader: threading.Thread | None = None) -> None:
        """Close the connection, at once: a shutdown first, which ends the other thread's
        ``recv`` (a bare close would leave the connection open, to the server too, until
        that ``recv`` times out: the file stays referenced while a thread waits on it).

        Then, with ``reader`` (the thread that reads it), the close waits until that thread
        has ended: it may have taken the socket's file number and not yet begun its wait.
        A number closed under it is given to the next file opened (a pipe to a child
        process, say), and the reader would wait on that file instead, holding it open (a
        pipe's reader sees no end) until its ``timeout`` ran out."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if reader is not None and reader is not threading.current_thread():
            reader.join(READER_EXIT_S)  # at once: a shut-down socket ends any wait on it
        with self._lock, contextlib.suppress(OSError):
            self.sock.close()


def connect(endpoint: Endpoint, *, db: int | None = None, timeout: float = READ_TIMEOUT_S,
            connect_timeout: float = CONNECT_TIMEOUT_S,
            name: str = CLIENT_NAME) -> ServerConnection:
    """Open, secure and authenticate a connection; select ``db`` (default: the endpoint's).

    Connecting, the TLS handshake and the first round trip each have ``connect_timeout``;
    later reads have ``timeout``."""
    sock = open_socket(endpoint, connect_timeout=connect_timeout)
    conn = ServerConnection(endpoint, sock, connect_timeout)
    try:
        _handshake(conn, endpoint.db if db is None else db, name)
    except ConnectError as exc:
        conn.close()
        hint = tls_hint(exc.message, closed=True) if endpoint.tls else None
        if hint is None or exc.message.startswith("cannot authenticate"):
            raise
        detail = exc.message.split(": ", 1)[-1]
        raise ConnectError(f"cannot connect to {endpoint.display()}: the server ended the TLS "
                           f"connection at the first request ({detail})", hint) from None
    except BaseException:
        conn.close()
        raise
    conn.timeout = timeout
    sock.settimeout(timeout)
    return conn


def _handshake(conn: ServerConnection, db: int, name: str) -> None:
    endpoint = conn.endpoint
    commands: list[list[Arg]] = []
    if endpoint.password is not None:
        auth: list[Arg] = ["AUTH", endpoint.password]
        if endpoint.username:
            auth.insert(1, endpoint.username)
        commands.append(auth)
    commands.append(["CLIENT", "SETNAME", name])
    if db:
        commands.append(["SELECT", db])
    replies = conn.call_many(commands)
    if endpoint.password is not None:
        auth_reply = replies.pop(0)
        if isinstance(auth_reply, hiredis.ReplyError):
            raise ConnectError(f"cannot authenticate to {endpoint.display()}: {auth_reply}",
                               "check the user and password in the URL")
    setname = replies.pop(0)
    if isinstance(setname, hiredis.ReplyError) and str(setname).startswith("NOAUTH"):
        raise ConnectError(f"cannot authenticate to {endpoint.display()}: the server requires "
                           "a password", "put it in the URL: redis://:PASSWORD@host:port")
    # any other refusal of CLIENT SETNAME (a renamed CLIENT command): the name is optional
    if db:
        selected = replies.pop(0)
        if isinstance(selected, hiredis.ReplyError):
            raise ConnectError(f"{endpoint.display()} refused SELECT {db}: {selected}")
