"""``--max-ops-per-s``: a ceiling on the commands kvmigrate sends a production source.

:class:`RateLimiter` paces commands: each batch of ``n`` may start no earlier than the
previous batch's start plus ``previous n / rate`` seconds (no burst beyond one batch), so
``N`` commands take at least ``(N - last batch) / rate`` seconds by its clock. The clock and
the sleep are injectable (the unit tests use a fake clock). It counts what it did: commands,
batches, the time spent waiting, and the span from the first to the last batch.
:func:`limit` puts a limiter in front of a connection's ``call``/``call_many``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from migrate.errors import UsageError

C = TypeVar("C")


class RateLimiter:
    def __init__(self, ops_per_s: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if not ops_per_s > 0:
            raise UsageError("--max-ops-per-s must be more than 0")
        self.rate = float(ops_per_s)
        self.clock, self.sleep = clock, sleep
        self.ops = 0
        self.batches = 0
        self.waited_s = 0.0
        self.first_at: float | None = None  # the limiter's clock when the first batch went
        self.last_at: float | None = None  # ... and the last
        self.last_n = 0
        self._next = 0.0  # the earliest start of the next batch

    def acquire(self, n: int = 1) -> None:
        """Wait until ``n`` more commands may go."""
        if n <= 0:
            return
        now = self.clock()
        if self.first_at is not None and now < self._next:
            self.waited_s += self._next - now
            self.sleep(self._next - now)
            now = max(self.clock(), self._next)
        if self.first_at is None:
            self.first_at = now
        self.last_at, self.last_n = now, n
        self._next = now + n / self.rate
        self.ops += n
        self.batches += 1

    @property
    def span_s(self) -> float:
        """From the first batch to the last, by the limiter's clock."""
        if self.first_at is None or self.last_at is None:
            return 0.0
        return self.last_at - self.first_at

    def figures(self) -> dict[str, Any]:
        return {"max_ops_per_s": self.rate, "ops": self.ops, "batches": self.batches,
                "last_batch": self.last_n,
                "waited_s": round(self.waited_s, 3), "span_s": round(self.span_s, 3)}


def limit(conn: C, limiter: RateLimiter) -> C:
    """``conn`` (anything with ``call`` and ``call_many``, maybe ``send_many`` and
    ``send_encoded``: a RawConn, a cluster's RoutedConn) with its commands passing
    ``limiter`` first; the same object, so what it is (isinstance) does not change."""
    call, call_many = conn.call, conn.call_many  # type: ignore[attr-defined]

    def limited_call(*args: Any) -> Any:
        limiter.acquire(1)
        return call(*args)

    def limited_call_many(commands: Sequence[Sequence[Any]]) -> list[Any]:
        limiter.acquire(len(commands))
        return call_many(commands)

    setattr(conn, "call", limited_call)  # noqa: B010 - an instance attribute over the method
    setattr(conn, "call_many", limited_call_many)  # noqa: B010
    send_many = getattr(conn, "send_many", None)  # a pipeline sent now, its replies read later
    if send_many is not None:

        def limited_send_many(commands: Sequence[Sequence[Any]]) -> None:
            limiter.acquire(len(commands))
            send_many(commands)

        setattr(conn, "send_many", limited_send_many)  # noqa: B010
    send_encoded = getattr(conn, "send_encoded", None)  # the same, encoded by the caller
    if send_encoded is not None:

        def limited_send_encoded(data: bytes, commands: int) -> None:
            limiter.acquire(commands)
            send_encoded(data, commands)

        setattr(conn, "send_encoded", limited_send_encoded)  # noqa: B010
    return conn
