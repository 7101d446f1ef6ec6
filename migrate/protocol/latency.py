"""The source's latency while kvmigrate reads it: a PING round trip, sampled every second on
a connection of its own (:func:`~migrate.protocol.connect.connect`: deadlines), in a daemon
thread; min/median/max for the status and the final figures."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from migrate.endpoint import Endpoint
from migrate.errors import KvmError
from migrate.protocol.connect import connect

EVERY_S = 1.0
KEEP = 3600  # the last hour of samples


class LatencyProbe:
    def __init__(self, endpoint: Endpoint, every_s: float = EVERY_S):
        self.endpoint, self.every_s = endpoint, every_s
        self.samples_ms: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="kvm-latency")

    def start(self) -> LatencyProbe:
        self._thread.start()
        return self

    def _loop(self) -> None:
        conn = None
        while True:
            try:
                if conn is None:
                    conn = connect(self.endpoint, timeout=5.0)
                started = time.perf_counter()
                conn.call("PING")
                rtt = (time.perf_counter() - started) * 1000
                with self._lock:
                    self.samples_ms = [*self.samples_ms[-(KEEP - 1):], rtt]
            except (KvmError, OSError):
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
            if self._stop.wait(self.every_s):
                break
        if conn is not None:
            conn.close()

    def figures(self) -> dict[str, Any]:
        """{"samples", "min_ms", "median_ms", "max_ms"} of the round trips so far."""
        with self._lock:
            s = list(self.samples_ms)
        if not s:
            return {"samples": 0, "failures": self.failures}
        return {"samples": len(s), "min_ms": round(min(s), 3),
                "median_ms": round(statistics.median(s), 3), "max_ms": round(max(s), 3),
                "failures": self.failures}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
