"""A writer that records every write the source acknowledged, and the key-by-key check that
the target holds each of them (issue 19's fault tests).

Write n (from 1) is ``SET ack:<n> <n>``, ``RPUSH ack:log <n>`` and ``INCR ack:count``; the
writer counts a write once the source answered all three, so after the run the target must
hold ``ack:1`` .. ``ack:<acknowledged>``, a log whose first ``acknowledged`` items are 1, 2,
..., and a counter of at least ``acknowledged``. It talks to the source directly (never
through the fault proxy: the faults are kvmigrate's, not the application's).
"""

from __future__ import annotations

import threading
import time

import redis

from migrate.lab.server import ServerProcess

BATCH = 500


class AckedWriter:
    def __init__(self, source: ServerProcess):
        self.client = source.client()
        self.acknowledged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                n = self.acknowledged + 1
                with self.client.pipeline(transaction=False) as pipe:
                    pipe.set(f"ack:{n}", n).rpush("ack:log", n).incr("ack:count")
                    pipe.execute()  # raises on any error reply: then n is not acknowledged
                self.acknowledged = n
                time.sleep(0.002)  # a steady application, not a flood
        except BaseException as exc:
            self.error = exc

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.acknowledged < count:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"the writer did not reach {count} writes"
            time.sleep(0.01)

    def stop(self, refused: str | None = None) -> int:
        """Stop writing; the number of acknowledged writes. ``refused``: the error reply
        that may have ended the writing (``NOREPLICAS``: the source was fenced); the write
        it refused is not acknowledged."""
        self._stop.set()
        self._thread.join(10)
        if refused is not None and isinstance(self.error, redis.ResponseError) \
                and refused in str(self.error):
            return self.acknowledged
        assert self.error is None, self.error
        return self.acknowledged

    def __enter__(self) -> AckedWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def has_write(target: ServerProcess, n: int) -> bool:
    try:
        return target.client().get(f"ack:{n}") == str(n).encode()
    except redis.RedisError:
        return False


def lost_writes(target: ServerProcess, acknowledged: int) -> list[str]:
    """Every acknowledged write the target lacks, key by key (empty: none lost)."""
    client = target.client()
    lost: list[str] = []
    for start in range(1, acknowledged + 1, BATCH):
        numbers = range(start, min(start + BATCH, acknowledged + 1))
        values = client.mget([f"ack:{n}" for n in numbers])
        lost += [f"ack:{n}" for n, v in zip(numbers, values, strict=True)
                 if v != str(n).encode()]
    log = client.lrange("ack:log", 0, acknowledged - 1)
    if log != [str(n).encode() for n in range(1, len(log) + 1)] or len(log) < acknowledged:
        lost.append(f"ack:log (holds {len(log)} of {acknowledged} in order: no)")
    if int(client.get("ack:count") or 0) < acknowledged:
        lost.append(f"ack:count ({client.get('ack:count')!r} < {acknowledged})")
    return lost
