"""The sending half of a pipelined connection: commands are buffered and written in pieces of
about ``CHUNK`` bytes, and at most ``max_in_flight`` bytes may be unacknowledged, so a slow
server slows the sender instead of filling memory.

The owner's reader thread counts the replies and, holding the owner's ``Condition``, calls
:meth:`SendBuffer.acked` for the bytes they free, or :meth:`SendBuffer.fail` with what broke
it; the sending thread then gets that error as a :class:`ConnectError`. A refusal that every
later write would meet too (the target out of memory) is set with :meth:`SendBuffer.stop`:
nothing more is written, and the sender gets it as it is once the replies owed are in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from migrate.endpoint import Endpoint
from migrate.errors import ConnectError, KvmError
from migrate.protocol.connect import Duplex

CHUNK = 256 * 1024


class SendBuffer:
    def __init__(self, sock: Duplex, endpoint: Endpoint, cond: threading.Condition,
                 max_in_flight: int):
        self.endpoint = endpoint
        self.cond = cond
        self.unacked = 0  # bytes written and not yet acknowledged (guarded by ``cond``)
        self.error: BaseException | None = None  # what the reader thread failed with
        self.stopped: KvmError | None = None  # a refusal that stops every later write
        self._sock = sock
        self._max_in_flight = max_in_flight
        self._buf: list[bytes] = []
        self._buf_len = 0

    def add(self, data: bytes) -> None:
        """Buffer ``data``, writing the buffer once it holds ``CHUNK`` bytes. Record what
        ``data`` will be answered with before: its replies may come before this returns."""
        self._buf.append(data)
        self._buf_len += len(data)
        if self._buf_len >= CHUNK:
            self.write()

    def write(self) -> None:
        """Write what is buffered, first waiting while too much is unacknowledged."""
        if not self._buf:
            return
        with self.cond:  # an error raised here leaves the buffer unsent, never half-sent
            while self.unacked > self._max_in_flight and self.error is None and \
                    self.stopped is None:
                self.cond.wait(1.0)
            self.raise_error()
            data = b"".join(self._buf)
            self.unacked += len(data)
        self._buf.clear()
        self._buf_len = 0
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: {exc}") \
                from None

    def wait_until(self, done: Callable[[], bool]) -> None:
        """Write what is buffered, then wait until ``done()`` (asked holding ``cond``); a
        :meth:`stop` still waits for the replies owed (what was applied is then known)."""
        self.write()
        with self.cond:
            while not done() and self.error is None:
                self.cond.wait(1.0)
            self.raise_error()

    def acked(self, size: int) -> None:
        """``size`` bytes were answered (the caller holds ``cond`` and notifies)."""
        self.unacked -= size

    def fail(self, exc: BaseException) -> None:
        """From the reader thread: the connection broke; the sender raises it."""
        with self.cond:
            self.error = exc
            self.cond.notify_all()

    def stop(self, refusal: KvmError) -> None:
        """From the reader thread, holding ``cond``: the first refusal that every later write
        would meet too; nothing more is written and the sender raises it."""
        if self.stopped is None:
            self.stopped = refusal

    def raise_error(self) -> None:
        if self.stopped is not None:  # every later write would be refused too: stop now
            raise self.stopped
        if self.error is not None:
            raise ConnectError(f"lost the connection to {self.endpoint.display()}: "
                               f"{self.error}")
