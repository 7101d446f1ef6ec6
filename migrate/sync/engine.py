"""What every sync engine provides (native, replica, scan, proxy, and the cluster engine that
composes them), a worker thread whose errors reach the run, and the shared lag figure.

The run script (:mod:`migrate.orchestrate.sync_run`) and the cluster sync drive an engine
through :class:`Engine` only: ``start`` (link to the source), ``catch_up`` (initial copy, then
until the target holds what the source held), ``tick`` (about a second of following; raises
what the engine's worker raised), ``figures`` (the live numbers), ``close``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from migrate.errors import KvmError
from migrate.sync.heartbeat import Heartbeat
from migrate.sync.options import SyncOptions
from migrate.sync.status import StatusPublisher

WORKER_JOIN_S = 10.0


class Engine(Protocol):
    mode: str

    def start(self) -> None: ...

    def catch_up(self) -> None: ...

    def tick(self) -> None: ...

    def check(self) -> None:
        """Raise what the engine's worker thread raised (nothing when it has none)."""
        ...

    def figures(self) -> dict[str, Any]:
        """The live numbers: at least ``mode``, ``keys`` (loaded or copied), ``lag_bytes``
        (source offset minus applied offset; None where the mode has no offsets),
        ``lag_keys`` (keys changed on the source and not yet copied; None where the mode
        replays a stream), ``commands`` (sent to the target) and ``target_errors``."""
        ...

    def lag_window_s(self) -> float: ...

    def written_keys(self) -> list[tuple[int, bytes]]: ...

    def close(self) -> None: ...


def lag_window_of(heartbeat: Heartbeat | None) -> float:
    """How long a key may still be in flight: twice the heartbeat's last lag, at least 1 s."""
    lag = heartbeat.lag_ms() if heartbeat else None
    return max(1.0, 2 * (lag or 0) / 1000)


class Worker:
    """``loop(stop)`` in a thread until it returns or ``stop`` is set. What it raises is kept
    (:attr:`error`) and raised again by :meth:`check` (a :class:`KvmError` as it is, anything
    else as "``what`` failed: ..."); :meth:`stop` sets the event and joins, :meth:`join` only
    joins (a task that ends by itself)."""

    def __init__(self, name: str, what: str, loop: Callable[[threading.Event], None]):
        self.name, self.what, self._loop = name, what, loop
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self.error = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._loop(self.stopping)
        except BaseException as exc:
            if self.error is None:
                self.error = exc

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self) -> None:
        if isinstance(self.error, KvmError):
            raise self.error
        if self.error is not None:
            raise KvmError(f"{self.what} failed: {self.error}")

    def stop(self, timeout: float = WORKER_JOIN_S) -> bool:
        """Ask the loop to end and wait for it; False (and :meth:`check` raises) when it is
        still running after ``timeout`` seconds, so the caller must not touch what it uses."""
        self.stopping.set()
        return self.join(timeout)

    def join(self, timeout: float | None = None, *, waited: float | None = None) -> bool:
        """Wait for the thread to end by itself (a task that returns; ``None``: however long
        it takes); False, and :meth:`check` raises "``what`` did not stop within ``waited``
        (default ``timeout``) s", when it is still running after ``timeout`` seconds."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            if self.error is None:
                within = waited if waited is not None else timeout or 0.0
                self.error = KvmError(f"{self.what} did not stop within {within:.0f} s")
            return False
        self._thread = None
        return True


class StreamFollower:
    """What the engines that replay a stream in a :class:`Worker` share once caught up
    (replica and proxy mode): the worker's loop repeats :meth:`step` (waiting ``idle_s``
    when nothing moved), :meth:`tick` is about a second of --follow (the worker's error, a
    heartbeat, the live figures with the heartbeat's lag), :meth:`check` and
    :meth:`lag_window_s`. The engine sets ``worker`` to a :class:`Worker` of :meth:`follow`
    and provides :meth:`step` and :meth:`figures`."""

    idle_s = 0.01
    worker: Worker
    heartbeat: Heartbeat | None
    opts: SyncOptions
    status: StatusPublisher

    def step(self) -> bool:
        """Apply what has arrived; whether anything moved."""
        raise NotImplementedError

    def figures(self) -> dict[str, Any]:
        raise NotImplementedError

    def follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.step():
                stop.wait(self.idle_s)

    def check(self) -> None:
        self.worker.check()

    def tick(self) -> None:
        """About a second of --follow: a heartbeat and the live figures."""
        self.check()
        if self.heartbeat:
            self.heartbeat.beat()
        self.opts.stop.wait(1.0)
        self.status.update(sync_phase="following", **self.figures(),
                           lag_ms=self.heartbeat.lag_ms() if self.heartbeat else None)

    def lag_window_s(self) -> float:
        return lag_window_of(self.heartbeat)


def join_all(workers: Sequence[Worker], timeout: float) -> None:
    """Wait at most ``timeout`` seconds in all for every worker's thread to end by itself;
    one still running then has "``what`` did not stop within ``timeout`` s" as its error."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()), waited=timeout)
