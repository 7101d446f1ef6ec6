"""A TCP fault proxy for tests: a loopback listener that forwards every connection to a real
server, and that a test tells to misbehave (issue 19).

* :meth:`FaultProxy.cut` resets every connection now (RST: ``SO_LINGER`` 0, then close);
* :meth:`FaultProxy.cut_after` resets the connections a test picks once K bytes came down
  them (server to client), for N connections in turn: a cut mid-RDB at a byte count, never
  at a time, and repeated resets;
* :meth:`FaultProxy.stall` stops forwarding on the connections a test picks (the sockets
  stay open, bytes wait in the kernel) until :meth:`FaultProxy.resume`;
* :meth:`FaultProxy.stall_at` stalls a connection the moment the client sends bytes a test
  picks (a command of a step under way), either before they reach the server or once the
  server has them (the reply is what waits);
* :meth:`FaultProxy.trickle` lets at most N bytes a second down the replication link;
* :meth:`FaultProxy.refuse_replication` resets each new replication link at once;
* :meth:`FaultProxy.refuse_connections` resets each new connection as it is accepted;
* :meth:`FaultProxy.resume` turns every fault off.

Each connection is one thread that forwards both ways; it counts the bytes that passed
(:attr:`Link.down`, :attr:`Link.up`) and whether the client asked for replication
(:attr:`Link.replication`: it sent SYNC or PSYNC). Tests wait on these figures with
:meth:`FaultProxy.wait`, never on the clock.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 65536
# a command (not an argument: COMMAND INFO PSYNC is no replica) asking for replication
REPLICATION = re.compile(rb"\*\d+\r\n\$5\r\nPSYNC\r\n|\*1\r\n\$4\r\nSYNC\r\n", re.IGNORECASE)
TICK_S = 0.05  # how often a connection looks at what it is told (stall, cut, trickle)


@dataclass
class Link:
    """One connection through the proxy."""

    number: int
    down: int = 0  # bytes the server sent the client
    up: int = 0  # bytes the client sent the server
    replication: bool = False  # the client sent SYNC or PSYNC (a replica's link)
    down_at_replication: int = 0  # bytes down the link when it asked for replication
    ended: str | None = None  # "reset", "closed by the client", "closed by the server"
    stalled: bool = False  # a stall that picked this link (see FaultProxy.stall)
    held: bytes = b""  # what stall_at kept from the server (dropped: it never gets there)
    _reset: threading.Event = field(default_factory=threading.Event)


@dataclass
class _StallAt:
    which: Callable[[Link, bytes], bool]
    delivered: bool


@dataclass
class _CutAfter:
    down_bytes: int
    times: int
    which: Callable[[Link], bool]


class FaultProxy:
    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.links: list[Link] = []
        self.cuts = 0  # connections reset so far
        self.refused = 0  # connections reset as they were accepted (refuse_connections)
        self._rate: int | None = None
        self._rate_which: Callable[[Link], bool] = lambda _link: False
        self._refuse_replication = False
        self._refuse_connections = False
        self._cut_after: _CutAfter | None = None
        self._stall_at: _StallAt | None = None
        self._lock = threading.RLock()  # conditions of wait() read the figures under it
        self._closed = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    # --- what a test tells it -----------------------------------------------------------------
    def url(self, scheme: str = "redis", password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    def cut(self, which: Callable[[Link], bool] = lambda _link: True) -> int:
        """Reset the open connections ``which`` picks (all by default); returns how many.
        Returns once each reset was sent."""
        with self._lock:
            chosen = [li for li in self.links if li.ended is None and which(li)]
        for li in chosen:
            li._reset.set()
        self.wait(lambda: all(li.ended for li in chosen), 10, "the connections to be reset")
        return len(chosen)

    def cut_after(self, down_bytes: int, times: int = 1,
                  which: Callable[[Link], bool] = lambda li: li.replication) -> None:
        """Reset the next ``times`` connections ``which`` picks (the replication link by
        default), each once exactly ``down_bytes`` bytes came down it."""
        with self._lock:
            self._cut_after = _CutAfter(down_bytes, times, which)

    def stall(self, which: Callable[[Link], bool] = lambda _link: True) -> int:
        """Stop forwarding, both ways, on the open connections ``which`` picks (all by
        default); they stay open. Returns how many."""
        with self._lock:
            chosen = [li for li in self.links if li.ended is None and which(li)]
            for li in chosen:
                li.stalled = True
        return len(chosen)

    def stall_at(self, which: Callable[[Link, bytes], bool], *, delivered: bool) -> None:
        """Stall the next connection on which the client sends bytes that ``which`` picks
        (given the link and what the client sent): with ``delivered`` once the server has
        them (its reply waits), else before (the server never gets them; such a link is
        reset when it is resumed). Once: a test waits for :attr:`Link.stalled`."""
        with self._lock:
            self._stall_at = _StallAt(which, delivered)

    def stalled_links(self) -> list[Link]:
        with self._lock:
            return [li for li in self.links if li.stalled]

    def resume(self) -> None:
        """Every fault off: stalls, trickles, pending cuts, refusals."""
        with self._lock:
            self._stall_at = None
            for li in self.links:
                if li.held:  # bytes the server never got: the link cannot go on
                    li._reset.set()
                li.stalled = False
            self._rate = None
            self._cut_after = None
            self._refuse_replication = False
            self._refuse_connections = False

    def trickle(self, bytes_per_s: int | None,
                which: Callable[[Link], bool] = lambda li: li.replication) -> None:
        """At most ``bytes_per_s`` down the connections ``which`` picks, now and later (the
        replication link by default; None: as fast as they come)."""
        self._rate = bytes_per_s
        self._rate_which = which

    def refuse_replication(self) -> None:
        """Reset every connection as soon as it asks for replication (SYNC/PSYNC), until
        :meth:`resume`: a link that cannot be made again."""
        self._refuse_replication = True

    def refuse_connections(self) -> None:
        """Reset every new connection as it is accepted, until :meth:`resume` (the open ones
        go on): no link to the server can be made again."""
        self._refuse_connections = True

    @property
    def down(self) -> int:
        with self._lock:
            return sum(li.down for li in self.links)

    def open_links(self) -> list[Link]:
        with self._lock:
            return [li for li in self.links if li.ended is None]

    def replication_links(self) -> list[Link]:
        with self._lock:
            return [li for li in self.links if li.replication]

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``condition()`` holds (checked whenever a byte passes or a link changes)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fault proxy: waited {timeout:g} s for {what}")
                self._changed.wait(min(left, TICK_S))

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- forwarding ---------------------------------------------------------------------------
    def _accept(self) -> None:
        self.listener.settimeout(TICK_S)
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._refuse_connections:
                _reset(client)
                with self._changed:
                    self.refused += 1
                    self._changed.notify_all()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._changed:
                link = Link(len(self.links) + 1)
                self.links.append(link)
                self._changed.notify_all()
            thread = threading.Thread(target=self._forward, args=(link, client, server),
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _forward(self, link: Link, client: socket.socket, server: socket.socket) -> None:
        for s in (client, server):
            s.setblocking(False)
        try:
            link.ended = self._pump(link, client, server)
        except OSError as exc:
            link.ended = f"error: {exc}"
        finally:
            if link.ended is None or link.ended == "reset" or link.ended.startswith("error"):
                _reset(client)
                _reset(server)
            else:
                client.close()
                server.close()
            with self._changed:
                if link.ended == "reset":
                    self.cuts += 1
                self._changed.notify_all()

    def _pump(self, link: Link, client: socket.socket, server: socket.socket) -> str:
        while True:
            if link._reset.is_set():
                return "reset"
            if self._closed.is_set():
                return "closed by the proxy"
            if link.stalled:  # nothing moves: sockets open, bytes left unread
                time.sleep(TICK_S)
                continue
            readable, _, _ = select.select([client, server], [], [], TICK_S)
            for src in readable:
                budget = CHUNK
                rate = self._rate if self._rate_which(link) else None
                if src is server and rate is not None:
                    budget = max(1, int(rate * TICK_S))
                try:
                    data = src.recv(budget)
                except BlockingIOError:
                    continue
                if not data:
                    return "closed by the client" if src is client else "closed by the server"
                if src is client:
                    if REPLICATION.search(data):
                        link.replication = True
                        link.down_at_replication = link.down
                        if self._refuse_replication:
                            return "reset"
                    rule = self._stall_rule(link, data)
                    if rule is not None and not rule.delivered:
                        with self._changed:
                            link.held, link.stalled = data, True
                            self._changed.notify_all()
                        continue
                    _send(server, data, link)
                    with self._changed:
                        link.up += len(data)
                        link.stalled = link.stalled or rule is not None
                        self._changed.notify_all()
                    continue
                cut = self._cut_point(link, len(data))
                if cut is not None:
                    data = data[:cut]
                _send(client, data, link)
                with self._changed:
                    link.down += len(data)
                    self._changed.notify_all()
                if cut is not None:
                    return "reset"
                if src is server and rate is not None:
                    time.sleep(TICK_S)  # the trickle itself: the rate is per tick

    def _stall_rule(self, link: Link, data: bytes) -> _StallAt | None:
        """The stall_at rule ``data`` on ``link`` sets off (taken: it acts once), if any."""
        with self._lock:
            rule = self._stall_at
            if rule is None or not rule.which(link, data):
                return None
            self._stall_at = None
            return rule

    def _cut_point(self, link: Link, size: int) -> int | None:
        """How much of the next ``size`` bytes down ``link`` pass before it is cut."""
        with self._lock:
            rule = self._cut_after
            if rule is None or rule.times <= 0 or not rule.which(link):
                return None
            if link.down + size < rule.down_bytes:
                return None
            rule.times -= 1
            return max(0, rule.down_bytes - link.down)


def _send(sock: socket.socket, data: bytes, link: Link) -> None:
    """All of ``data`` (the socket is non-blocking: wait while its buffer is full, unless
    the link is reset meanwhile)."""
    view = memoryview(data)
    while view:
        if link._reset.is_set():
            return
        try:
            sent = sock.send(view)
        except BlockingIOError:
            select.select([], [sock], [], TICK_S)
            continue
        view = view[sent:]


def _reset(sock: socket.socket) -> None:
    """Close with an RST (what a cut cable or a killed middlebox looks like)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
