"""Seeding speed: ``lab seed`` of 1,000,000 mixed keys into Redis 7.0 (target: well under 60 s)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from migrate.lab.fleet import Fleet
from migrate.lab.seed import seed

KEYS = 1_000_000


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp, Fleet(Path(tmp)) as fleet:
        server = fleet.start("redis-7.0")
        start = time.perf_counter()
        report = seed(server.endpoint, keys=KEYS)
        elapsed = time.perf_counter() - start
        used = server.client().info("memory")["used_memory"]
        print(f"seed {report.keys:,} keys ({report.commands:,} commands): {elapsed:.1f} s, "
              f"{report.keys / elapsed:,.0f} keys/s, server memory {used / 2**20:.0f} MiB; "
              f"ratio to the 60 s bound: {elapsed / 60:.2f}")
